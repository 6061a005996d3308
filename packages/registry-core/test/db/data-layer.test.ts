import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import knex from 'knex';
import { createDb, ensureDatabaseExists, migrate, type Db } from '../../src/db/database';
import { createPointReads, type PointReads } from '../../src/db/point-reads';
import { coreMigrations } from '../../src/db/migrations/core-migrations';
import { createLogger } from '../../src/logging/logger';
import { digestOf, type Digest } from '../../src/oci/digest';
import { InProcessCoordinator } from '../../src/coordination/in-process-coordinator';
import { InProcessChangeNotices } from '../../src/coordination/change-notices';
import { BlobLocks } from '../../src/services/blob-locks';
import { ContentRemoval } from '../../src/services/content-removal';
import { ContentService } from '../../src/services/content-service';
import { GarbageCollector } from '../../src/services/garbage-collector';
import { ManifestResolutions } from '../../src/services/manifest-resolutions';
import { PullStats } from '../../src/services/pull-stats';
import { QuotaService, RESERVATION_TTL_MS } from '../../src/services/quota-service';
import { RepositoryService } from '../../src/services/repository-service';
import { createFsStorage } from '../../src/storage/fs-store';
import type { Storage } from '../../src/storage/blob-store';

const MYSQL_URL = process.env.ENTREPOT_TEST_MYSQL_URL ?? 'mysql://root@127.0.0.1:3306';
const logger = createLogger({ silent: true });

interface Backend {
  db: Db;
  cleanup(): Promise<void>;
}

async function sqlite(dir: string): Promise<Backend> {
  const db = createDb({ database: { client: 'sqlite', filename: join(dir, 'test.db') }, data_dir: dir });
  return { db, cleanup: () => db.destroy() };
}

async function mariadb(): Promise<Backend> {
  const url = new URL(MYSQL_URL);
  const database = `entrepot_dl_${randomBytes(4).toString('hex')}`;
  const settings = { client: 'mysql' as const, host: url.hostname, port: Number(url.port || 3306), user: decodeURIComponent(url.username || 'root'), password: decodeURIComponent(url.password), database, pool_max: 5 };
  await ensureDatabaseExists({ database: settings });
  const db = createDb({ database: settings, data_dir: '/nonexistent' });
  return {
    db,
    async cleanup() {
      await db.destroy();
      const admin = knex({ client: 'mysql2', connection: { host: settings.host, port: settings.port, user: settings.user, password: settings.password } });
      await admin.raw('DROP DATABASE IF EXISTS ??', [database]);
      await admin.destroy();
    },
  };
}

