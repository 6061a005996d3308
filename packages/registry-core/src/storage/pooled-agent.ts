import type { Socket } from 'node:net';
import { createSecureContext, rootCertificates } from 'node:tls';
import { Agent, buildConnector, type Dispatcher } from 'undici';
import type { BufferPool } from './buffer-pool';

export interface PooledAgentTimeouts {
  connectMs: number;
  /** From the request to the end of the response head. */
  headersMs: number;
  /** Without a byte from the server while the consumer is reading; time spent waiting on a slow consumer does not count. */
  bodyIdleMs: number;
}

export interface PooledAgentOptions {
  timeouts: PooledAgentTimeouts;
  /** PEM certificates trusted for TLS endpoints besides Node's bundled root CAs (a private CA, a self-signed S3). */
  ca?: string;
  /** False accepts any TLS certificate (an upstream configured `insecure`). Default true. */
  rejectUnauthorized?: boolean;
}

/**
 * undici connections, kept alive between requests, for large bodies (S3
 * objects, upstream blobs). Plain-HTTP sockets read straight into the pool's
 * buffers (`onread`): otherwise every read lands in a fresh 64 KiB buffer, and
 * copying out of that cold memory was the largest cost of relaying a body
 * (docs/BENCHMARKS.md). Node's TLS sockets hand over one 16 KiB record per
 * read, so TLS sockets keep Node's buffers and `requestIntoPool` gathers their
 * bytes instead.
 */
export function createPooledAgent(pool: BufferPool, options: PooledAgentOptions): Dispatcher {
  const { connectMs, headersMs, bodyIdleMs } = options.timeouts;
  const secure = buildConnector({
    timeout: connectMs,
    rejectUnauthorized: options.rejectUnauthorized ?? true,
    // Built once: a `ca` list given to each connection would be parsed again for each.
    ...(options.ca ? { secureContext: createSecureContext({ ca: [...rootCertificates, options.ca] }) } : {}),
  });
  return new Agent({
    headersTimeout: headersMs,
    bodyTimeout: bodyIdleMs,
    connect: (opts, callback) => (opts.protocol === 'https:' ? secure(opts, callback) : connectReadingIntoPool(pool, connectMs, opts, callback)),
  });
}

/**
 * A plain-HTTP connection whose reads land in pool buffers. A read the
 * response did not hand on (a response head arriving by itself, a body
 * copied out) comes back once the parser is done with it: when the next read
 * arrives, as the socket reads again only once the parser has taken
 * everything, or when the connection closes. Node takes the buffer for a
 * socket's next read as soon as the last one is handed over, so each
 * connection holds one while idle; it too goes back when the socket closes
 * (after which nothing reads into it).
 */
function connectReadingIntoPool(pool: BufferPool, connectMs: number, opts: buildConnector.Options, callback: buildConnector.Callback): void {
  let nextRead: Buffer | undefined;
  let lastRead: Buffer | undefined;
  // Passed on to `net.connect`, whose stream options undici's type does not list.
  const plainOptions: buildConnector.BuildOptions & { highWaterMark: number } = {
    timeout: connectMs,
    // Reading stops after each read until the parser has taken it: two reads waiting would be handed over as one concatenated copy.
    highWaterMark: 1,
    onread: {
      buffer: () => (nextRead = pool.acquire()),
      // Called on the socket; the bytes join its readable side, where undici reads them.
      callback(this: Socket, length: number, buffer: Uint8Array): boolean {
        if (lastRead) pool.releaseUnclaimed(lastRead);
        lastRead = buffer as Buffer;
        nextRead = undefined;
        return this.push((buffer as Buffer).subarray(0, length));
      },
    },
  };
  buildConnector(plainOptions)(opts, (...result) => {
    result[1]?.once('close', () => {
      if (nextRead) pool.release(nextRead);
      // Parsed or not, nothing reads it any more.
      if (lastRead) pool.releaseUnclaimed(lastRead);
      nextRead = lastRead = undefined;
    });
    callback(...result);
  });
}
