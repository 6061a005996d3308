import type { Readable, Writable } from 'node:stream';
import { finished } from 'node:stream/promises';
import { isRecyclingStream } from '../storage/file-range-stream';

/**
 * Bytes a response may have queued before the next chunk waits for the
 * socket. Far above the socket's own 16 KiB mark, so small chunks (a fill
 * read at the speed it arrives) do not each wait for a round of the event loop.
 */
const QUEUED_BYTES = 1024 * 1024;

/**
 * Writes `body` to `res` and ends it, like `pipeline(body, res)`, but hands
 * each chunk back to a recycling body once the socket has taken its bytes,
 * so large blobs are served from a few reused buffers. Rejects when either
 * side fails or the client goes away; the body is destroyed then.
 */
export async function sendBody(body: Readable, res: Writable): Promise<void> {
  const recycling = isRecyclingStream(body) ? body : undefined;
  const recycle = recycling ? (chunk: Buffer) => recycling.recycle(chunk) : undefined;
  const queueBytes = recycling?.queueBytes ?? QUEUED_BYTES;
  for await (const chunk of body as AsyncIterable<Buffer>) {
    if (res.destroyed) throw new Error('premature close');
    // On a write error the socket may still hold the bytes: the buffer is not reused then.
    const accepted = recycle ? res.write(chunk, (err) => err || recycle(chunk)) : res.write(chunk);
    if (!accepted && res.writableLength >= queueBytes) await drained(res);
  }
  res.end();
  await finished(res);
}

function drained(res: Writable): Promise<void> {
  return new Promise((resolve, reject) => {
    const settle = (err?: Error): void => {
      res.off('drain', onDrain);
      res.off('close', onClose);
      if (err) reject(err);
      else resolve();
    };
    const onDrain = (): void => settle();
    const onClose = (): void => settle(new Error('premature close'));
    res.on('drain', onDrain);
    res.on('close', onClose);
  });
}
