import { spawn, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { ADMIN_PASSWORD, ADMIN_USER, basicAuth } from '../../../../testing/entrepot-instance';
import { freePort, waitForHttp } from '../../../../testing/tools';

const MAIN = resolve(__dirname, '../../dist/main.js');
const auth = basicAuth(ADMIN_USER, ADMIN_PASSWORD);

function startProcess(dataDir: string, port: number): ChildProcess {
  if (!existsSync(MAIN)) throw new Error(`${MAIN} is missing: run "npm run build" (npm test builds first)`);
  return spawn(process.execPath, [MAIN], {
    env: { ...process.env, ENTREPOT_DATA_DIR: dataDir, PORT: String(port), ENTREPOT_HOST: '127.0.0.1', ENTREPOT_BOOTSTRAP_ADMIN: `${ADMIN_USER}:${ADMIN_PASSWORD}`, ENTREPOT_LOG_LEVEL: 'error' },
    stdio: 'ignore',
  });
}

/** Streams `total` bytes slowly to `path`; resolves once `before` bytes are sent (the rest never comes). */
function startSlowUpload(port: number, method: string, path: string, total: number, before: number): Promise<void> {
  return new Promise((resolveSent) => {
    const req = request({ host: '127.0.0.1', port, method, path, headers: { authorization: auth, 'content-length': String(total), 'content-type': 'application/octet-stream' } });
    req.on('error', () => undefined);
    const chunk = randomBytes(64 * 1024);
    let sent = 0;
    const pump = () => {
      while (sent < before) {
        sent += chunk.length;
        if (!req.write(chunk)) {
          req.once('drain', pump);
          return;
        }
      }
      resolveSent();
    };
    pump();
  });
}

describe('kill -9 during uploads', () => {
  let dataDir: string;
  let child: ChildProcess | null = null;

  afterAll(() => {
    child?.kill('SIGKILL');
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('leaves no partial blob visible after a restart', async () => {
    dataDir = mkdtempSync(join(tmpdir(), 'entrepot-kill-'));
    const port = await freePort();
    child = startProcess(dataDir, port);
    const url = `http://127.0.0.1:${port}`;
    await waitForHttp(`${url}/health/instance`, 20_000);
    const org = await fetch(`${url}/api/v1/organization/`, { method: 'POST', headers: { authorization: auth, 'content-type': 'application/json' }, body: JSON.stringify({ name: 'crash' }) });
    expect(org.status).toBe(201);

    const total = 32 * 1024 * 1024;
    const digest = `sha256:${createHash('sha256').update(randomBytes(16)).digest('hex')}`;
    const session = await fetch(`${url}/v2/crash/app/blobs/uploads/`, { method: 'POST', headers: { authorization: auth } });
    const location = session.headers.get('location')!;
    await Promise.all([
      startSlowUpload(port, 'POST', `/v2/crash/app/blobs/uploads/?digest=${digest}`, total, total / 2),
      startSlowUpload(port, 'PATCH', location, total, total / 2),
      startSlowUpload(port, 'PUT', `${location}?digest=${digest}`, total, total / 4),
    ]);
    child.kill('SIGKILL');
    await new Promise((done) => child!.once('exit', done));

    child = startProcess(dataDir, port);
    await waitForHttp(`${url}/health/instance`, 20_000);
    const head = await fetch(`${url}/v2/crash/app/blobs/${digest}`, { method: 'HEAD', headers: { authorization: auth } });
    expect(head.status).toBe(404);
    const blobFiles = existsSync(join(dataDir, 'storage', 'blobs', 'sha256')) ? readdirSync(join(dataDir, 'storage', 'blobs', 'sha256'), { recursive: true }) : [];
    expect(blobFiles.filter((f) => String(f).includes(digest.slice(7)))).toEqual([]);
    expect(readdirSync(join(dataDir, 'storage', 'tmp'))).toEqual([]);
    // The registry works normally afterwards.
    const data = randomBytes(1000);
    const good = `sha256:${createHash('sha256').update(data).digest('hex')}`;
    const put = await fetch(`${url}/v2/crash/app/blobs/uploads/?digest=${good}`, { method: 'POST', headers: { authorization: auth }, body: data });
    expect(put.status).toBe(201);
    child.kill('SIGTERM');
    await new Promise((done) => child!.once('exit', done));
    child = null;
  }, 90_000);
});
