import { Registry } from 'prom-client';
import type { Digest, OrganizationRow } from '@entrepot/registry-core';
import type { CoreServices } from '../../../registry-core/src/server';
import { startEntrepot, type TestInstance } from '../../../../testing/entrepot-instance';
import { createPlugin } from '../../src';
import { QuotaKeeper, type Admission } from '../../src/eviction/quota-keeper';
import { createEvictionMetrics } from '../../src/eviction/eviction-metrics';
import { TagFreshness } from '../../src/freshness/tag-freshness';

const LIMIT = 1000;

/** A store that waits until the test lets it finish, so admissions can be held mid-store. */
function heldStore(core: CoreServices, repoId: number, digest: string, size: number) {
  let release!: () => void;
  let started!: () => void;
  const gate = new Promise<void>((resolve) => (release = resolve));
  const running = new Promise<void>((resolve) => (started = resolve));
  return {
    running,
    release,
    store: async () => {
      started();
      await gate;
      await core.db('manifests').insert({ repo_id: repoId, digest, media_type: 'x', size, created_at: Date.now() });
    },
  };
}

function digestOf(name: string): Digest {
  return `sha256:${Buffer.from(name).toString('hex').padEnd(64, '0')}` as Digest;
}

describe('quota admission', () => {
  let instance: TestInstance;
  let core: CoreServices;
  let keeper: QuotaKeeper;
  let repoId: number;
  let org: OrganizationRow;
  let free: OrganizationRow;
  let freeRepoId: number;

  beforeAll(async () => {
    instance = await startEntrepot({ plugins: [createPlugin] });
    core = instance.entrepot.services;
    const ports = instance.entrepot.ports;
    keeper = new QuotaKeeper(ports, new TagFreshness(ports.db, ports.reads, ports.clock, ports.memo, ports.usage), createEvictionMetrics({ ...ports.metrics, registry: new Registry() }), true);
    org = await core.repositories.ensureOrg('limited', false);
    repoId = (await core.repositories.ensure(org.id, 'r')).id;
    await core.quotas.create(org.id, LIMIT, 'lru');
    free = await core.repositories.ensureOrg('unlimited', false);
    freeRepoId = (await core.repositories.ensure(free.id, 'r')).id;
  });

  afterAll(() => instance.stop());

  afterEach(async () => {
    await core.db('manifests').whereIn('repo_id', [repoId, freeRepoId]).delete();
    await core.db('quota_reserved_digests').delete();
    await core.db('quota_reservations').delete();
  });

  async function counted(): Promise<{ bytes: number; at: number } | null> {
    return (await core.quotas.get(org.id))!.counted;
  }

  it.each([
    ['with a quota', () => ({ target: org, repo: repoId })],
    ['without a quota', () => ({ target: free, repo: freeRepoId })],
  ])('lets the stores of one organization run at once (%s)', async (_case, which) => {
    const { target, repo } = which();
    const a = heldStore(core, repo, digestOf('a'), 100);
    const b = heldStore(core, repo, digestOf('b'), 100);
    const admitA = keeper.admit(target, [{ digest: digestOf('a'), size: 100 }], a.store);
    const admitB = keeper.admit(target, [{ digest: digestOf('b'), size: 100 }], b.store);
    // Both stores are under way before either is allowed to finish.
    await Promise.all([a.running, b.running]);
    a.release();
    b.release();
    expect(await Promise.all([admitA, admitB])).toEqual(['admitted', 'admitted']);
  });

  it('counts content still being stored, so concurrent admissions cannot overshoot the limit', async () => {
    const a = heldStore(core, repoId, digestOf('big-a'), 600);
    const admitA = keeper.admit(org, [{ digest: digestOf('big-a'), size: 600 }], a.store);
    await a.running;
    // Nothing stored yet, and nothing evictable: only A's reservation stands in B's way.
    const b = heldStore(core, repoId, digestOf('big-b'), 600);
    b.release();
    expect(await keeper.admit(org, [{ digest: digestOf('big-b'), size: 600 }], b.store)).toBe<Admission>('bypass');
    a.release();
    expect(await admitA).toBe('admitted');
    expect(await core.quotas.usage(org.id)).toBe(600);
    expect(await core.db('quota_reservations').count({ n: '*' }).first()).toMatchObject({ n: 0 });
  });

  it('holds room for content stored after the decision (a blob linked when its download ends) until released', async () => {
    const held = await keeper.hold(org, [{ digest: digestOf('blob-a'), size: 600 }]);
    expect(held).not.toBe('bypass');
    const later = heldStore(core, repoId, digestOf('big-c'), 600);
    later.release();
    expect(await keeper.admit(org, [{ digest: digestOf('big-c'), size: 600 }], later.store)).toBe<Admission>('bypass');
    if (held === 'bypass') return;
    await held.release();
    await held.release();
    expect(await core.db('quota_reservations').count({ n: '*' }).first()).toMatchObject({ n: 0 });
    expect(await keeper.admit(org, [{ digest: digestOf('big-c'), size: 600 }], later.store)).toBe<Admission>('admitted');
  });

  it('counts content another admission is still storing once: a second admission of it evicts nothing, and its link before the release is not counted twice', async () => {
    const link = async (name: string, size: number, at: number) => {
      await core.db('blobs').insert({ digest: digestOf(name), size, created_at: at });
      await core.db('repo_blobs').insert({ repo_id: repoId, digest: digestOf(name), created_at: at });
    };
    // Evictable: a blob linked on its own long ago.
    await link('older', 300, 0);
    const first = await keeper.hold(org, [{ digest: digestOf('storing'), size: 600 }]);
    const second = await keeper.hold(org, [{ digest: digestOf('storing'), size: 600 }]);
    expect(first).not.toBe('bypass');
    expect(second).not.toBe('bypass');
    expect(await core.db('repo_blobs').where({ repo_id: repoId }).pluck('digest')).toEqual([digestOf('older')]);
    // The download ends: linked, while both reservations still stand.
    await link('storing', 600, Date.now());
    expect(await core.quotas.measure(org.id)).toBe(900);
    const candidates = await instance.entrepot.ports.usage.evictionCandidates(org.id, 'lru', Date.now(), 10);
    expect(candidates.map((c) => c.digest)).toEqual([digestOf('older')]);
    if (first !== 'bypass') await first.release();
    if (second !== 'bypass') await second.release();
    expect(await core.quotas.measure(org.id)).toBe(900);
    expect((await instance.entrepot.ports.usage.evictionCandidates(org.id, 'lru', Date.now(), 10)).map((c) => c.digest)).toEqual([digestOf('older'), digestOf('storing')]);
    await core.db('repo_blobs').where({ repo_id: repoId }).delete();
    await core.db('blobs').whereIn('digest', [digestOf('older'), digestOf('storing')]).delete();
  });

  it('evicts as many tags as one-at-a-time eviction would, when their declared sizes count a layer they share', async () => {
    // Ten tags of one repository, each its own manifest (10 B) and config (20 B), all on one 500 B layer: 800 B in all.
    const layer = digestOf('shared-layer');
    for (let i = 0; i < 10; i++) {
      const manifest = digestOf(`m${i}`);
      await core.db('manifests').insert({ repo_id: repoId, digest: manifest, media_type: 'x', size: 10, created_at: i });
      await core.db('manifest_refs').insert([
        { repo_id: repoId, manifest_digest: manifest, child_digest: digestOf(`c${i}`), child_kind: 'blob', size: 20 },
        { repo_id: repoId, manifest_digest: manifest, child_digest: layer, child_kind: 'blob', size: 500 },
      ]);
      await core.db('tags').insert({ repo_id: repoId, name: `t${i}`, manifest_digest: manifest, updated_at: i, last_pulled_at: i });
    }
    expect(await core.quotas.measure(org.id)).toBe(800);
    // Each tag declares 530 B but frees 30 B: 705 B takes four, the least recently pulled.
    const quota = (await core.quotas.get(org.id))!;
    await core.quotas.update(org.id, quota.id, { limitBytes: 705 });
    try {
      expect(await keeper.enforce(org)).toEqual({ before: 800, after: 680, target: 705 });
      expect((await core.db('tags').where({ repo_id: repoId }).orderBy('updated_at').pluck('name')).slice(0, 1)).toEqual(['t4']);
      expect(await core.db('tags').where({ repo_id: repoId }).count({ n: '*' }).first()).toMatchObject({ n: 6 });
    } finally {
      await core.quotas.update(org.id, quota.id, { limitBytes: LIMIT });
      await core.db('tags').where({ repo_id: repoId }).delete();
      await core.db('manifest_refs').where({ repo_id: repoId }).delete();
    }
  });

  it('grows the counted figure with each admission instead of measuring the organization each time', async () => {
    await core.quotas.measure(org.id);
    const before = await counted();
    for (const name of ['c1', 'c2', 'c3']) {
      expect(await keeper.admit(org, [{ digest: digestOf(name), size: 50 }], heldStoreDone(name))).toBe('admitted');
    }
    // Content already counted adds nothing.
    expect(await keeper.admit(org, [{ digest: digestOf('c1'), size: 50 }], async () => undefined)).toBe('admitted');
    const after = await counted();
    expect(after).toEqual({ bytes: before!.bytes + 150, at: before!.at });
    expect(await core.quotas.usage(org.id)).toBe(before!.bytes + 150);
  });

  it('measures again when the counted figure would pass the limit, and then admits what fits', async () => {
    await keeper.admit(org, [{ digest: digestOf('d1'), size: 500 }], heldStoreDone('d1', 500));
    // Removed behind the keeper's back (a flush): the counted figure is now too high.
    await core.db('manifests').where({ repo_id: repoId, digest: digestOf('d1') }).delete();
    expect((await counted())!.bytes).toBeGreaterThanOrEqual(500);
    expect(await keeper.admit(org, [{ digest: digestOf('d2'), size: 800 }], heldStoreDone('d2', 800))).toBe('admitted');
    expect(await core.quotas.usage(org.id)).toBe(800);
    expect((await counted())!.bytes).toBe(800);
  });

  it('stops counting a reservation that was never released after its time', async () => {
    await core.db('quota_reservations').insert({ id: 'stale', org_id: org.id, bytes: 900, expires_at: Date.now() - 1 });
    await core.db('quota_reserved_digests').insert({ reservation_id: 'stale', org_id: org.id, digest: digestOf('stale'), size: 900 });
    await core.db('quota_reservations').insert({ id: 'live', org_id: org.id, bytes: 70, expires_at: Date.now() + 60_000 });
    await core.db('quota_reserved_digests').insert({ reservation_id: 'live', org_id: org.id, digest: digestOf('live'), size: 70 });
    expect(await core.quotas.measure(org.id)).toBe(70);
    expect(await core.db('quota_reservations').pluck('id')).toEqual(['live']);
    expect(await core.db('quota_reserved_digests').pluck('reservation_id')).toEqual(['live']);
  });

  it('evicts a ranked tag only while it still points at the image that was ranked', async () => {
    await core.db('manifests').insert({ repo_id: repoId, digest: digestOf('new'), media_type: 'x', size: 1, created_at: 0 });
    await core.db('tags').insert({ repo_id: repoId, name: 'latest', manifest_digest: digestOf('new'), updated_at: 0 });
    expect((await instance.entrepot.ports.removal.removeTag(repoId, 'latest', digestOf('old'))).tags).toBe(0);
    expect(await core.db('tags').where({ repo_id: repoId, name: 'latest' }).first('manifest_digest')).toEqual({ manifest_digest: digestOf('new') });
    expect((await instance.entrepot.ports.removal.removeTag(repoId, 'latest', digestOf('new'))).tags).toBe(1);
  });

  function heldStoreDone(name: string, size = 50): () => Promise<void> {
    const held = heldStore(core, repoId, digestOf(name), size);
    held.release();
    return held.store;
  }
});
