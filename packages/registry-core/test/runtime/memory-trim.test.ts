import { readFileSync } from 'node:fs';
import { exposeGc } from '../../src/runtime/idle-collection';
import { createLogger } from '../../src/logging/logger';
import { glibcHeapTrimmer } from '../../src/runtime/memory-trim';

const KiB = 1024;
const MiB = 1024 * KiB;

function residentBytes(): number {
  const status = readFileSync('/proc/self/status', 'utf8');
  return Number(/^VmRSS:\s+(\d+) kB/m.exec(status)?.[1]) * KiB;
}

describe('glibcHeapTrimmer', () => {
  const logger = createLogger({ level: 'error' });

  it('returns free heap pages below live allocations to the system, which free() alone keeps', async () => {
    const trim = await glibcHeapTrimmer(logger);
    expect(trim).not.toBeNull();
    const gc = exposeGc();
    // 64 KiB buffers come from glibc's heap (below its mmap threshold). Every
    // other one stays alive, so the freed ones are holes no free() can return.
    const buffers: Array<Buffer | null> = [];
    for (let i = 0; i < 2048; i++) buffers.push(Buffer.allocUnsafeSlow(64 * KiB).fill(i));
    for (let i = 0; i < buffers.length; i += 2) buffers[i] = null;
    gc();
    // V8 frees array buffers' memory on a background thread after the collection.
    await new Promise((r) => setTimeout(r, 200));
    const before = residentBytes();
    expect(await trim!()).toBe(true);
    const after = residentBytes();
    // 64 MiB were freed; most of it is whole pages.
    expect(before - after).toBeGreaterThan(32 * MiB);
    // The buffers still alive are intact.
    for (let i = 1; i < buffers.length; i += 2) expect(buffers[i]![100]).toBe(i & 0xff);
  });
});
