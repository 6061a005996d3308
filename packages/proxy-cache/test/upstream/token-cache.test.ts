import { TokenCache, tokenExpiry, type IssuedToken } from '../../src/upstream/token-cache';
import { ManualClock, rejection } from './helpers';

function deferred<T>(): { promise: Promise<T>; resolve: (v: T) => void; reject: (e: unknown) => void } {
  let resolve!: (v: T) => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

describe('tokenExpiry', () => {
  it('defaults to 60 s and keeps a margin before expiry', () => {
    const t0 = 1_000_000;
    expect(tokenExpiry(t0, undefined, undefined)).toBe(t0 + 54_000);
    expect(tokenExpiry(t0, 300, undefined)).toBe(t0 + 270_000);
    expect(tokenExpiry(t0, 3600, undefined)).toBe(t0 + 3_570_000);
    expect(tokenExpiry(t0, -5, undefined)).toBe(t0 + 54_000);
  });

  it('counts from issued_at when that is earlier but still plausible', () => {
    const t0 = Date.parse('2026-01-01T00:01:00Z');
    expect(tokenExpiry(t0, 300, '2026-01-01T00:00:00Z')).toBe(Date.parse('2026-01-01T00:00:00Z') + 270_000);
    // Already expired by our clock: skew, so our own clock is used.
    expect(tokenExpiry(t0, 30, '2025-12-31T00:00:00Z')).toBe(t0 + 27_000);
    // In the future: ignored.
    expect(tokenExpiry(t0, 300, '2026-01-01T01:00:00Z')).toBe(t0 + 270_000);
  });
});

describe('TokenCache', () => {
  it('shares one in-flight fetch between concurrent callers and then serves from cache', async () => {
    const clock = new ManualClock();
    const cache = new TokenCache(clock);
    const d = deferred<IssuedToken>();
    let fetches = 0;
    const fetch = (): Promise<IssuedToken> => {
      fetches++;
      return d.promise;
    };
    const waiters = Array.from({ length: 10 }, () => cache.get('scope-a', fetch));
    d.resolve({ token: 'T1', expiresAt: clock.now() + 60_000 });
    expect(await Promise.all(waiters)).toEqual(Array(10).fill('T1'));
    expect(await cache.get('scope-a', fetch)).toBe('T1');
    expect(fetches).toBe(1);
  });

  it('fetches again once the token expires, and per key', async () => {
    const clock = new ManualClock();
    const cache = new TokenCache(clock);
    let n = 0;
    const fetch = async (): Promise<IssuedToken> => ({ token: `T${++n}`, expiresAt: clock.now() + 1000 });
    expect(await cache.get('a', fetch)).toBe('T1');
    expect(await cache.get('b', fetch)).toBe('T2');
    clock.advance(999);
    expect(await cache.get('a', fetch)).toBe('T1');
    clock.advance(1);
    expect(await cache.get('a', fetch)).toBe('T3');
  });

  it('invalidates only the refused token, so concurrent refusals cause one refresh', async () => {
    const clock = new ManualClock();
    const cache = new TokenCache(clock);
    let n = 0;
    const fetch = async (): Promise<IssuedToken> => ({ token: `T${++n}`, expiresAt: clock.now() + 60_000 });
    await cache.get('a', fetch);
    expect(cache.invalidate('a', 'T1')).toBe(true);
    expect(await cache.get('a', fetch)).toBe('T2');
    // A second request refused with the old token must not drop the fresh one.
    expect(cache.invalidate('a', 'T1')).toBe(false);
    expect(await cache.get('a', fetch)).toBe('T2');
    expect(n).toBe(2);
  });

  it('caches nothing when the fetch fails, and every waiter sees the error', async () => {
    const cache = new TokenCache(new ManualClock());
    const d = deferred<IssuedToken>();
    const a = cache.get('a', () => d.promise);
    const b = cache.get('a', () => d.promise);
    d.reject(new Error('token service down'));
    expect(await rejection(a)).toEqual(new Error('token service down'));
    expect(await rejection(b)).toEqual(new Error('token service down'));
    expect(await cache.get('a', async () => ({ token: 'ok', expiresAt: Date.now() + 60_000 }))).toBe('ok');
  });

  it('lets one waiter give up without cancelling the shared fetch', async () => {
    const clock = new ManualClock();
    const cache = new TokenCache(clock);
    const d = deferred<IssuedToken>();
    const controller = new AbortController();
    const impatient = cache.get('a', () => d.promise, controller.signal);
    const patient = cache.get('a', () => d.promise);
    controller.abort(new Error('client went away'));
    expect(await rejection(impatient)).toEqual(new Error('client went away'));
    d.resolve({ token: 'T', expiresAt: clock.now() + 60_000 });
    expect(await patient).toBe('T');
  });

  it('stays bounded', async () => {
    const clock = new ManualClock();
    const cache = new TokenCache(clock, 3);
    for (let i = 0; i < 10; i++) await cache.get(`k${i}`, async () => ({ token: `t${i}`, expiresAt: clock.now() + 60_000 }));
    expect(cache.size).toBe(3);
    expect(cache.peek('k9')).toBe('t9');
    expect(cache.peek('k0')).toBeUndefined();
  });
});
