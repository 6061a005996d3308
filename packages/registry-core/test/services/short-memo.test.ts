import { ShortMemo } from '../../src/services/short-memo';
import { InProcessChangeNotices } from '../../src/coordination/change-notices';

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

describe('ShortMemo shared through change notices', () => {
  let now = 5_000_000;
  const clock = { now: () => now };
  const shared = (notices: InProcessChangeNotices) => new ShortMemo<string, string | null>(clock, { ttlMs: 60_000, maxEntries: 10, shared: { notices, topic: 'rows' } });

  it('forgets on every memo of the topic, one key or all of them', async () => {
    const notices = new InProcessChangeNotices();
    const here = shared(notices);
    const there = shared(notices);
    const otherTopic = new ShortMemo<string, string>(clock, { ttlMs: 60_000, maxEntries: 10, shared: { notices, topic: 'other' } });
    for (const memo of [here, there]) {
      memo.set('a', 'A');
      memo.set('b', 'B');
    }
    otherTopic.set('a', 'kept');
    await here.forget('a');
    expect([here.get('a'), there.get('a'), there.get('b')]).toEqual([undefined, undefined, 'B']);
    expect(otherTopic.get('a')).toBe('kept');
    await there.forgetAll();
    expect([here.get('b'), there.get('b')]).toEqual([undefined, undefined]);
    expect(otherTopic.get('a')).toBe('kept');
  });

  it('does not keep what a load read while the key was forgotten', async () => {
    const notices = new InProcessChangeNotices();
    const memo = shared(notices);
    let finishLoad: (value: string) => void = () => undefined;
    const loading = memo.getOrLoad('a', () => new Promise<string>((resolve) => (finishLoad = resolve)));
    await memo.forget('a');
    finishLoad('read before the change');
    expect(await loading).toBe('read before the change');
    expect(memo.get('a')).toBeUndefined();
    expect(await memo.getOrLoad('a', async () => 'read after')).toBe('read after');
    expect(memo.get('a')).toBe('read after');
  });

  it('keeps a loaded answer only when `keep` allows it', async () => {
    const memo = shared(new InProcessChangeNotices());
    let loads = 0;
    const load = async () => {
      loads += 1;
      return null;
    };
    await memo.getOrLoad('missing', load, { keep: (value) => value !== null });
    await memo.getOrLoad('missing', load, { keep: (value) => value !== null });
    expect(loads).toBe(2);
    await memo.getOrLoad('missing', load);
    await memo.getOrLoad('missing', load);
    expect(loads).toBe(3);
    now += 60_000;
    await memo.getOrLoad('missing', load);
    expect(loads).toBe(4);
  });

  it('loads again when `reuse` refuses the kept answer, and keeps the new one', async () => {
    const memo = shared(new InProcessChangeNotices());
    memo.set('a', 'old');
    expect(await memo.getOrLoad('a', async () => 'new', { reuse: (kept) => kept !== 'old' })).toBe('new');
    expect(memo.get('a')).toBe('new');
    expect(await memo.getOrLoad('a', async () => 'newer', { reuse: (kept) => kept !== 'old' })).toBe('new');
  });
});
