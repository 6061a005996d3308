/**
 * Response bodies from an upstream: a streaming view whose errors are
 * classified UpstreamErrors and whose length is checked, and a bounded reader
 * for small documents (manifests, tag lists, token responses).
 */
import { Readable } from 'node:stream';
import { isRecyclingStream, recycleQueuedOnClose, type RecyclingStream } from '@entrepot/registry-core';
import { classifyTransportError, protocolFailure, type TimeoutSettings, type UpstreamError } from './upstream-failure';

/** Chunks the returned stream queues before the upstream body is paused (undici's are up to 64 KiB). */
const QUEUED_CHUNKS = 16;
/** For a body in pool buffers (up to a pool buffer per chunk): about as many bytes as 16 of undici's chunks. */
const QUEUED_BYTES = 1024 * 1024;

export interface BodyStreamOptions {
  host: string;
  timeouts: TimeoutSettings;
  /** Bytes the body must have (from Content-Length / Content-Range), when known. */
  expectedLength?: number;
  signal?: AbortSignal;
  /** Called once when the body fails (not when the consumer destroys the stream). */
  onError?: (err: UpstreamError) => void;
  /** Called once when the whole body has arrived. */
  onEnd?: () => void;
  /** Called once when the consumer destroys the stream before its end. */
  onAbandon?: () => void;
}

/**
 * Wraps an undici response body: same bytes, backpressure preserved, errors
 * turned into UpstreamErrors (`timeout` for the idle timeout, `network` for a
 * reset, `protocol` when the length is wrong). Destroying the returned stream
 * destroys the upstream body (and so frees or closes its connection). A body
 * in reusable buffers stays one: its chunks go back through `recycle`.
 */
export function upstreamBodyStream(body: Readable, options: BodyStreamOptions): Readable {
  const recycling = isRecyclingStream(body) ? body : null;
  let received = 0;
  let failed = false;
  let ended = false;
  // One object per chunk as received: a byte-mode stream read by an iterator
  // (the fill's loop) hands out everything queued at once, concatenated into a
  // new buffer, which copied each byte of a fast download once more.
  const out = new Readable({
    objectMode: true,
    highWaterMark: recycling ? Math.max(2, Math.round(QUEUED_BYTES / recycling.queueBytes)) : QUEUED_CHUNKS,
    read() {
      if (body.isPaused()) body.resume();
    },
    destroy(err, callback) {
      body.removeListener('data', onData);
      abandonBody(body);
      if (!failed && !ended) options.onAbandon?.();
      callback(err);
    },
  });
  if (recycling) lendRecycling(out, recycling);
  const fail = (err: UpstreamError): void => {
    if (failed || out.destroyed) return;
    failed = true;
    options.onError?.(err);
    out.destroy(err);
  };
  const onData = (chunk: Buffer): void => {
    received += chunk.length;
    if (options.expectedLength !== undefined && received > options.expectedLength) {
      fail(protocolFailure(options.host, `sent more than the announced ${options.expectedLength} bytes`));
      return;
    }
    if (!out.push(chunk)) body.pause();
  };
  body.on('data', onData);
  body.once('end', () => {
    if (options.expectedLength !== undefined && received !== options.expectedLength) {
      fail(protocolFailure(options.host, `ended the body after ${received} of ${options.expectedLength} bytes`));
      return;
    }
    ended = true;
    options.onEnd?.();
    out.push(null);
  });
  body.on('error', (err: unknown) => fail(classifyTransportError(err, options.host, options.timeouts, options.signal)));
  body.once('close', () => {
    // Closed without 'end' and without an error: treat as a broken connection.
    if (!body.readableEnded && !failed && !out.destroyed) {
      fail(classifyTransportError(new Error('response body closed early'), options.host, options.timeouts, options.signal));
    }
  });
  return out;
}

/**
 * Makes `stream`, which passes on `source`'s chunks as they are, hand them
 * back to `source` too, including those still queued when it closes.
 */
export function lendRecycling(stream: Readable, source: RecyclingStream): RecyclingStream {
  const lending = Object.assign(stream, { recycle: (chunk: Buffer) => source.recycle(chunk), queueBytes: source.queueBytes });
  recycleQueuedOnClose(lending);
  return lending;
}

/**
 * Reads a whole body of at most `maxBytes`; anything larger is refused
 * (the body is destroyed) with a `protocol` UpstreamError naming `what`.
 */
export async function readBounded(
  body: Readable,
  maxBytes: number,
  what: string,
  options: { host: string; timeouts: TimeoutSettings; signal?: AbortSignal },
): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let total = 0;
  try {
    for await (const chunk of body) {
      const buf = chunk as Buffer;
      total += buf.length;
      if (total > maxBytes) {
        abandonBody(body);
        throw protocolFailure(options.host, `sent a ${what} larger than ${maxBytes} bytes`);
      }
      chunks.push(buf);
    }
  } catch (err) {
    throw classifyTransportError(err, options.host, options.timeouts, options.signal);
  }
  return Buffer.concat(chunks, total);
}

/** Destroys a body we give up on; undici reports that as an error, which is expected here. */
export function abandonBody(body: Readable): void {
  if (body.destroyed) return;
  body.on('error', () => undefined);
  body.destroy();
}

/** Bytes of an unwanted body read to keep its connection; a longer one closes the connection instead. */
const DISCARD_LIMIT = 64 * 1024;

/**
 * Discards a body we do not need (error pages, redirects) without waiting for
 * it: small bodies are drained so the connection can be reused, larger or
 * stalled ones end with the connection (bounded by the idle timeout).
 */
export function discardBody(body: Readable & { dump?: (opts?: { limit: number }) => Promise<void> }): void {
  if (typeof body.dump === 'function') {
    body.dump({ limit: DISCARD_LIMIT }).catch(() => {
      // Nothing to do: the connection is closed instead of reused.
    });
    return;
  }
  // A body in reusable buffers: drained the same way, its chunks handed straight back.
  const recycling = isRecyclingStream(body) ? body : null;
  let drained = 0;
  body.on('error', () => undefined);
  body.on('data', (chunk: Buffer) => {
    drained += chunk.length;
    recycling?.recycle(chunk);
    if (drained > DISCARD_LIMIT) body.destroy();
  });
}
