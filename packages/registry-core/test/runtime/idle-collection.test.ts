import { exposeGc, IdleCollection } from '../../src/runtime/idle-collection';
import { createLogger } from '../../src/logging/logger';

const MiB = 1024 * 1024;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function busyFor(ms: number): void {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    // Keeps the event loop busy, as a burst of requests would.
  }
}

describe('IdleCollection', () => {
  const logger = createLogger({ level: 'error' });

  it('collects once when the process goes idle after being busy, freeing buffers left as garbage', async () => {
    const collections: Array<{ before: NodeJS.MemoryUsage; after: NodeJS.MemoryUsage }> = [];
    // Let the test file's own loading settle first.
    await sleep(300);
    let released = 0;
    const idle = new IdleCollection(logger, { intervalMs: 200, idleUtilization: 0.1, release: [() => released++], onCollect: (before, after) => collections.push({ before, after }) }).start();
    try {
      // Idle from the start: nothing to give back.
      await sleep(400);
      expect(collections).toHaveLength(0);

      // A burst: buffers allocated and dropped while the loop is busy. The baseline
      // is taken after a full collection, so garbage left by earlier test files in
      // this worker cannot be mistaken for the burst's, nor freed in its place.
      exposeGc()();
      const baseline = process.memoryUsage().arrayBuffers;
      let garbage: Buffer[] | null = [];
      for (let i = 0; i < 64; i++) garbage.push(Buffer.alloc(MiB, i));
      busyFor(300);
      await sleep(0);
      garbage = null;

      for (let waited = 0; collections.length === 0 && waited < 3000; waited += 50) await sleep(50);
      expect(collections).toHaveLength(1);
      expect(released).toBe(1);
      expect(garbage).toBeNull();
      // V8 frees array buffers' memory on a background thread after the collection.
      for (let waited = 0; process.memoryUsage().arrayBuffers > baseline + 16 * MiB && waited < 3000; waited += 50) await sleep(50);
      expect(process.memoryUsage().arrayBuffers).toBeLessThanOrEqual(baseline + 16 * MiB);

      // Still idle: no further collection until the next busy period.
      await sleep(500);
      expect(collections).toHaveLength(1);
    } finally {
      idle.stop();
    }
  });

  it('trims the C heap after the collection, and reports once the trim is done', async () => {
    const events: string[] = [];
    let finishTrim: (trimmed: boolean) => void = () => undefined;
    const trimHeap = (): Promise<boolean> => {
      events.push('trim started');
      return new Promise((resolve) => (finishTrim = resolve));
    };
    const idle = new IdleCollection(logger, { intervalMs: 100, idleUtilization: 0.1, trimHeap, onCollect: () => events.push('collected') }).start();
    try {
      busyFor(150);
      for (let waited = 0; events.length === 0 && waited < 2000; waited += 20) await sleep(20);
      expect(events).toEqual(['trim started']);
      // Another burst and idle period while the trim runs: no second collection over it.
      busyFor(150);
      await sleep(500);
      expect(events).toEqual(['trim started']);
      finishTrim(true);
      await sleep(0);
      expect(events).toEqual(['trim started', 'collected']);
    } finally {
      idle.stop();
    }
  });

  it('does not collect while the process stays busy', async () => {
    let collected = 0;
    const idle = new IdleCollection(logger, { intervalMs: 100, onCollect: () => collected++ }).start();
    try {
      for (let i = 0; i < 8; i++) {
        busyFor(90);
        await sleep(5);
      }
      expect(collected).toBe(0);
    } finally {
      idle.stop();
    }
  });

  it('does not take one quiet sample between busy ones for idleness', async () => {
    let collected = 0;
    const idle = new IdleCollection(logger, { intervalMs: 100, idleSamples: 2, onCollect: () => collected++ }).start();
    try {
      for (let i = 0; i < 6; i++) {
        busyFor(150);
        await sleep(130);
      }
      expect(collected).toBe(0);
      // Then quiet for good: collected once.
      for (let waited = 0; collected === 0 && waited < 2000; waited += 50) await sleep(50);
      expect(collected).toBe(1);
    } finally {
      idle.stop();
    }
  });
});
