/**
 * Blob transfers and black holes against small real servers on loopback:
 * redirects to another host, ignored or wrong ranges, resets and stalls
 * mid-body, trickles, listeners that never answer or never accept.
 */
import { randomBytes } from 'node:crypto';
import { UpstreamError } from '../../src/upstream';
import {
  NeverAcceptingPort,
  SilentTcpServer,
  TestServer,
  makeClient,
  readAll,
  readUntilError,
  rejection,
  serveBlob,
  sha256,
  sharedTestServer,
} from './helpers';

const BLOB = randomBytes(300_000);
const BLOB_DIGEST = sha256(BLOB);

const shared = sharedTestServer();
const useHandler = shared.useHandler;

describe('blob transfers', () => {
  it('follows a redirect to another host without forwarding Authorization, keeping the Range', async () => {
    const cdn = await TestServer.start((req, res) => serveBlob(req, res, BLOB), '127.0.0.2');
    const auth = `Basic ${Buffer.from('bob:pw').toString('base64')}`;
    useHandler((req, res) => {
      if (req.headers.authorization !== auth) {
        res.writeHead(401, { 'www-authenticate': 'Basic realm="test"' }).end();
        return;
      }
      res.writeHead(307, { location: `${cdn.origin}/blobs/${BLOB_DIGEST}?sig=abc` }).end();
    });
    const c = makeClient(shared.server().origin, { credentials: { username: 'bob', password: 'pw' } });
    try {
      const full = await c.getBlob('library/app', BLOB_DIGEST);
      expect(sha256(await readAll(full.stream))).toBe(BLOB_DIGEST);
      const part = await c.getBlob('library/app', BLOB_DIGEST, { offset: 1000 });
      expect(part).toMatchObject({ offset: 1000, size: BLOB.length });
      expect((await readAll(part.stream)).equals(BLOB.subarray(1000))).toBe(true);

      expect(cdn.requests).toHaveLength(2);
      for (const r of cdn.requests) expect(r.headers.authorization).toBeUndefined();
      expect(cdn.requests[1].headers.range).toBe('bytes=1000-');
      // The registry itself did get the credentials (after its challenge).
      expect(shared.server().requests.filter((r) => r.headers.authorization === auth)).toHaveLength(2);
    } finally {
      await c.close();
      await cdn.stop();
    }
  });

  it('says offset 0 when the upstream ignores the Range', async () => {
    useHandler((req, res) => serveBlob(req, res, BLOB, false));
    const c = makeClient(shared.server().origin);
    try {
      const got = await c.getBlob('library/app', BLOB_DIGEST, { offset: 5000 });
      expect(got).toMatchObject({ offset: 0, size: BLOB.length });
      expect(sha256(await readAll(got.stream))).toBe(BLOB_DIGEST);
      expect(shared.server().requests[0].headers.range).toBe('bytes=5000-');
    } finally {
      await c.close();
    }
  });

  it('refuses a 206 that does not start at the requested offset', async () => {
    useHandler((_req, res) => {
      res.writeHead(206, { 'content-length': 10, 'content-range': `bytes 0-9/${BLOB.length}` }).end(BLOB.subarray(0, 10));
    });
    const c = makeClient(shared.server().origin);
    try {
      const err = await rejection(c.getBlob('library/app', BLOB_DIGEST, { offset: 100 }));
      expect(err).toMatchObject({ code: 'UNAVAILABLE', failure: { kind: 'protocol' } });
      expect((err as Error).message).toContain('Content-Range');
    } finally {
      await c.close();
    }
  });

  it('fails the stream on a reset mid-body, and resumes from the last byte with Range', async () => {
    useHandler((req, res) => {
      if (req.headers.range) {
        serveBlob(req, res, BLOB);
        return;
      }
      res.writeHead(200, { 'content-length': BLOB.length });
      res.write(BLOB.subarray(0, 100_000), () => setTimeout(() => res.socket?.destroy(), 50));
    });
    const c = makeClient(shared.server().origin);
    try {
      const first = await c.getBlob('library/app', BLOB_DIGEST);
      const { data, error } = await readUntilError(first.stream);
      expect(error).toBeInstanceOf(UpstreamError);
      expect(error).toMatchObject({ code: 'UNAVAILABLE', failure: { kind: 'network', host: shared.server().authority } });
      expect(data.length).toBeGreaterThan(0);
      expect(data.length).toBeLessThan(BLOB.length);

      const rest = await c.getBlob('library/app', BLOB_DIGEST, { offset: data.length });
      expect(rest.offset).toBe(data.length);
      expect(sha256(Buffer.concat([data, await readAll(rest.stream)]))).toBe(BLOB_DIGEST);
      expect(shared.server().requests[1].headers.range).toBe(`bytes=${data.length}-`);
    } finally {
      await c.close();
    }
  });

  it('fails with an idle timeout when the body stalls', async () => {
    useHandler((_req, res) => {
      res.writeHead(200, { 'content-length': BLOB.length });
      res.write(BLOB.subarray(0, 50_000));
    });
    const c = makeClient(shared.server().origin, { timeouts: { connectMs: 1000, headersMs: 1000, idleMs: 700 } });
    try {
      const started = Date.now();
      const got = await c.getBlob('library/app', BLOB_DIGEST);
      const { data, error } = await readUntilError(got.stream);
      expect(Date.now() - started).toBeLessThan(5000);
      expect(data.length).toBe(50_000);
      expect(error).toMatchObject({ code: 'UNAVAILABLE', failure: { kind: 'timeout' } });
      expect((error as Error).message).toBe(`upstream ${shared.server().authority} sent no data for 700 ms`);
    } finally {
      await c.close();
    }
  });

  it('completes a slow trickle that lasts longer than every timeout (no whole-transfer timeout)', async () => {
    const chunks = 16;
    const size = Math.ceil(BLOB.length / chunks);
    useHandler((_req, res) => {
      res.writeHead(200, { 'content-length': BLOB.length });
      let i = 0;
      const timer = setInterval(() => {
        res.write(BLOB.subarray(i * size, (i + 1) * size));
        if (++i === chunks) {
          clearInterval(timer);
          res.end();
        }
      }, 150);
    });
    const c = makeClient(shared.server().origin, { timeouts: { connectMs: 500, headersMs: 500, idleMs: 500 } });
    try {
      const started = Date.now();
      const got = await c.getBlob('library/app', BLOB_DIGEST);
      expect(sha256(await readAll(got.stream))).toBe(BLOB_DIGEST);
      // The transfer outlasted the timeouts several times over.
      expect(Date.now() - started).toBeGreaterThan(1500);
    } finally {
      await c.close();
    }
  });

  it('fails when a 206 body is shorter than its Content-Range', async () => {
    useHandler((_req, res) => {
      res.writeHead(206, { 'content-length': 5, 'content-range': `bytes 10-19/${BLOB.length}` }).end(BLOB.subarray(10, 15));
    });
    const c = makeClient(shared.server().origin);
    try {
      const short = await c.getBlob('library/app', BLOB_DIGEST, { offset: 10 });
      const { data, error } = await readUntilError(short.stream);
      expect(data.length).toBeLessThanOrEqual(5);
      expect(error).toMatchObject({ code: 'UNAVAILABLE', failure: { kind: 'protocol' } });
      expect((error as Error).message).toContain('after 5 of 10 bytes');
    } finally {
      await c.close();
    }
  });
  it('refuses a blob whose size is not announced', async () => {
    useHandler((req, res) => {
      res.writeHead(200, { 'transfer-encoding': 'chunked' });
      res.end(req.method === 'HEAD' ? undefined : BLOB.subarray(0, 100));
    });
    const c = makeClient(shared.server().origin);
    try {
      expect(await rejection(c.getBlob('library/app', BLOB_DIGEST))).toMatchObject({ code: 'UNAVAILABLE', failure: { kind: 'protocol' } });
      expect(await rejection(c.headBlob('library/app', BLOB_DIGEST))).toMatchObject({ failure: { kind: 'protocol' } });
    } finally {
      await c.close();
    }
  });
});

