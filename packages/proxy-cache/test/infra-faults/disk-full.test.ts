/**
 * SPEC §6 fault matrix, "disk full": Entrepot's data directory (blobs,
 * scratch space and the SQLite database of the embedded default) is a small
 * filesystem of its own (a 30 MB tmpfs, or a loop-mounted ext4 image where
 * tmpfs cannot be mounted), filled up by another file before a blob larger
 * than the space left is pulled. The client gets an error or a cut body, never
 * a complete-looking wrong one; nothing partial is kept and the scratch file
 * is removed; cached content is still served meanwhile; once space returns the
 * same pull completes, and no audit entry was lost.
 */
import { spawnSync } from 'node:child_process';
import { appendFileSync, mkdtempSync, rmSync, statfsSync, writeFileSync } from 'node:fs';
import { unlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Digest } from '@entrepot/registry-core';
import knex from 'knex';
import { startEntrepot, type TestInstance } from '../../../../testing/entrepot-instance';
import { UpstreamRegistry } from '../../../../testing/upstream-registry';
import { createPlugin } from '../../src/index';
import {
  MiB,
  checkFsBlobStore,
  countPullEntries,
  createCacheOrg,
  entriesOf,
  getChecked,
  pullImage,
  pushRandomImage,
  report,
  waitUntil,
  type PullResult,
  type PushedImage,
} from './infra-fixture';

const ORG = 'hub';
const SIZE_MB = 30;

interface SmallFs {
  dir: string;
  kind: string;
  unmount(): void;
}

/** Mounts a 30 MB filesystem (tmpfs, else a loop-mounted ext4 image); throws with what each attempt said. */
function mountSmallFs(): SmallFs {
  const base = mkdtempSync(join(tmpdir(), 'entrepot-diskfull-'));
  const dir = join(base, 'mnt');
  spawnSync('mkdir', [dir]);
  const tmpfs = spawnSync('mount', ['-t', 'tmpfs', '-o', `size=${SIZE_MB}m`, 'tmpfs', dir], { encoding: 'utf8' });
  const cleanup = (): void => rmSync(base, { recursive: true, force: true });
  if (tmpfs.status === 0) {
    return { dir, kind: `tmpfs ${SIZE_MB} MB`, unmount: () => (spawnSync('umount', ['-l', dir]), cleanup()) };
  }
  const image = join(base, 'fs.img');
  const steps = [
    ['truncate', ['-s', `${SIZE_MB}M`, image]],
    ['mkfs.ext4', ['-q', '-F', '-m', '0', image]],
    ['mount', ['-o', 'loop', image, dir]],
  ] as const;
  for (const [cmd, args] of steps) {
    const r = spawnSync(cmd, [...args], { encoding: 'utf8' });
    if (r.status !== 0) {
      cleanup();
      throw new Error(`cannot mount a small filesystem: tmpfs: ${(tmpfs.stderr || String(tmpfs.error)).trim()}; loop ext4 (${cmd}): ${(r.stderr || String(r.error)).trim()}`);
    }
  }
  return { dir, kind: `loop-mounted ext4 ${SIZE_MB} MB`, unmount: () => (spawnSync('umount', ['-l', dir]), cleanup()) };
}

function freeBytes(dir: string): number {
  const s = statfsSync(dir);
  return s.bavail * s.bsize;
}