/** The same data-layer behaviour on the embedded database and on MariaDB. */
describe.each([
  ['sqlite', sqlite],
  ['mariadb', () => mariadb()],
])('data layer on %s', (_name, open: (dir: string) => Promise<Backend>) => {
  let backend: Backend;
  let reads: PointReads;
  let dir: string;
  let storage: Storage;
  let now = 1_000_000;
  const clock = { now: () => now };
  let repositories: RepositoryService;
  let content: ContentService;
  let quotas: QuotaService;
  let gc: GarbageCollector;
  let removal: ContentRemoval;
  /** A second replica's content service: its own kept resolutions, the same database and change notices. */
  let otherReplica: ContentService;
  let orgId: number;

  async function blob(data: string): Promise<{ digest: Digest; size: number }> {
    const buf = Buffer.from(data);
    const digest = digestOf(buf);
    await storage.blobs.write(digest, Readable.from([buf]));
    return { digest, size: buf.length };
  }

  function manifest(config: { digest: Digest; size: number }, layers: Array<{ digest: Digest; size: number }>, extra: Record<string, unknown> = {}): Buffer {
    return Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: 'application/vnd.oci.image.manifest.v1+json',
        config: { mediaType: 'application/vnd.oci.image.config.v1+json', ...config },
        layers: layers.map((l) => ({ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', ...l })),
        ...extra,
      }),
    );
  }

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'entrepot-dl-'));
    backend = await open(dir);
    await migrate(backend.db, coreMigrations);
    storage = await createFsStorage(dir);
    reads = createPointReads(backend.db);
    const notices = new InProcessChangeNotices();
    repositories = new RepositoryService(backend.db, reads, clock, notices);
    const locks = new BlobLocks(new InProcessCoordinator());
    const resolutions = new ManifestResolutions(clock, notices);
    content = new ContentService(backend.db, reads, storage, clock, locks, resolutions);
    quotas = new QuotaService(backend.db, clock, logger);
    gc = new GarbageCollector(backend.db, storage, clock, logger, locks, 0);
    removal = new ContentRemoval(backend.db, gc, resolutions);
    otherReplica = new ContentService(backend.db, reads, storage, clock, locks, new ManifestResolutions(clock, notices));
    orgId = (await repositories.ensureOrg('dl', false)).id;
  });

  afterAll(async () => {
    quotas.stopRenewing();
    reads.close();
    await backend.cleanup();
    rmSync(dir, { recursive: true, force: true });
  });

  it('applies default permissions to repositories created later, once, under concurrency', async () => {
    const [userId] = await backend.db('users').insert({ username: 'ana', is_superuser: false, created_at: now });
    await backend.db('prototypes').insert({ id: 'p1', org_id: orgId, delegate_kind: 'user', delegate_id: Number(userId), role: 'write', created_at: now });
    const repos = await Promise.all(Array.from({ length: 5 }, () => repositories.ensure(orgId, 'team/app')));
    expect(new Set(repos.map((r) => r.id)).size).toBe(1);
    const perms = await backend.db('permissions').where({ repo_id: repos[0].id });
    expect(perms).toEqual([expect.objectContaining({ subject_kind: 'user', subject_id: Number(userId), role: 'write' })]);
  });

  it('finds an organization together with one of its repositories, and only that organization’s', async () => {
    const other = await repositories.ensureOrg('dl-other', true);
    const mine = await repositories.ensure(orgId, 'lookup/app');
    await backend.db('repositories').where({ id: mine.id }).update({ visibility: 'private' });
    await repositories.ensure(other.id, 'lookup/only-there');

    const found = await repositories.findOrgWithRepository('dl', 'lookup/app');
    expect(found).toEqual({
      org: { id: orgId, name: 'dl', is_public: false, created_at: now },
      repository: { id: mine.id, org_id: orgId, name: 'lookup/app', visibility: 'private', created_at: now },
    });
    expect(await repositories.findOrgWithRepository('dl', 'lookup/only-there')).toEqual({ org: expect.objectContaining({ id: orgId }), repository: null });
    expect(await repositories.findOrgWithRepository('dl-other', 'lookup/only-there')).toEqual({
      org: expect.objectContaining({ id: other.id, is_public: true }),
      repository: expect.objectContaining({ org_id: other.id, name: 'lookup/only-there', visibility: null }),
    });
    expect(await repositories.findOrgWithRepository('dl-missing', 'lookup/app')).toBeNull();
  });

  it('stores manifests byte for byte, resolves tags, lists referrers and counts usage once per digest', async () => {
    const repo = await repositories.ensure(orgId, 'team/app');
    const other = await repositories.ensure(orgId, 'team/other');
    const config = await blob('config-1');
    const layer = await blob('layer-1-'.repeat(100));
    for (const r of [repo, other]) {
      await content.linkStoredBlob(r.id, config.digest);
      await content.linkStoredBlob(r.id, layer.digest);
    }
    const body = manifest(config, [layer]);
    const { digest } = await content.putManifest(repo.id, body, 'application/vnd.oci.image.manifest.v1+json', { tag: 'v1', requireReferences: true });
    await content.putManifest(other.id, body, undefined, { tag: 'same', requireReferences: true });
    const got = await content.getManifest(repo.id, { kind: 'tag', tag: 'v1' });
    expect(got?.body.equals(body)).toBe(true);
    expect(got?.digest).toBe(digest);
    const referrer = manifest(config, [], { subject: { mediaType: 'application/vnd.oci.image.manifest.v1+json', digest, size: body.length }, artifactType: 'application/x-sig' });
    await content.putManifest(repo.id, referrer, undefined, { requireReferences: true });
    expect((await content.referrers(repo.id, digest)).map((r) => r.artifactType)).toEqual(['application/x-sig']);
    expect(await content.referrers(repo.id, digest, 'application/other')).toEqual([]);
    // Counted once for the organization although two repositories hold it.
    expect(await quotas.usage(orgId)).toBe(body.length + referrer.length + config.size + layer.size);
    expect([...(await quotas.alreadyCounted(orgId, [layer.digest, digestOf('nope')]))]).toEqual([layer.digest]);
  });

  it('tells which digests an organization counts, from each source, and counts reservations until released', async () => {
    const counting = (await repositories.ensureOrg('counting', false)).id;
    const elsewhere = (await repositories.ensureOrg('elsewhere', false)).id;
    const repo = await repositories.ensure(counting, 'app');
    const foreign = await repositories.ensure(elsewhere, 'app');
    const config = await blob('counting-config');
    const layer = await blob('counting-layer');
    const linkedOnly = await blob('counting-linked-only');
    const foreignOnly = await blob('counting-foreign-only');
    await content.linkStoredBlob(repo.id, linkedOnly.digest);
    await content.linkStoredBlob(foreign.id, foreignOnly.digest);
    const { digest: manifestDigest } = await content.putManifest(repo.id, manifest(config, [layer]), undefined, { tag: 'v1', requireReferences: false });
    const unknown = Array.from({ length: 250 }, (_v, i) => digestOf(`never-${i}`));
    const asked = [...unknown.slice(0, 120), manifestDigest, config.digest, layer.digest, layer.digest, linkedOnly.digest, foreignOnly.digest, ...unknown.slice(120)];
    expect([...(await quotas.alreadyCounted(counting, asked))].sort()).toEqual([manifestDigest, config.digest, layer.digest, linkedOnly.digest].sort());
    expect([...(await quotas.alreadyCounted(elsewhere, asked))]).toEqual([foreignOnly.digest]);

    const usage = await quotas.usage(counting);
    await quotas.create(counting, 10 * usage, 'lru');
    expect(await quotas.counted((await quotas.get(counting))!, 60_000)).toBe(usage);
    const storing = await blob('counting-storing');
    const fresh = [{ digest: digestOf('reserved-a'), size: 600 }, storing];
    const reservation = await quotas.reserve(counting, [...fresh, layer, layer], 600 + storing.size);
    // The counted figure grows by what is new, without a measurement; a measurement counts each reserved digest the organization does not reference.
    expect((await quotas.get(counting))!.counted).toEqual({ bytes: usage + 600 + storing.size, at: now });
    expect(await quotas.measure(counting)).toBe(usage + 600 + storing.size);
    // Reserved is counted: another admission of the same content adds nothing, in this organization only.
    expect([...(await quotas.alreadyCounted(counting, [storing.digest, digestOf('never')]))]).toEqual([storing.digest]);
    expect([...(await quotas.alreadyCounted(elsewhere, [storing.digest]))]).toEqual([]);
    const again = await quotas.reserve(counting, [storing], 0);
    expect(await quotas.measure(counting)).toBe(usage + 600 + storing.size);
    // Linked while still reserved (a fill links, then releases): still once.
    await content.linkStoredBlob(repo.id, storing.digest);
    expect(await quotas.measure(counting)).toBe(usage + 600 + storing.size);
    await quotas.release(reservation);
    await quotas.release(again);
    expect(await quotas.measure(counting)).toBe(usage + storing.size);
    expect(await backend.db('quota_reserved_digests').where({ org_id: counting }).first()).toBeUndefined();
    const stored = usage + storing.size;
    now += 60_000;
    await quotas.reserve(counting, [{ digest: digestOf('r5'), size: 5 }], 5);
    expect(await quotas.counted((await quotas.get(counting))!, 60_000)).toBe(stored + 5);

    // Reservations this process holds are renewed, however long their stores run; one a process that died left behind is not, and stops counting when its time is past.
    const held = await quotas.reserve(counting, [{ digest: digestOf('r70'), size: 70 }], 0);
    await backend.db('quota_reservations').insert({ id: 'left-by-a-dead-process', org_id: counting, bytes: 900, expires_at: now + RESERVATION_TTL_MS });
    await backend.db('quota_reserved_digests').insert({ reservation_id: 'left-by-a-dead-process', org_id: counting, digest: digestOf('r900'), size: 900 });
    expect(await quotas.measure(counting)).toBe(stored + 5 + 70 + 900);
    now += RESERVATION_TTL_MS - 1000;
    await quotas.renewHeld();
    now += 2000;
    expect(await quotas.measure(counting)).toBe(stored + 5 + 70);
    expect(await backend.db('quota_reservations').where({ id: 'left-by-a-dead-process' }).first()).toBeUndefined();
    expect(await backend.db('quota_reserved_digests').where({ reservation_id: 'left-by-a-dead-process' }).first()).toBeUndefined();
    await quotas.release(held);
    expect(await quotas.measure(counting)).toBe(stored + 5);
  });

  it('pages tags and records batched pull statistics', async () => {
    const repo = await repositories.ensure(orgId, 'team/app');
    const digest = (await content.tagDigest(repo.id, 'v1'))!;
    for (const tag of ['a', 'b', 'c']) await content.setTag(repo.id, tag, digest);
    expect(await content.listTags(repo.id, { n: 2 })).toEqual(['a', 'b']);
    expect(await content.listTags(repo.id, { n: 2, last: 'b' })).toEqual(['c', 'v1']);
    const stats = new PullStats(backend.db, clock, logger, 1000);
    stats.record(repo.id, 'v1');
    stats.record(repo.id, 'v1');
    now += 5;
    stats.record(repo.id, 'a');
    await stats.flush();
    const rows = await content.listTagRows(repo.id);
    expect(rows.find((t) => t.name === 'v1')).toMatchObject({ pull_count: 2 });
    expect(rows.find((t) => t.name === 'a')).toMatchObject({ pull_count: 1, last_pulled_at: now });

    // More tags than one write transaction takes: every one is counted once.
    const many = Array.from({ length: 130 }, (_, i) => `t${i}`);
    for (const tag of many) await content.setTag(repo.id, tag, digest);
    for (const tag of many) stats.record(repo.id, tag);
    stats.record(repo.id, 'v1');
    let flushed = false;
    const flushing = stats.flush().then(() => (flushed = true));
    // Requests get the event loop between chunks (SQLite answers synchronously, so this is not a given).
    await new Promise((resolve) => setImmediate(resolve));
    expect(flushed).toBe(false);
    await flushing;
    const after = new Map((await content.listTagRows(repo.id)).map((t) => [t.name, Number(t.pull_count)]));
    expect(many.filter((tag) => after.get(tag) !== 1)).toEqual([]);
    expect(after.get('v1')).toBe(3);
  });

  it('removes a batch of tags and manifests in one call, each only while it is what was asked for', async () => {
    const repo = await repositories.ensure(orgId, 'batch');
    const config = await blob('batch-config');
    const put = async (layerText: string, tag?: string) => {
      const layer = await blob(layerText);
      return (await content.putManifest(repo.id, manifest(config, [layer]), undefined, { tag, requireReferences: false })).digest;
    };
    const a = await put('batch-a', 'a');
    const b = await put('batch-b', 'b');
    const moved = await put('batch-moved-old', 'moved');
    const movedNow = await put('batch-moved-new', 'moved');
    const orphan = await put('batch-orphan');
    const results = await removal.removeAll([
      { repoId: repo.id, tag: 'a' },
      { repoId: repo.id, tag: 'moved', onlyIfDigest: moved },
      { repoId: repo.id, manifest: orphan },
      { repoId: repo.id, tag: 'b', onlyIfDigest: b },
    ]);
    expect(results.map((r) => [r.tags, r.manifests])).toEqual([[1, 1], [0, 0], [0, 1], [1, 1]]);
    for (const gone of [a, b, orphan]) expect(await content.getManifest(repo.id, { kind: 'digest', digest: gone })).toBeNull();
    expect((await content.getManifest(repo.id, { kind: 'tag', tag: 'moved' }))?.digest).toBe(movedNow);
  });

  it('removes a manifest with its referrers when asked: by subject, and under the cosign tag schema, but not a manifest another tag still holds', async () => {
    const repo = await repositories.ensure(orgId, 'signed');
    const config = await blob('signed-config');
    const layer = await blob('signed-layer');
    const image = manifest(config, [layer]);
    const { digest } = await content.putManifest(repo.id, image, undefined, { tag: 'v1', requireReferences: false });
    const subject = { mediaType: 'application/vnd.oci.image.manifest.v1+json', digest, size: image.length };
    const sbom = (await content.putManifest(repo.id, manifest(config, [], { subject, artifactType: 'application/x-sbom' }), undefined, { requireReferences: false })).digest;
    const signatureTag = `${digest.replace(':', '-')}.sig`;
    const signature = (await content.putManifest(repo.id, manifest(config, [await blob('signed-sig')]), undefined, { tag: signatureTag, requireReferences: false })).digest;
    // Tagged on its own as well: it stays, its signature tag goes.
    const kept = (await content.putManifest(repo.id, manifest(config, [await blob('signed-kept')], { subject, artifactType: 'application/x-kept' }), undefined, { tag: 'kept', requireReferences: false })).digest;
    const [removed] = await removal.removeAll([{ repoId: repo.id, tag: 'v1' }], { referrers: true });
    expect(removed).toMatchObject({ tags: 2, manifests: 3 });
    expect([...removed.references].sort()).toEqual([digest, sbom, signature, signatureTag, 'v1'].sort());
    for (const gone of [digest, sbom, signature]) expect(await content.getManifest(repo.id, { kind: 'digest', digest: gone })).toBeNull();
    expect((await content.getManifest(repo.id, { kind: 'tag', tag: 'kept' }))?.digest).toBe(kept);
  });

  it('removes a tag and what only it kept, and collects blobs nothing references any more', async () => {
    const repo = await repositories.ensure(orgId, 'solo');
    const config = await blob('solo-config');
    const layer = await blob('solo-layer');
    const shared = await blob('layer-1-'.repeat(100)); // also held by team/app and team/other
    for (const b of [config, layer, shared]) await content.linkStoredBlob(repo.id, b.digest);
    const { digest } = await content.putManifest(repo.id, manifest(config, [layer, shared]), undefined, { tag: 'only', requireReferences: true });
    const removed = await removal.removeTag(repo.id, 'only');
    expect(removed).toMatchObject({ tags: 1, manifests: 1 });
    expect(await content.getManifest(repo.id, { kind: 'digest', digest })).toBeNull();
    now += 10;
    const collected = await gc.collect();
    expect(collected.blobs).toBeGreaterThanOrEqual(3); // config, layer and the manifest itself
    expect(await storage.blobs.stat(layer.digest)).toBeNull();
    expect(await storage.blobs.stat(shared.digest)).not.toBeNull();
    // Running again finds nothing more (an interrupted pass simply runs again).
    expect((await gc.collect()).blobs).toBe(0);
  });

  it('keeps tag and digest resolutions for a moment, and every change through any replica applies on the others at once', async () => {
    const repo = await repositories.ensure(orgId, 'resolved');
    const config = await blob('resolved-config');
    const bodyOf = async (layerText: string) => manifest(config, [await blob(layerText)]);
    const first = await bodyOf('resolved-1');
    const second = await bodyOf('resolved-2');
    const one = (await content.putManifest(repo.id, first, undefined, { tag: 't', requireReferences: false })).digest;
    const two = (await content.putManifest(repo.id, second, undefined, { requireReferences: false })).digest;
    const tagOn = async (tag: string) => (await otherReplica.getManifest(repo.id, { kind: 'tag', tag }))?.digest ?? null;
    const digestOn = async (digest: Digest) => (await otherReplica.getManifest(repo.id, { kind: 'digest', digest }))?.digest ?? null;
    expect(await tagOn('t')).toBe(one);
    expect(await digestOn(two)).toBe(two);

    // Kept: a row changed behind the services' back is seen once the copy expires.
    await backend.db('tags').where({ repo_id: repo.id, name: 't' }).update({ manifest_digest: two });
    expect(await tagOn('t')).toBe(one);
    now += 5001;
    expect(await tagOn('t')).toBe(two);
    // A reference that resolved to nothing is not kept.
    expect(await tagOn('late')).toBeNull();
    await backend.db('tags').insert({ repo_id: repo.id, name: 'late', manifest_digest: one, updated_at: now, pull_count: 0, pinned: false });
    expect(await tagOn('late')).toBe(one);

    // Changes through the services: the other replica sees each at once.
    await content.setTag(repo.id, 't', one);
    expect(await tagOn('t')).toBe(one);
    await content.putManifest(repo.id, second, undefined, { tag: 't', requireReferences: false });
    expect(await tagOn('t')).toBe(two);
    expect(await content.deleteTag(repo.id, 't')).toBe(true);
    expect(await tagOn('t')).toBeNull();
    await content.setTag(repo.id, 't', one);
    expect([await tagOn('t'), await tagOn('late'), await digestOn(one)]).toEqual([one, one, one]);
    expect(await content.deleteManifest(repo.id, one)).toBe(true);
    expect([await tagOn('t'), await tagOn('late'), await digestOn(one)]).toEqual([null, null, null]);

    await content.putManifest(repo.id, first, undefined, { tag: 'u', requireReferences: false });
    expect([await tagOn('u'), await digestOn(one)]).toEqual([one, one]);
    await removal.removeTag(repo.id, 'u');
    expect([await tagOn('u'), await digestOn(one)]).toEqual([null, null]);

    await content.putManifest(repo.id, first, undefined, { tag: 'p', requireReferences: false });
    expect([await tagOn('p'), await digestOn(one), await digestOn(two)]).toEqual([one, one, two]);
    await removal.purgeRepository(repo.id);
    expect([await tagOn('p'), await digestOn(one), await digestOn(two)]).toEqual([null, null, null]);
  });

  it('never leaves a repository referencing a blob that garbage collection took while it was pushed again', async () => {
    const repo = await repositories.ensure(orgId, 'repush');
    const body = Buffer.from('released and pushed again');
    const digest = digestOf(body);
    const push = () => content.storeBlob(repo.id, digest, () => storage.blobs.write(digest, Readable.from([body]), body.length));
    const dangling: number[] = [];
    for (let round = 0; round < 150; round++) {
      await push();
      // Released (its last link removed), then pushed again while a collection pass runs.
      await content.unlinkBlob(repo.id, digest);
      await gc.markReleased([digest]);
      await Promise.all([gc.collect(), push()]);
      const linked = await content.isBlobLinked(repo.id, digest);
      const row = await backend.db('blobs').where({ digest }).first();
      if (!linked || !row || !(await storage.blobs.stat(digest))) dangling.push(round);
    }
    expect(dangling).toEqual([]);
  });
});