describe('black holes', () => {
  it('fails within the headers timeout when the upstream accepts but never answers', async () => {
    const hole = await SilentTcpServer.start();
    const c = makeClient(`http://127.0.0.1:${hole.port}`, { timeouts: { connectMs: 500, headersMs: 800, idleMs: 800 } });
    try {
      const started = Date.now();
      const err = await rejection(c.headManifest('library/app', '1.0'));
      expect(Date.now() - started).toBeLessThan(4000);
      expect(err).toMatchObject({ code: 'UNAVAILABLE', status: 503, failure: { kind: 'timeout', host: `127.0.0.1:${hole.port}` } });
      expect((err as Error).message).toBe(`upstream 127.0.0.1:${hole.port} sent no response within 800 ms`);
    } finally {
      await c.destroy();
      await hole.stop();
    }
  });

  it('fails within the connect timeout when the upstream never accepts', async () => {
    const hole = await NeverAcceptingPort.start();
    try {
      // The setup must really black-hole connections, or this test proves nothing.
      expect(await hole.connectHangs(400)).toBe(true);
      const c = makeClient(`http://127.0.0.1:${hole.port}`, { timeouts: { connectMs: 600, headersMs: 5000, idleMs: 5000 } });
      try {
        const started = Date.now();
        const err = await rejection(c.getManifest('library/app', '1.0'));
        expect(Date.now() - started).toBeLessThan(4000);
        expect(err).toMatchObject({ code: 'UNAVAILABLE', failure: { kind: 'timeout' } });
        expect((err as Error).message).toBe(`upstream 127.0.0.1:${hole.port} did not accept a connection within 600 ms`);
      } finally {
        await c.destroy();
      }
    } finally {
      await hole.stop();
    }
  });

  it('reports a cancelled request as cancelled, not as an outage', async () => {
    const hole = await SilentTcpServer.start();
    const c = makeClient(`http://127.0.0.1:${hole.port}`, { timeouts: { connectMs: 5000, headersMs: 5000, idleMs: 5000 }, breakerOptions: { failureThreshold: 1 } });
    try {
      const controller = new AbortController();
      const pending = rejection(c.headManifest('library/app', '1.0', controller.signal));
      setTimeout(() => controller.abort(), 100);
      expect(await pending).toMatchObject({ failure: { kind: 'cancelled' } });
      expect(c.breakerState()).toBe('closed');
    } finally {
      await c.destroy();
      await hole.stop();
    }
  });
});

