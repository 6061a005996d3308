import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { digestOf } from '../../src/oci/digest';
import { createFsStorage } from '../../src/storage/fs-store';
import { describeBlobStoreContract, streamOf } from './blob-store.contract';

describeBlobStoreContract('fs', async () => {
  const dataDir = await mkdtemp(join(tmpdir(), 'entrepot-fs-store-'));
  const storage = await createFsStorage(dataDir);
  return { storage, cleanup: () => rm(dataDir, { recursive: true, force: true }) };
});

describe('fs storage specifics', () => {
  let dataDir: string;

  beforeEach(async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'entrepot-fs-store-'));
  });

  afterEach(async () => {
    await rm(dataDir, { recursive: true, force: true });
  });

  test('blobs live under storage/blobs/<algo>/<2 hex>/<hex> and no temporary file is left', async () => {
    const storage = await createFsStorage(dataDir);
    const data = randomBytes(1000);
    const digest = digestOf(data);
    await storage.blobs.write(digest, streamOf(data));
    const hex = digest.slice('sha256:'.length);
    expect(await readdir(join(dataDir, 'storage', 'blobs', 'sha256', hex.slice(0, 2)))).toEqual([hex]);
    await expect(storage.blobs.write(digestOf('other'), streamOf(data))).rejects.toMatchObject({ code: 'DIGEST_INVALID' });
    expect(await readdir(join(dataDir, 'storage', 'tmp'))).toEqual([]);
  });

  test('restarting clears temporary files and scratch space but keeps blobs', async () => {
    const first = await createFsStorage(dataDir);
    const data = randomBytes(1000);
    const digest = digestOf(data);
    await first.blobs.write(digest, streamOf(data));
    await writeFile(join(dataDir, 'storage', 'tmp', 'left-by-crash'), 'x');
    await writeFile(join(first.scratchDir, 'fill'), 'x');
    const second = await createFsStorage(dataDir);
    expect(await readdir(join(dataDir, 'storage', 'tmp'))).toEqual([]);
    expect(await readdir(second.scratchDir)).toEqual([]);
    expect(await second.blobs.stat(digest)).toEqual({ size: 1000 });
  });
});
