import { ShortMemo } from '../../src/services/short-memo';

describe('ShortMemo', () => {
  let now = 5_000_000;
  const clock = { now: () => now };

  it('keeps an answer, "no such row" included, for its time to live and no longer', () => {
    const memo = new ShortMemo<string, { n: number } | null>(clock, { ttlMs: 2000, maxEntries: 10 });
    expect(memo.get('a')).toBeUndefined();
    memo.set('a', { n: 1 });
    memo.set('missing', null);
    now += 1999;
    expect(memo.get('a')).toEqual({ n: 1 });
    expect(memo.get('missing')).toBeNull();
    now += 1;
    expect(memo.get('a')).toBeUndefined();
    expect(memo.get('missing')).toBeUndefined();
  });

  it('applies its owner’s changes at once', () => {
    const memo = new ShortMemo<number, string>(clock, { ttlMs: 60_000, maxEntries: 10 });
    memo.set(1, 'old');
    memo.set(1, 'new');
    expect(memo.get(1)).toBe('new');
    memo.delete(1);
    expect(memo.get(1)).toBeUndefined();
  });

  it('holds at most maxEntries, dropping the least recently used', () => {
    const memo = new ShortMemo<number, number>(clock, { ttlMs: 60_000, maxEntries: 3 });
    for (const k of [1, 2, 3]) memo.set(k, k * 10);
    expect(memo.get(1)).toBe(10);
    memo.set(4, 40);
    expect(memo.get(2)).toBeUndefined();
    expect([1, 3, 4].map((k) => memo.get(k))).toEqual([10, 30, 40]);
  });
});
