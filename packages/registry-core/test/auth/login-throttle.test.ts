import { request } from 'node:http';
import { ADMIN_PASSWORD, ADMIN_USER, basicAuth, startEntrepot, type TestInstance } from '../../../../testing/entrepot-instance';

const MAX_FAILURES = 3;

/** GET as `auth` from a chosen local address (127.0.0.x are all loopback on Linux). */
function getFrom(inst: TestInstance, path: string, auth: string, localAddress: string): Promise<{ status: number; retryAfter?: string; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port: inst.port, path, localAddress, headers: { authorization: auth } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, retryAfter: res.headers['retry-after'] as string | undefined, body: Buffer.concat(chunks).toString('utf8') }));
    });
    req.on('error', reject);
    req.end();
  });
}

describe('failed login throttling', () => {
  let inst: TestInstance;

  beforeAll(async () => {
    inst = await startEntrepot({ overrides: { auth: { password_hash_memory_kib: 1024, max_failed_logins: MAX_FAILURES, lockout_seconds: 120 } } });
    expect((await inst.api('POST', '/superuser/users/', { username: 'victim', password: 'right-password' })).status).toBe(201);
    expect((await inst.api('POST', '/superuser/users/', { username: 'bystander', password: 'right-password' })).status).toBe(201);
  });

  afterAll(async () => {
    await inst?.stop();
  });

  it(`answers 429 with Retry-After after ${MAX_FAILURES} failures, per account and address`, async () => {
    const wrong = basicAuth('victim', 'wrong-password');
    for (let i = 0; i < MAX_FAILURES; i++) {
      expect((await getFrom(inst, '/api/v1/user/', wrong, '127.0.0.1')).status).toBe(401);
    }
    const locked = await getFrom(inst, '/api/v1/user/', wrong, '127.0.0.1');
    expect(locked.status).toBe(429);
    expect(Number(locked.retryAfter)).toBeGreaterThan(0);
    expect(Number(locked.retryAfter)).toBeLessThanOrEqual(120);
    expect(JSON.parse(locked.body)).toMatchObject({ error_type: 'toomanyrequests' });
    // Even the right password is refused from that address while locked, on the API and the registry.
    const right = basicAuth('victim', 'right-password');
    expect((await getFrom(inst, '/api/v1/user/', right, '127.0.0.1')).status).toBe(429);
    const token = await getFrom(inst, '/v2/auth?scope=repository:x/y:pull', right, '127.0.0.1');
    expect(token.status).toBe(429);
    expect(token.retryAfter).toBeDefined();
    expect((await getFrom(inst, '/v2/', right, '127.0.0.1')).status).toBe(429);
    // Another account from the same address is unaffected.
    expect((await getFrom(inst, '/api/v1/user/', basicAuth('bystander', 'right-password'), '127.0.0.1')).status).toBe(200);
    // The same account from another address is unaffected (the per-account limit is higher).
    expect((await getFrom(inst, '/api/v1/user/', right, '127.0.0.2')).status).toBe(200);
  });

  it('throttles robot tokens the same way', async () => {
    await inst.api('POST', '/organization/', { name: 'botorg' });
    const robot = await inst.api('PUT', '/organization/botorg/robots/guess', {});
    expect(robot.status).toBe(201);
    const { name, token } = robot.body as { name: string; token: string };
    for (let i = 0; i < MAX_FAILURES; i++) {
      expect((await getFrom(inst, '/v2/', basicAuth(name, `guess-${i}`), '127.0.0.3')).status).toBe(401);
    }
    expect((await getFrom(inst, '/v2/', basicAuth(name, token), '127.0.0.3')).status).toBe(429);
    expect((await getFrom(inst, '/v2/', basicAuth(name, token), '127.0.0.4')).status).toBe(200);
  });

  it('forgets failures after a successful login', async () => {
    expect((await inst.api('POST', '/superuser/users/', { username: 'forgetful', password: 'right-password' })).status).toBe(201);
    for (let round = 0; round < 3; round++) {
      for (let i = 0; i < MAX_FAILURES - 1; i++) {
        expect((await getFrom(inst, '/api/v1/user/', basicAuth('forgetful', 'nope'), '127.0.0.5')).status).toBe(401);
      }
      expect((await getFrom(inst, '/api/v1/user/', basicAuth('forgetful', 'right-password'), '127.0.0.5')).status).toBe(200);
    }
  });

  it('never counts successful logins as failures, however many', async () => {
    expect((await inst.api('POST', '/superuser/users/', { username: 'busy', password: 'right-password' })).status).toBe(201);
    const right = basicAuth('busy', 'right-password');
    const recorded = (): Promise<unknown[]> => inst.entrepot.services.db('login_failures').where('key', 'like', '%busy%');
    // Concurrent, as a client pulling layers in parallel sends them.
    const many = await Promise.all(Array.from({ length: MAX_FAILURES * 4 }, () => getFrom(inst, '/v2/', right, '127.0.0.7')));
    expect(many.map((r) => r.status)).toEqual(many.map(() => 200));
    expect(await recorded()).toEqual([]);
    // One failure, then successes: the failure is forgotten, so two more failures do not lock.
    expect((await getFrom(inst, '/v2/', basicAuth('busy', 'wrong'), '127.0.0.7')).status).toBe(401);
    expect((await getFrom(inst, '/v2/', right, '127.0.0.7')).status).toBe(200);
    for (let i = 0; i < MAX_FAILURES - 1; i++) expect((await getFrom(inst, '/v2/', basicAuth('busy', 'wrong'), '127.0.0.7')).status).toBe(401);
    expect((await getFrom(inst, '/v2/', right, '127.0.0.7')).status).toBe(200);
    // What stays is the per-account count (its limit is higher), not the address's.
    expect((await recorded()).map((r) => (r as { key: string }).key)).toEqual(['acct:busy']);
  });

  it('does not lock out the administrator from elsewhere when someone guesses their password', async () => {
    for (let i = 0; i < MAX_FAILURES + 1; i++) await getFrom(inst, '/api/v1/user/', basicAuth(ADMIN_USER, 'guess'), '127.0.0.6');
    expect((await getFrom(inst, '/api/v1/user/', basicAuth(ADMIN_USER, 'guess'), '127.0.0.6')).status).toBe(429);
    expect((await getFrom(inst, '/api/v1/user/', basicAuth(ADMIN_USER, ADMIN_PASSWORD), '127.0.0.1')).status).toBe(200);
  });
});
