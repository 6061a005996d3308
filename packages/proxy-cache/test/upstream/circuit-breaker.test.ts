import { randomBytes } from 'node:crypto';
import { CircuitBreaker, UpstreamError, type BreakerStateChange } from '../../src/upstream';
import { ManualClock, SilentTcpServer, TestServer, makeClient, readUntilError, rejection, sha256 } from './helpers';

function breaker(clock: ManualClock, changes: BreakerStateChange[] = []): CircuitBreaker {
  return new CircuitBreaker({
    host: 'up.example',
    clock,
    failureThreshold: 3,
    windowMs: 10_000,
    cooldownMs: 5_000,
    onStateChange: (c) => changes.push(c),
  });
}

describe('CircuitBreaker state machine', () => {
  it('opens after N consecutive failures, fails fast, half-opens after the cooldown and closes on a good probe', () => {
    const clock = new ManualClock();
    const changes: BreakerStateChange[] = [];
    const b = breaker(clock, changes);
    for (let i = 0; i < 2; i++) b.acquire().failure();
    expect(b.state()).toBe('closed');
    b.acquire().failure();
    expect(b.state()).toBe('open');
    const err = (() => {
      try {
        b.acquire();
      } catch (e) {
        return e;
      }
      return null;
    })();
    expect(err).toBeInstanceOf(UpstreamError);
    expect(err).toMatchObject({ code: 'UNAVAILABLE', status: 503, message: 'upstream up.example is unavailable (circuit open)' });
    expect(err).toMatchObject({ failure: { kind: 'circuit-open' }, headers: { 'Retry-After': '5' } });

    clock.advance(5_000);
    expect(b.state()).toBe('half-open');
    const probe = b.acquire();
    expect(() => b.acquire()).toThrow('circuit open');
    probe.success();
    expect(b.state()).toBe('closed');
    expect(changes.map((c) => `${c.from}->${c.to}`)).toEqual(['closed->open', 'open->half-open', 'half-open->closed']);
    expect(changes[0]).toMatchObject({ host: 'up.example', failures: 3 });
  });

  it('reopens when the probe fails, for a full new cooldown', () => {
    const clock = new ManualClock();
    const b = breaker(clock);
    for (let i = 0; i < 3; i++) b.acquire().failure();
    clock.advance(5_000);
    b.acquire().failure();
    expect(b.state()).toBe('open');
    clock.advance(4_999);
    expect(b.state()).toBe('open');
    clock.advance(1);
    expect(b.state()).toBe('half-open');
  });

  it('needs the failures to be consecutive and within the window', () => {
    const clock = new ManualClock();
    const b = breaker(clock);
    b.acquire().failure();
    b.acquire().failure();
    b.acquire().success(); // e.g. a 404: the upstream is up
    b.acquire().failure();
    b.acquire().failure();
    expect(b.state()).toBe('closed');
    clock.advance(10_001); // the streak is too old to count
    b.acquire().failure();
    expect(b.state()).toBe('closed');
    expect(b.consecutiveFailures).toBe(1);
  });

  it('classifies settled errors: outages count, 429/cancel are neutral, other answers are success', () => {
    const clock = new ManualClock();
    const b = breaker(clock);
    const host = 'up.example';
    b.acquire().settle({ kind: 'timeout', host });
    b.acquire().settle({ kind: 'status', host, status: 502 });
    b.acquire().settle({ kind: 'ratelimit', host, status: 429 });
    b.acquire().settle({ kind: 'cancelled', host });
    expect(b.consecutiveFailures).toBe(2);
    b.acquire().settle({ kind: 'notfound', host, status: 404 });
    expect(b.consecutiveFailures).toBe(0);
    b.acquire().settle({ kind: 'auth', host, status: 401 });
    b.acquire().settle({ kind: 'network', host });
    b.acquire().settle({ kind: 'status', host, status: 400 });
    expect(b.consecutiveFailures).toBe(0);
  });

  it('frees the half-open slot when the probe is neutral, and ignores a second settle', () => {
    const clock = new ManualClock();
    const b = breaker(clock);
    for (let i = 0; i < 3; i++) b.acquire().failure();
    clock.advance(5_000);
    const probe = b.acquire();
    probe.release();
    probe.failure(); // ignored: already settled
    expect(b.state()).toBe('half-open');
    b.acquire().success();
    expect(b.state()).toBe('closed');
  });
});

