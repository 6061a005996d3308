import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError, loadConfig } from '../../src/config/config';
import { startEntrepot } from '../../../../testing/entrepot-instance';
import { eventually, freePort } from '../../../../testing/tools';

describe('configuration', () => {
  it('lists every invalid setting in one error', () => {
    const dir = mkdtempSync(join(tmpdir(), 'entrepot-cfg-'));
    try {
      const file = join(dir, 'config.yaml');
      writeFileSync(file, 'port: 99999\nlog_level: loud\nstorage: {driver: s3}\n');
      let error: unknown;
      try {
        loadConfig({ ENTREPOT_CONFIG: file });
      } catch (err) {
        error = err;
      }
      expect(error).toBeInstanceOf(ConfigError);
      const message = (error as Error).message;
      expect(message).toContain('port');
      expect(message).toContain('log_level');
      expect(message).toContain('storage');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('takes feature flags and the documented variables from the environment', () => {
    const config = loadConfig({ FEATURE_PROXY_CACHE: 'false', PORT: '6001', ENTREPOT_DATA_DIR: '/tmp/x' });
    expect(config.flags.FEATURE_PROXY_CACHE).toBe(false);
    expect(config.flags.FEATURE_QUOTA_MANAGEMENT).toBe(true);
    expect(config.port).toBe(6001);
    expect(config.data_dir).toBe('/tmp/x');
    expect(() => loadConfig({ FEATURE_PROXY_CACHE: 'maybe' })).toThrow(/FEATURE_PROXY_CACHE/);
  });

  it('requires a shared secret key with a shared database', () => {
    expect(() => loadConfig({ ENTREPOT_DATABASE_URL: 'mysql://root@127.0.0.1:3306/x' })).toThrow(/secret_key/);
  });
});

describe('operations', () => {
  it('serves TLS when given a certificate and key', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'entrepot-tls-'));
    const cert = join(dir, 'cert.pem');
    const key = join(dir, 'key.pem');
    execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert, '-days', '1', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1'], { stdio: 'ignore' });
    const instance = await startEntrepot({ overrides: { tls: { cert_file: cert, key_file: key } } });
    try {
      const status = await new Promise<{ status: number; challenge: string }>((resolve, reject) => {
        const req = httpsRequest({ host: '127.0.0.1', port: instance.port, path: '/v2/', ca: execFileSync('cat', [cert]) }, (res) => {
          res.resume();
          resolve({ status: res.statusCode ?? 0, challenge: String(res.headers['www-authenticate'] ?? '') });
        });
        req.on('error', reject);
        req.end();
      });
      expect(status.status).toBe(401);
      expect(status.challenge).toContain('realm="https://127.0.0.1:');
    } finally {
      await instance.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('reports health and metrics, and drains requests on shutdown', async () => {
    const instance = await startEntrepot();
    expect((await fetch(`${instance.url}/health/instance`)).status).toBe(200);
    const endToEnd = await fetch(`${instance.url}/health/endtoend`);
    expect(endToEnd.status).toBe(200);
    expect(await endToEnd.json()).toMatchObject({ checks: { database: true, storage: true } });
    await fetch(`${instance.url}/v2/`);
    const metrics = await (await fetch(`${instance.url}/metrics`)).text();
    expect(metrics).toMatch(/entrepot_http_requests_total\{method="GET",route="v2_base",status="401"\} [1-9]/);
    // An upload whose body is still arriving when shutdown starts completes.
    expect((await instance.api('POST', '/organization/', { name: 'drain' })).status).toBe(201);
    const session = await fetch(`${instance.url}/v2/drain/app/blobs/uploads/`, { method: 'POST', headers: { authorization: instance.adminAuth } });
    const location = session.headers.get('location')!;
    let answer: (status: number) => void = () => undefined;
    const finished = new Promise<number>((resolve) => (answer = resolve));
    const req = httpRequest({ host: '127.0.0.1', port: instance.port, method: 'PATCH', path: location, headers: { authorization: instance.adminAuth, 'content-length': '2048' } }, (res) => {
      res.resume();
      answer(res.statusCode ?? 0);
    });
    req.on('error', () => answer(0));
    req.write(Buffer.alloc(1024, 1));
    await new Promise((r) => setTimeout(r, 200));
    const closing = instance.stop();
    await new Promise((r) => setTimeout(r, 200));
    req.end(Buffer.alloc(1024, 2));
    expect(await finished).toBe(202);
    await closing;
  });

  it('reports the read buffers a served blob took from the pool and gave back', async () => {
    const instance = await startEntrepot();
    try {
      const gauge = async (name: string): Promise<number> => {
        const text = await (await fetch(`${instance.url}/metrics`)).text();
        const line = new RegExp(`^${name} (\\d+)$`, 'm').exec(text);
        if (!line) throw new Error(`${name} missing from /metrics`);
        return Number(line[1]);
      };
      expect(await gauge('entrepot_buffer_pool_allocated_bytes')).toBe(0);
      expect((await instance.api('POST', '/organization/', { name: 'pool' })).status).toBe(201);
      const blob = randomBytes(3 * 1024 * 1024);
      const digest = `sha256:${createHash('sha256').update(blob).digest('hex')}`;
      const auth = { authorization: instance.adminAuth };
      const session = await fetch(`${instance.url}/v2/pool/app/blobs/uploads/`, { method: 'POST', headers: auth });
      const location = new URL(session.headers.get('location')!, instance.url);
      location.searchParams.set('digest', digest);
      expect((await fetch(location, { method: 'PUT', headers: { ...auth, 'content-type': 'application/octet-stream' }, body: blob })).status).toBe(201);
      const got = await fetch(`${instance.url}/v2/pool/app/blobs/${digest}`, { headers: auth });
      expect(Buffer.from(await got.arrayBuffer()).equals(blob)).toBe(true);
      // Served through pool buffers, each back in the pool once the socket took it.
      const allocated = await gauge('entrepot_buffer_pool_allocated_bytes');
      expect(allocated).toBeGreaterThan(0);
      await eventually(async () => (await gauge('entrepot_buffer_pool_free_bytes')) === allocated, 5_000, 'every buffer back in the pool');
    } finally {
      await instance.stop();
    }
  });

  it('writes audit entries directly when the job queue is unreachable', async () => {
    const port = await freePort();
    const instance = await startEntrepot({ overrides: { queue: { driver: 'bullmq', redis_url: `redis://127.0.0.1:${port}`, prefix: 'unreachable' } } });
    try {
      expect((await instance.api('POST', '/organization/', { name: 'noqueue' })).status).toBe(201);
      const logs = await instance.api('GET', '/organization/noqueue/logs');
      expect(JSON.stringify(logs.body)).toContain('org_create');
      const metrics = await (await fetch(`${instance.url}/metrics`)).text();
      expect(metrics).toMatch(/entrepot_audit_direct_writes_total [1-9]/);
    } finally {
      await instance.stop();
    }
  }, 60_000);
});
