import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, open, readdir, readlink, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RegistryError } from '../../src/errors/registry-error';
import { WorkerFileHasher } from '../../src/storage/file-hasher';

describe('WorkerFileHasher', () => {
  let dir: string;
  let hasher: WorkerFileHasher;

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'entrepot-file-hasher-'));
    hasher = new WorkerFileHasher();
  });

  afterEach(async () => {
    await hasher.close();
    await rm(dir, { recursive: true, force: true });
  });

  test('hashes a file while it grows, piece by piece, to the digest of all of it', async () => {
    const content = randomBytes(5 * 1024 * 1024 + 123);
    const path = join(dir, 'growing');
    const file = await open(path, 'w+');
    const hash = hasher.hashGrowingFile(path, 'sha256');
    let written = 0;
    for (const size of [1, 4095, 1024 * 1024, 3 * 1024 * 1024, content.length]) {
      const end = Math.min(size + written, content.length);
      await file.write(content, written, end - written, written);
      written = end;
      hash.advance(written);
    }
    await file.close();
    expect(await hash.digest(content.length)).toBe(`sha256:${createHash('sha256').update(content).digest('hex')}`);
  });

  test('sha512 digests, and several files hashed at once stay apart', async () => {
    const contents = [randomBytes(300_000), randomBytes(10), Buffer.alloc(0)];
    const hashes = await Promise.all(
      contents.map(async (content, i) => {
        const path = join(dir, `f${i}`);
        await writeFile(path, content);
        const hash = hasher.hashGrowingFile(path, i === 0 ? 'sha512' : 'sha256');
        hash.advance(content.length);
        return hash.digest(content.length);
      }),
    );
    expect(hashes).toEqual([
      `sha512:${createHash('sha512').update(contents[0]).digest('hex')}`,
      `sha256:${createHash('sha256').update(contents[1]).digest('hex')}`,
      `sha256:${createHash('sha256').update(contents[2]).digest('hex')}`,
    ]);
  });

  test('a file shorter than the bytes claimed written fails its digest with the reason', async () => {
    const path = join(dir, 'short');
    await writeFile(path, randomBytes(1000));
    const hash = hasher.hashGrowingFile(path, 'sha256');
    hash.advance(1000);
    await expect(hash.digest(2000)).rejects.toThrow(/file ends at 1000 bytes, 2000 expected/);
  });

  test('a missing file fails its digest; an unsupported algorithm is refused at once', async () => {
    const hash = hasher.hashGrowingFile(join(dir, 'missing'), 'sha256');
    await expect(hash.digest(10)).rejects.toThrow(/ENOENT/);
    expect(() => hasher.hashGrowingFile(join(dir, 'x'), 'md5')).toThrow(RegistryError);
  });

  test('close fails digests still awaited, and the hasher starts a new worker when used again', async () => {
    const path = join(dir, 'big');
    const content = randomBytes(64 * 1024 * 1024);
    await writeFile(path, content);
    const hash = hasher.hashGrowingFile(path, 'sha256');
    hash.advance(content.length);
    const pending = hash.digest(content.length);
    await hasher.close();
    await expect(pending).rejects.toThrow(/file hasher closed/);

    const again = hasher.hashGrowingFile(path, 'sha256');
    expect(await again.digest(content.length)).toBe(`sha256:${createHash('sha256').update(content).digest('hex')}`);
  });

  test('an abandoned session closes its file; a finished one too', async () => {
    const path = join(dir, 'abandoned');
    const other = join(dir, 'other');
    await writeFile(path, randomBytes(100));
    await writeFile(other, randomBytes(10));
    // The worker takes requests in order, so once a later digest is back the earlier requests are done.
    const settled = (): Promise<unknown> => hasher.hashGrowingFile(other, 'sha256').digest(10);
    const abandoned = hasher.hashGrowingFile(path, 'sha256');
    abandoned.advance(50);
    await settled();
    expect(await openDescriptorsOf(path)).toBe(1);
    abandoned.abandon();
    await settled();
    expect(await openDescriptorsOf(path)).toBe(0);
    expect(await openDescriptorsOf(other)).toBe(0);
  });
});

/** How many of this process's descriptors (worker threads included) are open on `path`. */
async function openDescriptorsOf(path: string): Promise<number> {
  const fds = await readdir('/proc/self/fd');
  const targets = await Promise.all(fds.map((fd) => readlink(`/proc/self/fd/${fd}`).catch(() => '')));
  return targets.filter((target) => target === path).length;
}