describe('the data directory filling up during a fill', () => {
  let smallFs: SmallFs;
  let upstream: UpstreamRegistry;
  let entrepot: TestInstance;
  let cached: PushedImage;
  let big: PushedImage;
  const results: PullResult[] = [];

  beforeAll(async () => {
    smallFs = mountSmallFs();
    upstream = await UpstreamRegistry.start({ auth: { mode: 'anonymous' } });
    cached = await pushRandomImage(upstream.url, 'library/small', 'v1', [MiB]);
    big = await pushRandomImage(upstream.url, 'library/big', 'v1', [16 * MiB]);
    entrepot = await startEntrepot({ plugins: [createPlugin], dataDir: smallFs.dir, env: { PROXY_CACHE_ALLOWED_UPSTREAM_HOSTS: '127.0.0.1:*' } });
    await createCacheOrg((m, p, b) => entrepot.api(m, p, b), ORG, upstream.url, { expiration_s: 3600 });
  }, 60_000);

  afterAll(async () => {
    await entrepot?.stop();
    await upstream?.stop();
    smallFs?.unmount();
  });

  const pull = async (image: PushedImage): Promise<PullResult> => {
    const result = await pullImage(entrepot.url, image, { name: `${ORG}/${image.repo}`, auth: entrepot.adminAuth });
    results.push(result);
    return result;
  };

  it('fails the fill cleanly, keeps serving cached content, and completes the pull once space returns', async () => {
    report('disk-full', `data directory on ${smallFs.kind}`);
    expect((await pull(cached)).ok).toBe(true);
    // The big image's manifest is cached; its 16 MiB layer is not.
    const manifest = await pull({ ...big, blobs: [] });
    expect(manifest.ok).toBe(true);
    const layer = big.blobs[1];

    // Another file takes all but 6 MiB.
    const filler = join(smallFs.dir, 'filler');
    writeFileSync(filler, Buffer.alloc(Math.max(0, freeBytes(smallFs.dir) - 6 * MiB)));
    const free = freeBytes(smallFs.dir);
    expect(free).toBeLessThan(layer.size);

    const url = `${entrepot.url}/v2/${ORG}/${big.repo}/blobs/${layer.digest}`;
    const got = await getChecked(url, layer, { headers: { authorization: entrepot.adminAuth } });
    report('disk-full', `${free} bytes free, ${layer.size}-byte layer: client got ${got.verdict} ${got.status} after ${got.received} bytes${got.errorCode ? ` (${got.errorCode})` : ''}${got.bodyError ? ` (${got.bodyError})` : ''}`);
    expect(['error', 'cut']).toContain(got.verdict);
    expect(got.received).toBeLessThan(layer.size);
    // The scratch file is removed, nothing partial is kept.
    expect(await waitUntil(async () => (await entriesOf(entrepot.entrepot.services.storage.scratchDir)).length === 0, 10_000)).toBe(true);
    expect(await entrepot.entrepot.services.storage.blobs.stat(layer.digest as Digest)).toBeNull();
    expect((await checkFsBlobStore(entrepot.dataDir)).mismatched).toEqual([]);

    // With not a byte left, cached content is still served (the database cannot take its audit entry meanwhile).
    const rest = join(smallFs.dir, 'filler-rest');
    writeFileSync(rest, Buffer.alloc(0));
    for (let i = 0; i < 64 && freeBytes(smallFs.dir) > 0; i++) {
      try {
        appendFileSync(rest, Buffer.alloc(Math.min(MiB, freeBytes(smallFs.dir))));
      } catch {
        break;
      }
    }
    report('disk-full', `${freeBytes(smallFs.dir)} bytes free while pulling cached content`);
    const warm = await pull(cached);
    expect(warm.responses.map((r) => `${r.verdict} ${r.status}`)).toEqual(['ok 200', 'ok 200', 'ok 200']);
    const stillFull = await pull(big);
    expect(stillFull.corrupt).toEqual([]);
    expect(stillFull.ok).toBe(false);

    // Space returns: the same pull completes and the layer is stored whole.
    await unlink(filler);
    await unlink(rest);
    const again = await pull(big);
    expect(again.responses.map((r) => `${r.verdict} ${r.status}`)).toEqual(['ok 200', 'ok 200', 'ok 200']);
    expect(await waitUntil(async () => (await entrepot.entrepot.services.storage.blobs.stat(layer.digest as Digest)) !== null, 10_000)).toBe(true);
    const fs = await checkFsBlobStore(entrepot.dataDir);
    expect(fs.mismatched).toEqual([]);
    expect(fs.stored).toContain(layer.digest);
    expect(await entriesOf(entrepot.entrepot.services.storage.scratchDir)).toEqual([]);

    // R-AUDIT: the entries written while the database could not grow were retried, none lost.
    await entrepot.entrepot.services.audit.flush();
    await entrepot.entrepot.services.queue.drain(60_000);
    const db = knex({ client: 'better-sqlite3', connection: { filename: join(entrepot.dataDir, 'entrepot.db'), options: { readonly: true } }, useNullAsDefault: true });
    try {
      const expected = results.filter((r) => r.responses[0].status === 200).length;
      expect(await countPullEntries(db, ORG)).toBe(expected);
    } finally {
      await db.destroy();
    }
  }, 120_000);
});
