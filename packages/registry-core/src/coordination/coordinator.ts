/**
 * Mutual exclusion across replicas: who fills a blob, who decides a quota
 * admission. The embedded default is in-process; scale-out uses Redis. Every
 * implementation passes `test/coordination/coordinator.test.ts`.
 */
export interface Lease {
  /** Extends the lease; false when it was lost (expired and taken by another holder). */
  renew(): Promise<boolean>;
  /** Safe to call twice, and after the lease expired. */
  release(): Promise<void>;
}

export interface Coordinator {
  readonly kind: string;
  /**
   * Takes `name` for `ttlMs` if nobody holds it; null when someone does.
   * `holder` is a note others can read while the lease lasts (where the holder
   * can be reached); it is not a secret.
   */
  tryAcquire(name: string, ttlMs: number, holder?: string): Promise<Lease | null>;
  /** Whether anyone holds `name` right now. */
  isHeld(name: string): Promise<boolean>;
  /** The note of whoever holds `name` right now: null when nobody does, '' when the holder left none. */
  holderOf(name: string): Promise<string | null>;
  close(): Promise<void>;
}

/**
 * Runs `work` holding `name`, waiting (polling) up to `waitMs` for it. The lease
 * is renewed while `work` runs, so long work never loses it.
 * Throws when the lock could not be had in time.
 */
export async function withLock<T>(coordinator: Coordinator, name: string, work: () => Promise<T>, options: { ttlMs?: number; waitMs?: number } = {}): Promise<T> {
  const ttlMs = options.ttlMs ?? 30_000;
  const deadline = Date.now() + (options.waitMs ?? 60_000);
  let lease = await coordinator.tryAcquire(name, ttlMs);
  let delay = 10;
  while (!lease) {
    if (Date.now() > deadline) throw new Error(`lock ${name} was not released in time`);
    await new Promise((r) => setTimeout(r, delay));
    delay = Math.min(delay * 2, 250);
    lease = await coordinator.tryAcquire(name, ttlMs);
  }
  const held = lease;
  const renewal = setInterval(() => void held.renew().catch(() => false), Math.max(1000, Math.floor(ttlMs / 3)));
  renewal.unref();
  try {
    return await work();
  } finally {
    clearInterval(renewal);
    await held.release();
  }
}
