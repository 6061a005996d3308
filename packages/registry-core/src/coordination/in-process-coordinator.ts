import { randomUUID } from 'node:crypto';
import type { Coordinator, Lease } from './coordinator';

/** One process, one holder per name: the embedded default. */
export class InProcessCoordinator implements Coordinator {
  readonly kind = 'in-process';
  private readonly holders = new Map<string, { token: string; expiresAt: number; holder: string }>();

  async tryAcquire(name: string, ttlMs: number, holder = ''): Promise<Lease | null> {
    const now = Date.now();
    const current = this.holders.get(name);
    if (current && current.expiresAt > now) return null;
    const token = randomUUID();
    this.holders.set(name, { token, expiresAt: now + ttlMs, holder });
    const holders = this.holders;
    return {
      async renew() {
        const entry = holders.get(name);
        if (!entry || entry.token !== token) return false;
        entry.expiresAt = Date.now() + ttlMs;
        return true;
      },
      async release() {
        if (holders.get(name)?.token === token) holders.delete(name);
      },
    };
  }

  async isHeld(name: string): Promise<boolean> {
    const current = this.holders.get(name);
    return current !== undefined && current.expiresAt > Date.now();
  }

  async holderOf(name: string): Promise<string | null> {
    const current = this.holders.get(name);
    return current !== undefined && current.expiresAt > Date.now() ? current.holder : null;
  }

  async close(): Promise<void> {
    this.holders.clear();
  }
}
