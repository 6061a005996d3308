/**
 * SPEC §6 fault matrix, "kill -9 during a fill": Entrepot (the real `main.js`,
 * its cache organization declared in its config file) is killed with SIGKILL
 * while ten blob fills and a few cold manifest fetches stream through a slow
 * upstream, then restarted on the same data directory. No partial blob or
 * dangling manifest is visible afterwards: every stored blob re-hashes to its
 * digest, every manifest the database lists has its bytes and pulls whole, and
 * the next pulls are byte-identical to what the upstream holds.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import knex from 'knex';
import { UpstreamRegistry } from '../../../../testing/upstream-registry';
import { freePort } from '../../../../testing/tools';
import { FaultProxy } from '../faults/fault-proxy';
import { EntrepotProcess } from './entrepot-process';
import {
  KiB,
  OCI_MANIFEST,
  checkDbReferences,
  checkFsBlobStore,
  entriesOf,
  getChecked,
  pullImage,
  pushRandomImage,
  report,
  waitUntil,
  type Fetched,
  type PushedImage,
} from './infra-fixture';

const ORG = 'hub';

describe('kill -9 of Entrepot during ten concurrent fills', () => {
  let upstream: UpstreamRegistry;
  let proxy: FaultProxy;
  let entrepot: EntrepotProcess;
  let work: string;
  const images: PushedImage[] = [];
  const late: PushedImage[] = [];

  beforeAll(async () => {
    work = mkdtempSync(join(tmpdir(), 'entrepot-kill9-'));
    upstream = await UpstreamRegistry.start({ auth: { mode: 'anonymous' } });
    proxy = await FaultProxy.start(upstream.url);
    // Five images of two layers: ten blobs from 256 KiB to 2.5 MiB.
    for (let i = 0; i < 5; i++) images.push(await pushRandomImage(upstream.url, `library/k${i}`, 'v1', [256 * KiB * (2 * i + 1), 256 * KiB * (2 * i + 2)]));
    // Three images whose manifests are fetched for the first time when the process dies.
    for (let i = 0; i < 3; i++) late.push(await pushRandomImage(upstream.url, `library/late${i}`, 'v1', [64 * KiB]));
    entrepot = await EntrepotProcess.start({
      dataDir: join(work, 'data'),
      port: await freePort(),
      configPath: join(work, 'entrepot.yml'),
      env: { PROXY_CACHE_ALLOWED_UPSTREAM_HOSTS: '127.0.0.1:*' },
      config: {
        proxy_cache: {
          orgs: [{ name: ORG, upstream_registry: 'docker.io', upstream_endpoint: proxy.url, insecure: true, expiration_s: 3600 }],
        },
      },
    });
  }, 120_000);

  afterAll(async () => {
    await entrepot?.kill9();
    await proxy?.stop();
    await upstream?.stop();
    rmSync(work, { recursive: true, force: true });
  });

  const name = (image: PushedImage): string => `${ORG}/${image.repo}`;

  it('leaves no partial blob or dangling manifest, and the next pulls are byte-identical', async () => {
    // Manifests cached; every blob still cold.
    for (const image of images) {
      const m = await getChecked(`${entrepot.url}/v2/${name(image)}/manifests/v1`, { digest: image.manifestDigest, size: image.manifest.length }, {
        headers: { authorization: entrepot.adminAuth, accept: OCI_MANIFEST },
      });
      expect(m.verdict).toBe('ok');
    }

    // The upstream sends 32 KiB every 20 ms per connection: the fills take from a fraction of a second to a few seconds.
    await proxy.set({ kind: 'trickle', bytesPerTick: 32 * KiB, tickMs: 20 });
    const layers = images.flatMap((image) => image.blobs.slice(1).map((blob) => ({ image, blob })));
    expect(layers).toHaveLength(10);
    const progress = new Map<string, number>();
    const finished = new Set<string>();
    const gets = layers.map(({ image, blob }) =>
      getChecked(`${entrepot.url}/v2/${name(image)}/blobs/${blob.digest}`, blob, {
        headers: { authorization: entrepot.adminAuth },
        onBytes: (n) => progress.set(blob.digest, n),
      }).then((r) => {
        finished.add(blob.digest);
        return r;
      }),
    );
    // Cold manifests in flight too (their fetch goes through the slow upstream).
    const manifestGets = late.map((image) =>
      getChecked(`${entrepot.url}/v2/${name(image)}/manifests/v1`, { digest: image.manifestDigest, size: image.manifest.length }, {
        headers: { authorization: entrepot.adminAuth, accept: OCI_MANIFEST },
      }),
    );
    // Kill once some fills have completed while others are half way.
    const midway = await waitUntil(() => finished.size >= 2 && [...progress.values()].filter((n) => n > 0).length >= 8, 30_000, 20);
    expect(midway).toBe(true);
    const atKill = { finished: finished.size, inProgress: layers.length - finished.size };
    await entrepot.kill9();
    const answers: Fetched[] = await Promise.all([...gets, ...manifestGets]);
    const verdicts = answers.map((a) => a.verdict);
    report('kill-during-fills', `at the kill: ${JSON.stringify(atKill)}; client verdicts ${JSON.stringify(verdicts)}`);
    // Clients saw whole correct bodies or failures, never a complete-looking wrong one.
    expect(answers.filter((a) => a.verdict === 'corrupt').map((a) => a.url)).toEqual([]);
    expect(verdicts.filter((v) => v !== 'ok').length).toBeGreaterThan(0);

    await proxy.set({ kind: 'pass' });
    await entrepot.restart();
    // Scratch space and temporary files of the killed process are gone.
    expect(await entriesOf(join(entrepot.dataDir, 'scratch'))).toEqual([]);
    expect(await entriesOf(join(entrepot.dataDir, 'storage', 'tmp'))).toEqual([]);
    // Every stored blob is whole.
    const fs = await checkFsBlobStore(entrepot.dataDir);
    expect(fs.mismatched).toEqual([]);
    const stored = new Set(fs.stored);
    const db = knex({ client: 'better-sqlite3', connection: { filename: join(entrepot.dataDir, 'entrepot.db'), options: { readonly: true } }, useNullAsDefault: true });
    let tagged: Array<{ repo: string; tag: string }>;
    try {
      const refs = await checkDbReferences(db, async (d) => stored.has(d));
      report('kill-during-fills', `after the restart: ${fs.stored.length} blobs stored, ${refs.manifests} manifests, ${refs.tags} tags`);
      expect(refs.manifestsWithoutBytes).toEqual([]);
      expect(refs.blobsWithoutBytes).toEqual([]);
      tagged = (await db('tags as t').join('repositories as r', 'r.id', 't.repo_id').select({ repo: 'r.name', tag: 't.name' })) as Array<{ repo: string; tag: string }>;
    } finally {
      await db.destroy();
    }

    // Every manifest the cache lists pulls whole, with every blob it references.
    const byRepo = new Map([...images, ...late].map((image) => [image.repo, image]));
    for (const { repo, tag } of tagged) {
      const image = byRepo.get(repo);
      expect(image && tag === image.tag).toBe(true);
    }
    const pulls = await Promise.all([...images, ...late].map((image) => pullImage(entrepot.url, image, { name: name(image), auth: entrepot.adminAuth })));
    expect(pulls.filter((p) => !p.ok).map((p) => `${p.image.repo}: ${p.responses.map((r) => `${r.status} ${r.verdict}`).join(', ')}`)).toEqual([]);
    // And what is stored now is whole too.
    expect((await checkFsBlobStore(entrepot.dataDir)).mismatched).toEqual([]);
  }, 180_000);
});
