import { InProcessCoordinator } from '../../src/coordination/in-process-coordinator';
import { RegistryError } from '../../src/errors/registry-error';
import type { Digest } from '../../src/oci/digest';
import { BlobLocks } from '../../src/services/blob-locks';

const DIGEST = `sha256:${'a'.repeat(64)}` as Digest;
const OTHER = `sha256:${'b'.repeat(64)}` as Digest;

describe('BlobLocks', () => {
  it('keeps a collector off a digest while a writer commits it, and only that digest', async () => {
    const locks = new BlobLocks(new InProcessCoordinator());
    await locks.whileCommitting(DIGEST, async () => {
      expect(await locks.tryForCollection(DIGEST)).toBeNull();
      const other = await locks.tryForCollection(OTHER);
      expect(other).not.toBeNull();
      await other?.release();
    });
    const lease = await locks.tryForCollection(DIGEST);
    expect(lease).not.toBeNull();
    await lease?.release();
  });

  it('tells a writer that cannot get the lock to retry (503), and passes the work’s own failures through', async () => {
    const locks = new BlobLocks(new InProcessCoordinator());
    const collector = await locks.tryForCollection(DIGEST);
    const refused = await locks.whileCommitting(DIGEST, async () => 'ran', 50).catch((err: unknown) => err);
    expect(refused).toBeInstanceOf(RegistryError);
    expect(refused).toMatchObject({ code: 'UNAVAILABLE', status: 503, headers: { 'Retry-After': '10' } });
    await collector?.release();
    expect(await locks.whileCommitting(DIGEST, async () => 'ran', 50)).toBe('ran');
    await expect(locks.whileCommitting(DIGEST, async () => Promise.reject(new Error('disk full')))).rejects.toThrow('disk full');
  });
});
