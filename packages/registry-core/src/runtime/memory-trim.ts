import type { Logger } from '../logging/logger';

/** Gives free C-heap memory back to the system; resolves true when some was. */
export type TrimHeap = () => Promise<boolean>;

type AsyncMallocTrim = (pad: number, done: (err: unknown, released: number) => void) => void;

/**
 * glibc's `malloc_trim(0)`, run on a worker thread, or null where there is
 * none (another C library).
 *
 * glibc's `free` returns memory to the system only from the top of a heap.
 * After a burst of transfers, buffers freed below ones still alive leave
 * tens of megabytes of free heap that the process keeps for good;
 * `malloc_trim` releases every free page, wherever it is. Node has no binding
 * for it, so it is called through koffi, whose package carries prebuilt
 * binaries (no build step at install).
 */
export async function glibcHeapTrimmer(logger: Logger): Promise<TrimHeap | null> {
  if (process.platform !== 'linux') return null;
  let mallocTrim: AsyncMallocTrim;
  try {
    const koffi = await import('koffi');
    mallocTrim = koffi.load('libc.so.6').func('int malloc_trim(size_t pad)').async as AsyncMallocTrim;
  } catch (err) {
    logger.info('malloc_trim is not available: memory freed after a burst may stay with the process', { error: err instanceof Error ? err.message : String(err) });
    return null;
  }
  return () => new Promise((resolve, reject) => mallocTrim(0, (err, released) => (err ? reject(err instanceof Error ? err : new Error(String(err))) : resolve(released === 1))));
}
