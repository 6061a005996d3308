import type { Socket } from 'node:net';
import { createSecureContext, rootCertificates } from 'node:tls';
import { Agent, buildConnector, type Dispatcher } from 'undici';
import type { BufferPool } from './buffer-pool';

export interface S3AgentTimeouts {
  connectMs: number;
  /** From the request to the end of the response head. */
  headersMs: number;
  /** Without a byte from S3 while the consumer is reading; time spent waiting on a slow consumer does not count. */
  bodyIdleMs: number;
}

export interface S3AgentOptions {
  timeouts: S3AgentTimeouts;
  /** PEM certificates trusted for TLS endpoints besides Node's bundled root CAs (a private CA, a self-signed S3). */
  ca?: string;
}

/**
 * undici connections to S3, kept alive between reads. Plain-HTTP sockets
 * read straight into the pool's buffers (`onread`): otherwise every read
 * lands in a fresh 64 KiB buffer, and copying out of that cold memory was
 * the largest cost of relaying S3 objects (docs/BENCHMARKS.md, S3 reads).
 * Node's TLS sockets hand over one 16 KiB record per read, so TLS sockets
 * keep Node's buffers and the response handler gathers their bytes instead.
 */
export function createS3Agent(pool: BufferPool, options: S3AgentOptions): Dispatcher {
  const { connectMs, headersMs, bodyIdleMs } = options.timeouts;
  // Passed on to `net.connect`, whose stream options undici's type does not list.
  const plainOptions: buildConnector.BuildOptions & { highWaterMark: number } = {
    timeout: connectMs,
    // Reading stops after each read until the parser has taken it: two reads waiting would be handed over as one concatenated copy.
    highWaterMark: 1,
    onread: {
      buffer: () => pool.acquire(),
      // Called on the socket; the bytes join its readable side, where undici reads them.
      callback(this: Socket, length: number, buffer: Uint8Array): boolean {
        return this.push((buffer as Buffer).subarray(0, length));
      },
    },
  };
  const plain = buildConnector(plainOptions);
  const secure = buildConnector({
    timeout: connectMs,
    // Built once: a `ca` list given to each connection would be parsed again for each.
    ...(options.ca ? { secureContext: createSecureContext({ ca: [...rootCertificates, options.ca] }) } : {}),
  });
  return new Agent({
    headersTimeout: headersMs,
    bodyTimeout: bodyIdleMs,
    connect: (opts, callback) => (opts.protocol === 'https:' ? secure : plain)(opts, callback),
  });
}
