import type { Config } from '../config/config';
import { join } from 'node:path';
import { mkdir, readFile, rm } from 'node:fs/promises';
import type { Storage } from './blob-store';
import { createFsStorage } from './fs-store';

/** The configured storage driver (the S3 client is loaded only for S3); fills always spool through local scratch space. */
export async function createStorage(config: Pick<Config, 'storage' | 'data_dir'>): Promise<Storage> {
  const storage = config.storage;
  if (storage.driver === 'fs') return createFsStorage(config.data_dir);
  const scratchDir = join(config.data_dir, 'scratch');
  await rm(scratchDir, { recursive: true, force: true });
  await mkdir(scratchDir, { recursive: true });
  const { createS3Storage } = await import('./s3-store');
  return createS3Storage(
    {
      endpoint: storage.endpoint,
      port: storage.port,
      useSSL: storage.use_ssl,
      ca: storage.ca_file ? await readFile(storage.ca_file, 'utf8') : undefined,
      accessKey: storage.access_key,
      secretKey: storage.secret_key,
      bucket: storage.bucket,
      region: storage.region,
      prefix: storage.prefix,
      redirectDownloads: storage.redirect_downloads,
    },
    scratchDir,
  );
}
