import { RecentChunks } from '../../src/arrivals/recent-chunks';

const MiB = 1024 * 1024;

describe('RecentChunks', () => {
  test('finds bytes by position within and across chunk boundaries', () => {
    const recent = new RecentChunks();
    recent.add(0, Buffer.from('abcd'));
    recent.add(4, Buffer.from('efgh'));
    expect(recent.at(0, 10)?.toString()).toBe('abcd');
    expect(recent.at(2, 1)?.toString()).toBe('c');
    expect(recent.at(5, 10)?.toString()).toBe('fgh');
    expect(recent.at(8, 10)).toBeNull();
  });

  test('keeps every chunk not yet on disk, however large the window grows', () => {
    const recent = new RecentChunks();
    for (let i = 0; i < 12; i++) recent.add(i * MiB, Buffer.alloc(MiB, i));
    recent.trim(0);
    expect(recent.at(0, 1)?.[0]).toBe(0);
    // On disk up to 6 MiB: the oldest go until the window (8 MiB) is respected or the durable end is reached.
    recent.trim(6 * MiB);
    expect(recent.at(3 * MiB, 1)).toBeNull();
    expect(recent.at(4 * MiB, 1)?.[0]).toBe(4);
    expect(recent.at(11 * MiB + 5, 1)?.[0]).toBe(11);
  });

  test('clear forgets everything', () => {
    const recent = new RecentChunks();
    recent.add(0, Buffer.from('abc'));
    recent.clear();
    expect(recent.at(0, 1)).toBeNull();
  });
});
