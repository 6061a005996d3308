import { randomBytes } from 'node:crypto';
import { connect, createServer, type Server } from 'node:net';
import Redis from 'ioredis';
import { eventually } from '../../../../testing/tools';
import { InProcessChangeNotices, type ChangeNotices } from '../../src/coordination/change-notices';
import { RedisChangeNotices } from '../../src/coordination/redis-change-notices';

const REDIS_URL = process.env.ENTREPOT_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function heard(notices: ChangeNotices, topic: string): Array<string | null> {
  const keys: Array<string | null> = [];
  notices.subscribe(topic, (key) => keys.push(key));
  return keys;
}

/** Resolves once a fresh Redis subscriber connection is subscribed (the channel has `count` subscribers). */
async function subscribers(prefix: string, count: number): Promise<void> {
  const redis = new Redis(REDIS_URL);
  try {
    const deadline = Date.now() + 10_000;
    for (;;) {
      const [, n] = (await redis.pubsub('NUMSUB', `${prefix}:changes`)) as [string, number];
      if (Number(n) >= count) return;
      if (Date.now() > deadline) throw new Error(`${count} subscribers not reached`);
      await sleep(20);
    }
  } finally {
    redis.disconnect();
  }
}

describe.each([
  ['in-process', async () => {
    const one = new InProcessChangeNotices();
    return { here: one, there: one as ChangeNotices, close: () => one.close() };
  }],
  ['redis', async () => {
    const prefix = `entrepot-test-${randomBytes(4).toString('hex')}`;
    const here = new RedisChangeNotices(REDIS_URL, prefix);
    const there = new RedisChangeNotices(REDIS_URL, prefix);
    await subscribers(prefix, 2);
    return { here: here as ChangeNotices, there: there as ChangeNotices, close: async () => void (await Promise.all([here.close(), there.close()])) };
  }],
])('%s change notices', (_name, make: () => Promise<{ here: ChangeNotices; there: ChangeNotices; close: () => Promise<void> }>) => {
  let here: ChangeNotices;
  let there: ChangeNotices;
  let close: () => Promise<void>;

  beforeEach(async () => {
    ({ here, there, close } = await make());
  });
  afterEach(() => close());

  it('delivers to the publishing replica before publish resolves, and to the others', async () => {
    const heardHere = heard(here, 'rows');
    const heardThere = heard(there, 'rows');
    await here.publish('rows', 'acme/app');
    expect(heardHere).toContain('acme/app');
    await eventually(() => heardThere.includes('acme/app'));
    await there.publish('rows', null);
    expect(heardThere).toContain(null);
    await eventually(() => heardHere.includes(null));
  });

  it('keeps topics apart', async () => {
    const rows = heard(there, 'rows');
    const configs = heard(there, 'configs');
    await here.publish('configs', '7');
    await here.publish('rows', 'marker');
    await eventually(() => rows.includes('marker'));
    expect(rows).toEqual(['marker']);
    expect(configs).toEqual(['7']);
  });
});

describe('redis change notices across a cut subscription', () => {
  it('tells listeners to forget everything when it subscribes again, and hears notices afterwards', async () => {
    const prefix = `entrepot-test-${randomBytes(4).toString('hex')}`;
    const here = new RedisChangeNotices(REDIS_URL, prefix);
    const there = new RedisChangeNotices(REDIS_URL, prefix);
    const admin = new Redis(REDIS_URL);
    try {
      await subscribers(prefix, 2);
      const keys = heard(there, 'rows');
      // Cuts this prefix's subscriber connections on the server, as a Redis restart would.
      const clients = String(await admin.client('LIST')).split('\n');
      const ids = clients.filter((line) => line.includes(` name=${prefix}:notices-subscribe `)).map((line) => /\bid=(\d+)/.exec(line)?.[1]);
      expect(ids).toHaveLength(2);
      for (const id of ids) await admin.client('KILL', 'ID', String(id));
      await eventually(() => keys.includes(null));
      await subscribers(prefix, 2);
      await here.publish('rows', 'after');
      await eventually(() => keys.includes('after'));
    } finally {
      admin.disconnect();
      await Promise.all([here.close(), there.close()]);
    }
  });

  it('publishes without throwing, to its own listeners, while Redis is unreachable', async () => {
    const closedPort = await new Promise<number>((resolve) => {
      const probe = createServer().listen(0, '127.0.0.1', () => {
        const { port } = probe.address() as { port: number };
        probe.close(() => resolve(port));
      });
    });
    const notices = new RedisChangeNotices(`redis://127.0.0.1:${closedPort}`, 'unreachable');
    try {
      const keys = heard(notices, 'rows');
      await notices.publish('rows', 'x');
      expect(keys).toEqual(['x']);
    } finally {
      await notices.close();
    }
  });

  it('subscribes once Redis becomes reachable after start', async () => {
    const redisUrl = new URL(REDIS_URL);
    const port = await new Promise<number>((resolve) => {
      const probe = createServer().listen(0, '127.0.0.1', () => {
        const { port: free } = probe.address() as { port: number };
        probe.close(() => resolve(free));
      });
    });
    const prefix = `entrepot-test-${randomBytes(4).toString('hex')}`;
    const late = new RedisChangeNotices(`redis://127.0.0.1:${port}`, prefix);
    const publisher = new RedisChangeNotices(REDIS_URL, prefix);
    let relay: Server | null = null;
    try {
      const keys = heard(late, 'rows');
      await sleep(500);
      // Redis "comes up" on the late replica's address: a relay to the real server.
      relay = createServer((client) => {
        const server = connect(Number(redisUrl.port || 6379), redisUrl.hostname);
        client.on('error', () => server.destroy());
        server.on('error', () => client.destroy());
        client.pipe(server).pipe(client);
      });
      await new Promise<void>((resolve) => relay!.listen(port, '127.0.0.1', resolve));
      await subscribers(prefix, 2);
      await publisher.publish('rows', 'seen');
      await eventually(() => keys.includes('seen'));
    } finally {
      await Promise.all([late.close(), publisher.close()]);
      relay?.close();
    }
  });
});
