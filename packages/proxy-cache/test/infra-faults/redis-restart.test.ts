/**
 * SPEC §6 fault matrix, "Redis restart": the Redis server that carries the
 * BullMQ queues (audit writes) and the fill/quota leases is crashed and
 * restarted, then stopped cleanly and restarted, while clients pull cold and
 * warm images. Pulls keep working while Redis is down (leases fall back to
 * this process), no audit entry is lost (direct writes while the queue is
 * unreachable, R-AUDIT), and queued jobs run again once Redis is back.
 */
import { randomBytes } from 'node:crypto';
import type { Digest } from '@entrepot/registry-core';
import { Queue } from 'bullmq';
import knex from 'knex';
import { join } from 'node:path';
import { startEntrepot, type TestInstance } from '../../../../testing/entrepot-instance';
import { UpstreamRegistry } from '../../../../testing/upstream-registry';
import { sleep } from '../../../../testing/tools';
import { createPlugin } from '../../src/index';
import {
  KiB,
  MiB,
  PullTally,
  checkDbReferences,
  checkFsBlobStore,
  countPullEntries,
  createCacheOrg,
  crashThenStop,
  relativeEvents,
  pullImage,
  pushRandomImage,
  report,
  runClients,
  type PullResult,
  type PushedImage,
} from './infra-fixture';
import { PrivateRedis } from './infra-services';

const ORG = 'hub';
const AUDIT_JOB = 'audit.write-batch';

async function metric(instance: TestInstance, name: string): Promise<number> {
  const text = await (await fetch(`${instance.url}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`${name} `));
  return line ? Number(line.slice(line.lastIndexOf(' ') + 1)) : 0;
}

describe('Redis restarted during pulls and audit writes', () => {
  let redis: PrivateRedis;
  let upstream: UpstreamRegistry;
  let entrepot: TestInstance;
  const prefix = `entrepot-redis-${randomBytes(3).toString('hex')}`;
  const images: PushedImage[] = [];

  beforeAll(async () => {
    [redis, upstream] = await Promise.all([PrivateRedis.start({ persistent: true }), UpstreamRegistry.start({ auth: { mode: 'anonymous' } })]);
    for (let i = 0; i < 16; i++) {
      images.push(await pushRandomImage(upstream.url, `library/rd${i}`, 'v1', i % 4 === 0 ? [3 * MiB, 256 * KiB] : [512 * KiB, 64 * KiB]));
    }
    entrepot = await startEntrepot({
      plugins: [createPlugin],
      env: { PROXY_CACHE_ALLOWED_UPSTREAM_HOSTS: '127.0.0.1:*' },
      overrides: { queue: { driver: 'bullmq', redis_url: redis.url, prefix } },
    });
    expect(entrepot.entrepot.services.queue.kind).toBe('bullmq');
    expect(entrepot.entrepot.services.coordinator.kind).toBe('redis');
    await createCacheOrg((m, p, b) => entrepot.api(m, p, b), ORG, upstream.url, { expiration_s: 3600 });
  }, 120_000);

  afterAll(async () => {
    await entrepot?.stop();
    await upstream?.stop();
    await redis?.stop();
  });

  const pull = (image: PushedImage): Promise<PullResult> => pullImage(entrepot.url, image, { name: `${ORG}/${image.repo}`, auth: entrepot.adminAuth, timeoutMs: 60_000 });

  it('keeps cold and warm pulls working while Redis is down, loses no audit entry, and runs jobs again after the restart', async () => {
    const all: PullResult[] = [];
    for (const image of images.slice(0, 3)) {
      const warm = await pull(image);
      expect(warm.ok).toBe(true);
      all.push(warm);
    }
    // The audit queue works through Redis before the outage.
    await entrepot.entrepot.services.audit.flush();
    await entrepot.entrepot.services.queue.drain(30_000);
    expect(await metric(entrepot, 'entrepot_audit_direct_writes_total')).toBe(0);

    let stop = false;
    const load = runClients(
      8,
      (client, round) => images[(client * 5 + round) % images.length],
      (image) => pull(image),
      () => stop,
    );
    const events = await crashThenStop(redis);
    await sleep(3000);
    stop = true;
    const pulls = await load;
    all.push(...pulls.map((p) => p.result));
    const tally = new PullTally();
    for (const r of all) tally.add(r);
    const fallbackWrites = await metric(entrepot, 'entrepot_audit_direct_writes_total');
    const summary = `${tally.summary()}; audit entries written directly: ${fallbackWrites}; events ${relativeEvents(events)}`;

    expect({ corrupt: tally.corrupt.map((c) => c.url), summary }).toEqual({ corrupt: [], summary });
    // Cached or not, no pull failed because Redis was down.
    const failures = pulls.filter((p) => !p.result.ok).map((p) => p.result.responses.filter((r) => r.verdict !== 'ok').map((r) => `${r.status} ${r.errorCode ?? r.bodyError ?? ''} ${r.url}`));
    expect({ failures, summary }).toEqual({ failures: [], summary });
    // The outage was seen: audit entries went straight to the database meanwhile.
    expect(fallbackWrites).toBeGreaterThan(0);

    // After the restart the queue carries audit entries again: new pulls add no direct writes.
    const before = await metric(entrepot, 'entrepot_audit_direct_writes_total');
    const after = await Promise.all(images.map((image) => pull(image)));
    expect(after.filter((r) => !r.ok).map((r) => r.image.repo)).toEqual([]);
    all.push(...after);
    expect(await metric(entrepot, 'entrepot_audit_direct_writes_total')).toBe(before);

    // Every queued job ran (none left waiting, none failed for good).
    // (A job that was running when Redis crashed is picked up again as stalled, up to a minute later.)
    await entrepot.entrepot.services.audit.flush();
    await entrepot.entrepot.services.queue.drain(90_000);
    const queue = new Queue(AUDIT_JOB, { connection: { host: '127.0.0.1', port: redis.port }, prefix });
    const counts = await queue.getJobCounts('waiting', 'active', 'delayed', 'failed', 'completed');
    await queue.close();
    expect({ waiting: counts.waiting, active: counts.active, delayed: counts.delayed, failed: counts.failed }).toEqual({ waiting: 0, active: 0, delayed: 0, failed: 0 });
    expect(counts.completed).toBeGreaterThan(0);

    // R-AUDIT: one pull_repo entry per manifest answered 200.
    const db = knex({ client: 'better-sqlite3', connection: { filename: join(entrepot.dataDir, 'entrepot.db'), options: { readonly: true } }, useNullAsDefault: true });
    try {
      const expected = all.filter((r) => r.responses[0].status === 200).length;
      const entries = await countPullEntries(db, ORG);
      report('redis-restart', `${summary}; pull_repo entries ${entries} for ${expected} manifests answered 200; jobs ${JSON.stringify(counts)}`);
      expect({ entries, summary }).toEqual({ entries: expected, summary });

      const fs = await checkFsBlobStore(entrepot.dataDir);
      expect(fs.mismatched).toEqual([]);
      const blobs = entrepot.entrepot.services.storage.blobs;
      const refs = await checkDbReferences(db, async (d) => (await blobs.stat(d as Digest)) !== null);
      expect(refs.manifestsWithoutBytes).toEqual([]);
      expect(refs.blobsWithoutBytes).toEqual([]);
      expect(refs.manifests).toBe(images.length);
    } finally {
      await db.destroy();
    }
  }, 240_000);
});
