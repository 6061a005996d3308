import { NODE_FLAGS, allocatorInMaps, missingNodeFlags } from '../../src/runtime/node-flags';

describe('missingNodeFlags', () => {
  it('names the recommended flags a process was started without', () => {
    expect(missingNodeFlags([])).toEqual([...NODE_FLAGS]);
    expect(missingNodeFlags(['--inspect'])).toEqual([...NODE_FLAGS]);
  });

  it('accepts each flag as recommended or with another value', () => {
    expect(missingNodeFlags([...NODE_FLAGS])).toEqual([]);
    expect(missingNodeFlags(['--initial-old-space-size=128'])).toEqual([]);
    expect(missingNodeFlags(['--initial-old-space-size-typo=64'])).toEqual([...NODE_FLAGS]);
  });
});

describe('allocatorInMaps', () => {
  const line = (path: string) => `7f2c1a000000-7f2c1a02a000 r-xp 00000000 fd:01 1311 ${path}`;

  it('sees jemalloc among the mapped libraries', () => {
    expect(allocatorInMaps([line('/usr/lib/x86_64-linux-gnu/libc.so.6'), line('/usr/lib/x86_64-linux-gnu/libjemalloc.so.2')].join('\n'))).toBe('jemalloc');
  });

  it('reports the C library allocator otherwise', () => {
    expect(allocatorInMaps([line('/usr/lib/x86_64-linux-gnu/libc.so.6'), line('/srv/notes/libjemalloc.so.2.txt')].join('\n'))).toBe('system');
    expect(allocatorInMaps('')).toBe('system');
  });
});
