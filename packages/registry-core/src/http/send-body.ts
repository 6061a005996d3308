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
 *
 * The body flows ('data' events) rather than being iterated: an iterator
 * reads everything buffered at once, which concatenates queued chunks into a
 * new buffer (a copy and an allocation per read), while a flowing stream
 * hands out its chunks as they are.
 */
export async function sendBody(body: Readable, res: Writable): Promise<void> {
  const recycling = isRecyclingStream(body) ? body : undefined;
  const recycle = recycling ? (chunk: Buffer) => recycling.recycle(chunk) : undefined;
  const queueBytes = recycling?.queueBytes ?? QUEUED_BYTES;
  try {
    await new Promise<void>((resolve, reject) => {
      const cleanup = (): void => {
        body.off('data', onData);
        body.off('end', onEnd);
        body.off('error', onError);
        body.off('close', onBodyClose);
        res.off('drain', onDrain);
        res.off('close', onResClose);
        res.off('error', onError);
      };
      const fail = (err: Error): void => {
        cleanup();
        reject(err);
      };
      const onData = (chunk: Buffer): void => {
        if (res.destroyed) {
          recycle?.(chunk);
          fail(new Error('premature close'));
          return;
        }
        // Node calls a write's callback once it is done with the chunk, sent or dropped with a failed socket.
        const accepted = recycle ? res.write(chunk, () => recycle(chunk)) : res.write(chunk);
        if (!accepted && res.writableLength >= queueBytes) body.pause();
      };
      const onDrain = (): void => {
        body.resume();
      };
      const onEnd = (): void => {
        cleanup();
        resolve();
      };
      const onError = (err: Error): void => fail(err);
      const onBodyClose = (): void => {
        if (!body.readableEnded) fail(new Error('premature close'));
      };
      const onResClose = (): void => fail(new Error('premature close'));
      body.on('data', onData);
      body.once('end', onEnd);
      body.on('error', onError);
      body.once('close', onBodyClose);
      res.on('drain', onDrain);
      res.once('close', onResClose);
      res.on('error', onError);
    });
  } catch (err) {
    // A recycling body hands back the chunks it still holds once closed (recycleQueuedOnClose).
    body.destroy();
    throw err;
  }
  res.end();
  await finished(res);
}

