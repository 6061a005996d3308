/**
 * SPEC §6 fault matrix, "DB restart": the MariaDB server under a cache
 * organization is crashed and restarted, then stopped cleanly and restarted,
 * while clients pull cold and warm images. Pulls in flight complete correctly
 * or fail cleanly, the pool reconnects (no 5xx once the database is back), and
 * no audit entry of a pull that succeeded is lost (R-AUDIT).
 */
import { randomBytes } from 'node:crypto';
import type { Digest } from '@entrepot/registry-core';
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
  quietKnexPoolErrors,
  report,
  runClients,
  waitUntil,
  type PushedImage,
  type PullResult,
} from './infra-fixture';
import { PrivateMariaDb } from './infra-services';

const DATABASE = 'entrepot_restart';
const ORG = 'hub';

describe('MariaDB restarted during pulls', () => {
  let mariadb: PrivateMariaDb;
  let upstream: UpstreamRegistry;
  let entrepot: TestInstance;
  let restoreConsole: () => void;
  const images: PushedImage[] = [];

  beforeAll(async () => {
    restoreConsole = quietKnexPoolErrors();
    [mariadb, upstream] = await Promise.all([PrivateMariaDb.start(), UpstreamRegistry.start({ auth: { mode: 'anonymous' } })]);
    for (let i = 0; i < 16; i++) {
      images.push(await pushRandomImage(upstream.url, `library/db${i}`, 'v1', i % 4 === 0 ? [3 * MiB, 256 * KiB] : [512 * KiB, 64 * KiB]));
    }
    entrepot = await startEntrepot({
      plugins: [createPlugin],
      env: {
        ENTREPOT_DATABASE_URL: mariadb.url(DATABASE),
        ENTREPOT_SECRET_KEY: randomBytes(32).toString('base64'),
        PROXY_CACHE_ALLOWED_UPSTREAM_HOSTS: '127.0.0.1:*',
      },
    });
    await createCacheOrg((m, p, b) => entrepot.api(m, p, b), ORG, upstream.url, { expiration_s: 3600 });
  }, 120_000);

  afterAll(async () => {
    await entrepot?.stop();
    await upstream?.stop();
    await mariadb?.stop();
    restoreConsole();
  });

  const pull = (image: PushedImage): Promise<PullResult> => pullImage(entrepot.url, image, { name: `${ORG}/${image.repo}`, auth: entrepot.adminAuth, timeoutMs: 60_000 });

  it('serves correct bodies or clean errors during restarts, recovers once the database is back, and loses no audit entry', async () => {
    const tally = new PullTally();
    const all: PullResult[] = [];
    // Three images are cached before the first crash.
    for (const image of images.slice(0, 3)) {
      const warm = await pull(image);
      expect(warm.ok).toBe(true);
      all.push(warm);
    }

    let stop = false;
    const load = runClients(
      8,
      (client, round) => images[(client * 5 + round) % images.length],
      (image) => pull(image),
      () => stop,
    );
    const events = await crashThenStop(mariadb);
    const secondUp = events[events.length - 1].at;
    // Pulls keep going after the restart; the first full success marks recovery.
    const recovered = await waitUntil(async () => {
      const probe = await pull(images[1]);
      all.push(probe);
      return probe.ok;
    }, 15_000, 200);
    const recoveredAt = Date.now();
    await sleep(3000);
    stop = true;
    const pulls = await load;
    all.push(...pulls.map((p) => p.result));
    for (const r of all) tally.add(r);
    const summary = `${tally.summary()}; recovered ${recoveredAt - secondUp} ms after the last restart; events ${relativeEvents(events)}`;

    // Nothing corrupt, ever: each 200 body is exactly what the upstream holds.
    expect({ corrupt: tally.corrupt.map((c) => c.url), summary }).toEqual({ corrupt: [], summary });
    // The pool reconnected: pulls succeed again within a few seconds, and every
    // pull that started after that succeeded (no lingering 5xx from dead connections).
    expect(recovered).toBe(true);
    const lateFailures = pulls.filter((p) => p.startedAt >= recoveredAt && !p.result.ok);
    expect(lateFailures.map((p) => p.result.responses.filter((r) => r.verdict !== 'ok').map((r) => `${r.status} ${r.errorCode ?? r.bodyError ?? ''} ${r.url}`))).toEqual([]);
    // Some pulls ran while the database was down, and failed cleanly: 503 with Retry-After
    // (a temporary condition clients retry), not 500.
    expect(tally.pullsFailed).toBeGreaterThan(0);
    const failedStatuses = new Set(all.flatMap((r) => r.responses.filter((x) => x.verdict !== 'ok').map((x) => `${x.status} ${x.errorCode ?? x.bodyError ?? ''}`)));
    expect([...failedStatuses]).toEqual(['503 UNAVAILABLE']);

    // Every image pulls byte-identical now, cold ones included.
    const after = await Promise.all(images.map((image) => pull(image)));
    expect(after.filter((r) => !r.ok).map((r) => r.image.repo)).toEqual([]);
    all.push(...after);

    // What is stored is consistent: blobs re-hash to their digests and no row points at missing content.
    const fs = await checkFsBlobStore(entrepot.dataDir);
    expect(fs.mismatched).toEqual([]);
    const blobs = entrepot.entrepot.services.storage.blobs;
    const db = await mariadb.with(DATABASE, (knex) => checkDbReferences(knex, async (d) => (await blobs.stat(d as Digest)) !== null));
    expect(db.manifestsWithoutBytes).toEqual([]);
    expect(db.blobsWithoutBytes).toEqual([]);
    expect(db.manifests).toBe(images.length);

    // R-AUDIT: one pull_repo entry per manifest GET that was answered 200, once the queue has retried its writes.
    await entrepot.entrepot.services.audit.flush();
    await entrepot.entrepot.services.queue.drain(90_000);
    const expected = all.filter((r) => r.responses[0].status === 200).length;
    const entries = await mariadb.with(DATABASE, (knex) => countPullEntries(knex, ORG));
    report('mariadb-restart', `${summary}; pull_repo entries ${entries} for ${expected} manifests answered 200`);
    expect({ entries, summary }).toEqual({ entries: expected, summary });
  }, 240_000);
});
