/**
 * Tells every replica that rows it keeps in memory changed, so that a change
 * made through one replica applies on all of them at once rather than when
 * their copies expire. The embedded default is in-process; scale-out uses
 * Redis pub/sub. Every implementation passes `test/coordination/change-notices.test.ts`.
 *
 * Delivery is best effort, which is why every kept copy also expires: a
 * replica that may have missed notices (its Redis connection dropped) hears
 * `null`, "forget everything on this topic".
 */
export type ChangeListener = (key: string | null) => void;

export interface ChangeNotices {
  /**
   * Tells every listener of `topic`, on every replica, that `key` changed (`null`:
   * everything on the topic). This replica's listeners hear it before the
   * promise resolves; never throws (others then catch up when their copies expire).
   */
  publish(topic: string, key: string | null): Promise<void>;
  subscribe(topic: string, listener: ChangeListener): void;
  close(): Promise<void>;
}

/** Listeners per topic, called synchronously: what a replica does with the notices it hears. */
export class LocalListeners {
  private readonly byTopic = new Map<string, ChangeListener[]>();

  add(topic: string, listener: ChangeListener): void {
    const listeners = this.byTopic.get(topic);
    if (listeners) listeners.push(listener);
    else this.byTopic.set(topic, [listener]);
  }

  deliver(topic: string, key: string | null): void {
    for (const listener of this.byTopic.get(topic) ?? []) listener(key);
  }

  /** Everything may have changed: after missed notices. */
  deliverToAll(): void {
    for (const [topic] of this.byTopic) this.deliver(topic, null);
  }

  clear(): void {
    this.byTopic.clear();
  }
}

/** One process: notices go straight to this process's listeners. */
export class InProcessChangeNotices implements ChangeNotices {
  private readonly listeners = new LocalListeners();

  async publish(topic: string, key: string | null): Promise<void> {
    this.listeners.deliver(topic, key);
  }

  subscribe(topic: string, listener: ChangeListener): void {
    this.listeners.add(topic, listener);
  }

  async close(): Promise<void> {
    this.listeners.clear();
  }
}
