import { createHash, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { type CorePorts, type Digest, oci } from '@entrepot/registry-core';
import type { Logger } from '../core-types';
import type { PeerSettings } from '../config/plugin-settings';

/** Path of a fill on the peer listener: `/peer/v1/fills/<digest>`. */
export const PEER_FILL_PATH = '/peer/v1/fills/';
/** How long a request waits for a fill its owner is still starting (lease taken, upstream not yet answered). */
const FILL_APPEAR_WAIT_MS = 3000;
const FILL_APPEAR_POLL_MS = 5;

/**
 * The internal listener from which other replicas read the fills this replica
 * owns, while they download: its own port (never the public app), requests
 * authenticated by the replicas' shared secret, `Range: bytes=N-` to resume.
 * The bytes are the owner's scratch file as it grows; the reader verifies
 * them against the digest, as it does the upstream's.
 *
 * Answers: 200/206 with the bytes; 401 without the secret; 404 when this
 * replica runs no fill of the digest (ended, or never started: read storage
 * or ask the lease's holder); 416 for a range past the end; 503 when the fill failed.
 */
export class PeerServer {
  private readonly server: Server;
  private readonly secretHash: Buffer;
  private closing = false;

  constructor(
    private readonly settings: PeerSettings,
    private readonly fills: CorePorts['fills'],
    private readonly sendBody: CorePorts['http']['sendBody'],
    private readonly logger: Logger,
  ) {
    this.secretHash = sha256(settings.secret);
    this.server = createServer((req, res) => {
      this.handle(req, res).catch((err: unknown) => {
        this.logger.warn('peer fill request failed', { error: String(err) });
        if (!res.headersSent) reply(res, 500, 'internal error');
        else res.destroy();
      });
    });
    this.server.requestTimeout = 0;
  }

  /** Starts listening; resolves with the URL peers use to reach this replica. */
  async listen(): Promise<string> {
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(this.settings.port, this.settings.host, () => resolve());
    });
    const { port } = this.server.address() as AddressInfo;
    const host = this.settings.host.includes(':') ? `[${this.settings.host}]` : this.settings.host;
    return this.settings.advertise_url ?? `http://${host}:${port}`;
  }

  /** Stops accepting; streams still open are cut (their readers resume elsewhere). */
  async close(): Promise<void> {
    this.closing = true;
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    this.server.closeAllConnections();
    await closed;
  }

  private authorized(req: IncomingMessage): boolean {
    const header = req.headers.authorization ?? '';
    if (!header.startsWith('Bearer ')) return false;
    return timingSafeEqual(sha256(header.slice(7)), this.secretHash);
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (!this.authorized(req)) return reply(res, 401, 'peer secret required');
    const url = req.url ?? '';
    if (req.method !== 'GET' || !url.startsWith(PEER_FILL_PATH)) return reply(res, 404, 'not a peer route');
    const digest = oci.tryParseDigest(decodeURIComponent(url.slice(PEER_FILL_PATH.length)));
    if (!digest) return reply(res, 400, 'invalid digest');
    const start = rangeStart(req.headers.range);
    if (start === null) return reply(res, 400, 'only Range: bytes=N- is served');
    const fill = await this.awaitFill(digest);
    if (!fill) return reply(res, 404, 'no fill of this digest here');
    try {
      await fill.ready;
    } catch {
      return reply(res, 503, 'fill failed');
    }
    if (start >= fill.size && !(start === 0 && fill.size === 0)) {
      res.setHeader('content-range', `bytes */${fill.size}`);
      return reply(res, 416, 'range past the end');
    }
    const reader = fill.size === 0 ? null : fill.tryReader({ start, end: fill.size - 1 });
    if (!reader && fill.size > 0) return reply(res, fill.failed ? 503 : 404, 'fill ended');
    res.statusCode = req.headers.range ? 206 : 200;
    res.setHeader('content-length', String(fill.size - start));
    res.setHeader('x-blob-size', String(fill.size));
    if (req.headers.range) res.setHeader('content-range', `bytes ${start}-${fill.size - 1}/${fill.size}`);
    if (!reader) return void res.end();
    // A failed or cancelled fill errors the reader: the response is cut short, never completed wrongly.
    await this.sendBody(reader, res).catch(() => res.destroy());
  }

  private async awaitFill(digest: Digest): Promise<ReturnType<CorePorts['fills']['get']>> {
    const deadline = Date.now() + FILL_APPEAR_WAIT_MS;
    for (;;) {
      const fill = this.fills.get(digest);
      if (fill || this.closing || Date.now() > deadline) return fill;
      await new Promise((r) => setTimeout(r, FILL_APPEAR_POLL_MS));
    }
  }
}

function sha256(text: string): Buffer {
  return createHash('sha256').update(text).digest();
}

/** 0 without a header, N for `bytes=N-`, null for any other form. */
function rangeStart(header: string | undefined): number | null {
  if (header === undefined) return 0;
  const match = /^bytes=(\d{1,15})-$/.exec(header.trim());
  return match ? Number(match[1]) : null;
}

function reply(res: ServerResponse, status: number, message: string): void {
  res.statusCode = status;
  res.setHeader('content-type', 'text/plain');
  res.end(message);
}
