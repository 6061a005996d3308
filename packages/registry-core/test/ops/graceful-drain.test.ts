import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { rmSync } from 'node:fs';
import { Agent, request, type IncomingMessage } from 'node:http';
import { connect, type Socket } from 'node:net';
import { startEntrepot, type TestInstance } from '../../../../testing/entrepot-instance';

/**
 * A graceful stop behind a load balancer that pools keep-alive connections:
 * a request in flight when the stop begins is answered whole and its
 * connection is closed after it, so no new request lands on the stopping
 * replica and none is cut by the drain deadline. A request that begins on a
 * kept-alive connection during the stop is told to close it.
 */
describe('graceful stop with keep-alive connections', () => {
  let instance: TestInstance;

  beforeAll(async () => {
    instance = await startEntrepot();
    expect((await instance.api('POST', '/organization/', { name: 'drain' })).status).toBe(201);
  });

  afterAll(async () => {
    if (stopped) rmSync(instance.dataDir, { recursive: true, force: true });
    else await instance.stop();
  });
  let stopped = false;

  it('answers a request in flight whole, closes its connection after it and closes the idle pooled one', async () => {
    const pool = new Agent({ keepAlive: true });
    const agent = new Agent({ keepAlive: true });
    const blob = randomBytes(256 * 1024);
    const digest = `sha256:${createHash('sha256').update(blob).digest('hex')}`;

    // A pooled connection left idle before the stop.
    const warm = await send(pool, 'GET', '/v2/', Buffer.alloc(0));
    expect(warm.res.statusCode).toBe(200);
    expect(warm.res.headers.connection).toBe('keep-alive');
    const idleClosed = once(warm.socket, 'close');

    // A push whose body is half sent when the stop begins.
    const push = request({ host: '127.0.0.1', port: instance.port, agent, method: 'POST', path: `/v2/drain/app/blobs/uploads/?digest=${digest}`, headers: { authorization: instance.adminAuth, 'content-type': 'application/octet-stream', 'content-length': String(blob.length) } });
    const answered = once(push, 'response') as Promise<[IncomingMessage]>;
    push.write(blob.subarray(0, blob.length / 2));
    const [pushSocket] = (await once(push, 'socket')) as [Socket];
    await new Promise((r) => setTimeout(r, 200));

    // The same on a raw connection, with a request pipelined behind it once the stop has begun.
    const other = randomBytes(64 * 1024);
    const otherDigest = `sha256:${createHash('sha256').update(other).digest('hex')}`;
    const raw = connect(instance.port, '127.0.0.1');
    const rawReceived: Buffer[] = [];
    raw.on('data', (chunk: Buffer) => rawReceived.push(chunk));
    const rawClosed = once(raw, 'close');
    raw.write(`POST /v2/drain/other/blobs/uploads/?digest=${otherDigest} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: ${instance.adminAuth}\r\nContent-Type: application/octet-stream\r\nContent-Length: ${other.length}\r\n\r\n`);
    raw.write(other.subarray(0, other.length / 2));
    await new Promise((r) => setTimeout(r, 200));

    stopped = true;
    const stopping = instance.entrepot.close();
    await idleClosed;
    raw.write(Buffer.concat([other.subarray(other.length / 2), Buffer.from(`GET /v2/ HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: ${instance.adminAuth}\r\n\r\n`)]));
    push.end(blob.subarray(blob.length / 2));
    const [res] = await answered;
    res.resume();
    await once(res, 'end');
    expect(res.statusCode).toBe(201);
    expect(res.headers['docker-content-digest']).toBe(digest);
    // Closed by the server once the answer ended (the stop waits for that).
    if (!pushSocket.destroyed) await once(pushSocket, 'close');
    // Both answered on the raw connection; the one that began during the stop told the client to close it.
    await rawClosed;
    const answers = Buffer.concat(rawReceived).toString('latin1').split(/(?=HTTP\/1\.1 )/);
    expect(answers.map((a) => a.slice(0, 12))).toEqual(['HTTP/1.1 201', 'HTTP/1.1 200']);
    expect(answers[1].split('\r\n\r\n')[0].toLowerCase()).toContain('connection: close');
    await stopping;
    pool.destroy();
    agent.destroy();
  });

  function send(agent: Agent, method: string, path: string, body: Buffer): Promise<{ res: IncomingMessage; socket: Socket }> {
    return new Promise((resolve, reject) => {
      const req = request({ host: '127.0.0.1', port: instance.port, agent, method, path, headers: { authorization: instance.adminAuth } }, (res) => {
        res.resume();
        res.on('end', () => resolve({ res, socket: req.socket as Socket }));
      });
      req.on('error', reject);
      req.end(body);
    });
  }
});
