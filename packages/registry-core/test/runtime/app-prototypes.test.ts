import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import express, { type Express } from 'express';
import { createAppServer } from '../../src/http/app-server';

function appWithRoute(label: string): Express {
  const app = express();
  app.set('query parser', 'simple');
  app.get('/echo', (req, res) => {
    res.set('X-App', label).status(201).json({ agent: req.get('user-agent'), q: req.query.q, path: req.path });
  });
  return app;
}

async function listen(server: Server): Promise<string> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

describe('createAppServer', () => {
  const servers: Server[] = [];
  afterEach(async () => {
    await Promise.all(servers.splice(0).map((s) => new Promise((resolve) => s.close(resolve))));
  });

  it("creates requests and responses with the app's own prototypes, before Express sees them", async () => {
    const apps = [appWithRoute('one'), appWithRoute('two')];
    const seen: Array<{ app: number; request: boolean; response: boolean }> = [];
    const urls: string[] = [];
    for (const [index, app] of apps.entries()) {
      const { server } = createAppServer(app);
      servers.push(server);
      // Runs before Express's handler: what the server itself constructed.
      server.prependListener('request', (req: IncomingMessage, res: ServerResponse) => {
        seen.push({ app: index, request: Object.getPrototypeOf(req) === app.request, response: Object.getPrototypeOf(res) === app.response });
      });
      urls.push(await listen(server));
    }
    for (const [index, url] of urls.entries()) {
      const res = await fetch(`${url}/echo?q=${index}`, { headers: { 'user-agent': 'probe/1' } });
      expect(res.status).toBe(201);
      expect(res.headers.get('x-app')).toBe(index === 0 ? 'one' : 'two');
      expect(await res.json()).toEqual({ agent: 'probe/1', q: String(index), path: '/echo' });
    }
    expect(seen).toEqual([
      { app: 0, request: true, response: true },
      { app: 1, request: true, response: true },
    ]);
  });

  it('serves request bodies and keep-alive reuse like a plain server', async () => {
    const app = express();
    app.use(express.json());
    app.post('/sum', (req, res) => {
      const { a, b } = req.body as { a: number; b: number };
      res.json({ sum: a + b });
    });
    const { server } = createAppServer(app);
    servers.push(server);
    const url = await listen(server);
    for (let i = 0; i < 20; i++) {
      const res = await fetch(`${url}/sum`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ a: i, b: 1 }) });
      expect(await res.json()).toEqual({ sum: i + 1 });
    }
  });
});
