import { createHash } from 'node:crypto';
import { startEntrepot, type TestInstance } from '../../../../testing/entrepot-instance';

const sha256 = (data: Buffer) => `sha256:${createHash('sha256').update(data).digest('hex')}`;

describe('chunked uploads', () => {
  let instance: TestInstance;

  beforeAll(async () => {
    instance = await startEntrepot();
    expect((await instance.api('POST', '/organization/', { name: 'up' })).status).toBe(201);
  });
  afterAll(() => instance.stop());

  async function start(): Promise<string> {
    const res = await fetch(`${instance.url}/v2/up/repo/blobs/uploads/`, { method: 'POST', headers: { authorization: instance.adminAuth } });
    expect(res.status).toBe(202);
    return res.headers.get('location')!;
  }

  it('refuses an out-of-order chunk with 416 and the size to resume from', async () => {
    const location = await start();
    const chunk = Buffer.alloc(1024, 1);
    const res = await fetch(`${instance.url}${location}`, {
      method: 'PATCH',
      headers: { authorization: instance.adminAuth, 'content-range': '1024-2047', 'content-type': 'application/octet-stream' },
      body: chunk,
    });
    expect(res.status).toBe(416);
    expect(res.headers.get('range')).toBe('0-0');
  });

  it('assembles in-order chunks and verifies the digest on completion', async () => {
    const location = await start();
    const data = Buffer.concat([Buffer.alloc(1000, 2), Buffer.alloc(500, 3)]);
    const first = await fetch(`${instance.url}${location}`, {
      method: 'PATCH',
      headers: { authorization: instance.adminAuth, 'content-range': '0-999', 'content-type': 'application/octet-stream' },
      body: data.subarray(0, 1000),
    });
    expect(first.status).toBe(202);
    expect(first.headers.get('range')).toBe('0-999');
    const wrong = await fetch(`${instance.url}${first.headers.get('location')}?digest=${sha256(Buffer.from('other'))}`, {
      method: 'PUT',
      headers: { authorization: instance.adminAuth, 'content-type': 'application/octet-stream' },
      body: data.subarray(1000),
    });
    expect(wrong.status).toBe(400);
    expect(((await wrong.json()) as { errors: Array<{ code: string }> }).errors[0].code).toBe('DIGEST_INVALID');
  });

  it('cancels an upload with DELETE', async () => {
    const location = await start();
    const res = await fetch(`${instance.url}${location}`, { method: 'DELETE', headers: { authorization: instance.adminAuth } });
    expect(res.status).toBe(204);
    const status = await fetch(`${instance.url}${location}`, { headers: { authorization: instance.adminAuth } });
    expect(status.status).toBe(404);
  });
});
