/**
 * A TCP relay in front of the upstream registry that, while throttled, sends
 * each connection's responses at `bytesPerSecond` at most (a slow upstream
 * link), and passes them unchanged otherwise. Requests go through unchanged:
 * the upstream's own access log counts them.
 */
import * as net from 'node:net';
import type { AddressInfo } from 'node:net';

export class ThrottlingRelay {
  private bytesPerSecond = 0;
  /** Response bytes sent to clients so far, all connections together. */
  delivered = 0;
  private readonly sockets = new Set<net.Socket>();

  private readonly server: net.Server;

  private constructor(target: URL) {
    this.server = net.createServer((client) => this.accept(client, target.hostname, Number(target.port)));
  }

  get port(): number {
    return (this.server.address() as AddressInfo).port;
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  static async start(upstreamUrl: string): Promise<ThrottlingRelay> {
    const relay = new ThrottlingRelay(new URL(upstreamUrl));
    await new Promise<void>((resolve) => relay.server.listen(0, '127.0.0.1', () => resolve()));
    return relay;
  }

  /** 0: no limit. Applies to connections already open too. */
  throttle(bytesPerSecond: number): void {
    this.bytesPerSecond = bytesPerSecond;
  }

  private accept(client: net.Socket, host: string, port: number): void {
    const upstream = net.connect({ host, port });
    for (const s of [client, upstream]) {
      this.sockets.add(s);
      s.on('close', () => this.sockets.delete(s));
      s.on('error', () => undefined);
    }
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
    client.pipe(upstream);
    // Token bucket of one second's worth: the response side waits until its bytes are due.
    let allowance = 0;
    let last = Date.now();
    upstream.on('data', (chunk: Buffer) => {
      this.delivered += chunk.length;
      const rate = this.bytesPerSecond;
      if (!client.write(chunk)) {
        upstream.pause();
        client.once('drain', () => upstream.resume());
      }
      if (rate <= 0) return;
      const now = Date.now();
      allowance = Math.min(rate, allowance + ((now - last) / 1000) * rate) - chunk.length;
      last = now;
      if (allowance < 0) {
        upstream.pause();
        setTimeout(() => {
          if (!client.writableNeedDrain) upstream.resume();
        }, (-allowance / rate) * 1000);
      }
    });
    upstream.on('end', () => client.end());
  }

  async stop(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
