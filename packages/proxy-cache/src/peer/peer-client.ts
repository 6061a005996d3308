import type { Readable } from 'node:stream';
import { Agent, request } from 'undici';
import { type Digest } from '@entrepot/registry-core';
import { PEER_FILL_PATH } from './peer-server';

/** Why a peer could not serve a fill: the caller decides where to read next. */
export class PeerUnavailable extends Error {
  constructor(
    message: string,
    /** 404: the peer runs no such fill (it ended, or the peer is not its owner). */
    readonly status?: number,
  ) {
    super(message);
    this.name = 'PeerUnavailable';
  }
}

export interface PeerBody {
  stream: Readable;
  size: number;
  offset: number;
}

/** Reads fills from other replicas' peer listeners (see PeerServer). */
export class PeerClient {
  private readonly agent = new Agent({ connect: { timeout: 2000 }, headersTimeout: 10_000, bodyTimeout: 15_000, keepAliveTimeout: 10_000 });

  constructor(private readonly secret: string) {}

  /**
   * The bytes of `digest` from `offset`, from the fill running on the replica at
   * `peerUrl`. Throws PeerUnavailable when that replica cannot be reached or
   * runs no such fill.
   */
  async open(peerUrl: string, digest: Digest, offset: number, signal: AbortSignal): Promise<PeerBody> {
    let res;
    try {
      res = await request(`${peerUrl.replace(/\/+$/, '')}${PEER_FILL_PATH}${digest}`, {
        dispatcher: this.agent,
        method: 'GET',
        headers: { authorization: `Bearer ${this.secret}`, ...(offset > 0 ? { range: `bytes=${offset}-` } : {}) },
        signal,
      });
    } catch (err) {
      if (signal.aborted) throw err;
      throw new PeerUnavailable(`peer ${peerUrl} unreachable: ${(err as Error).message}`);
    }
    const size = Number(res.headers['x-blob-size']);
    if ((res.statusCode !== 200 && res.statusCode !== 206) || !Number.isSafeInteger(size)) {
      res.body.resume();
      throw new PeerUnavailable(`peer ${peerUrl} answered ${res.statusCode} for ${digest}`, res.statusCode);
    }
    return { stream: res.body, size, offset: res.statusCode === 206 ? offset : 0 };
  }

  async close(): Promise<void> {
    await this.agent.close();
  }
}
