import type { Db } from '../db/database';
import { RegistryError } from '../errors/registry-error';
import type { Clock } from '../services/clock';

/**
 * Counts failed logins per account and per (account, address) in the database,
 * so that every replica sees them, and refuses further attempts for a while
 * once `maxFailures` is reached.
 */
export class LoginThrottle {
  constructor(
    private readonly db: Db,
    private readonly clock: Clock,
    private readonly maxFailures: number,
    private readonly lockoutSeconds: number,
  ) {}

  private keys(account: string, ip: string): string[] {
    return [`acct:${account}`.slice(0, 320), `addr:${account}@${ip}`.slice(0, 320)];
  }

  /**
   * Throws TOOMANYREQUESTS while the account or address is locked out. Returns
   * whether failures of this account from this address are on record, which a
   * successful login then clears (nothing to write otherwise).
   */
  async check(account: string, ip: string): Promise<{ failuresOnRecord: boolean }> {
    const now = this.clock.now();
    const keys = this.keys(account, ip);
    const rows = (await this.db('login_failures').whereIn('key', keys)) as Array<Record<string, unknown>>;
    const locked = rows.filter((r) => r.locked_until !== null && Number(r.locked_until) > now);
    if (locked.length > 0) {
      const until = Math.max(...locked.map((r) => Number(r.locked_until)));
      const retryAfter = Math.ceil((until - now) / 1000);
      throw new RegistryError('TOOMANYREQUESTS', 'too many failed logins; try again later', { headers: { 'Retry-After': String(retryAfter) } });
    }
    return { failuresOnRecord: rows.some((r) => r.key === keys[1]) };
  }

  async recordFailure(account: string, ip: string): Promise<void> {
    const now = this.clock.now();
    const windowMs = this.lockoutSeconds * 1000;
    for (const key of this.keys(account, ip)) {
      // The per-account counter locks at a higher threshold so one address cannot lock others out quickly.
      const limit = key.startsWith('acct:') ? this.maxFailures * 5 : this.maxFailures;
      const row = await this.db('login_failures').where({ key }).first();
      if (!row || now - Number(row.first_at) > windowMs) {
        await this.db('login_failures').insert({ key, count: 1, first_at: now, locked_until: null }).onConflict('key').merge();
        continue;
      }
      const count = Number(row.count) + 1;
      await this.db('login_failures').where({ key }).update({ count, locked_until: count >= limit ? now + windowMs : null });
    }
  }

  async recordSuccess(account: string, ip: string): Promise<void> {
    await this.db('login_failures').whereIn('key', [this.keys(account, ip)[1]]).delete();
  }
}