describe('CircuitBreaker with the upstream client', () => {
  it('stops calling a failing upstream, probes it after the cooldown and closes when it recovers', async () => {
    let healthy = false;
    const manifest = Buffer.from('{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json"}');
    const server = await TestServer.start((_req, res) => {
      if (!healthy) {
        res.writeHead(503).end();
        return;
      }
      res.writeHead(200, { 'content-type': 'application/vnd.oci.image.manifest.v1+json' }).end(manifest);
    });
    const clock = new ManualClock();
    const changes: string[] = [];
    const c = makeClient(server.origin, {
      clock,
      breakerOptions: { failureThreshold: 3, cooldownMs: 10_000, onStateChange: (ch) => changes.push(ch.to) },
    });
    try {
      for (let i = 0; i < 3; i++) expect(await rejection(c.getManifest('library/app', '1.0'))).toMatchObject({ failure: { kind: 'status', status: 503 } });
      expect(c.breakerState()).toBe('open');
      const fast = await rejection(c.getManifest('library/app', '1.0'));
      expect(fast).toMatchObject({ code: 'UNAVAILABLE', failure: { kind: 'circuit-open' } });
      expect((fast as Error).message).toBe(`upstream ${server.authority} is unavailable (circuit open)`);
      expect(server.requests).toHaveLength(3);

      clock.advance(10_000);
      expect(c.breakerState()).toBe('half-open');
      // The probe fails: open again, still only one more request reached the upstream.
      await rejection(c.getManifest('library/app', '1.0'));
      expect(c.breakerState()).toBe('open');
      expect(server.requests).toHaveLength(4);

      clock.advance(10_000);
      healthy = true;
      expect((await c.getManifest('library/app', '1.0')).digest).toBe(sha256(manifest));
      expect(c.breakerState()).toBe('closed');
      expect(changes).toEqual(['open', 'half-open', 'open', 'half-open', 'closed']);
    } finally {
      await c.close();
      await server.stop();
    }
  });

  it('lets exactly one probe through while half-open', async () => {
    let healthy = false;
    const server = await TestServer.start((_req, res) => {
      if (!healthy) {
        res.writeHead(500).end();
        return;
      }
      setTimeout(() => res.writeHead(200, { 'content-length': 3 }).end('abc'), 200);
    });
    const clock = new ManualClock();
    const c = makeClient(server.origin, { clock, breakerOptions: { failureThreshold: 1, cooldownMs: 1000 } });
    const digest = sha256('abc');
    try {
      await rejection(c.headBlob('library/app', digest));
      expect(c.breakerState()).toBe('open');
      clock.advance(1000);
      healthy = true;
      const results = await Promise.allSettled([c.headBlob('library/app', digest), c.headBlob('library/app', digest), c.headBlob('library/app', digest)]);
      expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
      const rejected = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
      expect(rejected).toHaveLength(2);
      for (const r of rejected) expect(r.reason).toMatchObject({ failure: { kind: 'circuit-open' } });
      expect(server.requests).toHaveLength(2);
      expect(c.breakerState()).toBe('closed');
    } finally {
      await c.close();
      await server.stop();
    }
  });

  it('turns a black-holed upstream into immediate failures once open', async () => {
    const hole = await SilentTcpServer.start();
    const c = makeClient(`http://127.0.0.1:${hole.port}`, {
      timeouts: { connectMs: 300, headersMs: 300, idleMs: 300 },
      breakerOptions: { failureThreshold: 2 },
    });
    try {
      for (let i = 0; i < 2; i++) expect(await rejection(c.headManifest('library/app', '1.0'))).toMatchObject({ failure: { kind: 'timeout' } });
      const started = Date.now();
      expect(await rejection(c.headManifest('library/app', '1.0'))).toMatchObject({ failure: { kind: 'circuit-open' } });
      expect(Date.now() - started).toBeLessThan(100);
    } finally {
      await c.destroy();
      await hole.stop();
    }
  });

  it('counts a blob body that breaks after its headers as a failure', async () => {
    const blob = randomBytes(100_000);
    const server = await TestServer.start((_req, res) => {
      res.writeHead(200, { 'content-length': blob.length });
      res.write(blob.subarray(0, 1000), () => setTimeout(() => res.socket?.destroy(), 20));
    });
    const c = makeClient(server.origin, { breakerOptions: { failureThreshold: 2 } });
    try {
      for (let i = 0; i < 2; i++) {
        const got = await c.getBlob('library/app', sha256(blob));
        expect((await readUntilError(got.stream)).error).toMatchObject({ failure: { kind: 'network' } });
      }
      expect(c.breakerState()).toBe('open');
    } finally {
      await c.close();
      await server.stop();
    }
  });
});
