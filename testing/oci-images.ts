/**
 * Test images without Docker: writes OCI image layouts by hand (random,
 * incompressible layer content in valid tar.gz layers) and moves images with
 * skopeo.
 */
import { createCipheriv, createHash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { Writable } from 'node:stream';
import * as zlib from 'node:zlib';
import { requireTool, run, type RunResult } from './tools';

export const MEDIA_TYPES = {
  ociManifest: 'application/vnd.oci.image.manifest.v1+json',
  ociIndex: 'application/vnd.oci.image.index.v1+json',
  ociConfig: 'application/vnd.oci.image.config.v1+json',
  ociLayerGzip: 'application/vnd.oci.image.layer.v1.tar+gzip',
  dockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
  dockerManifestList: 'application/vnd.docker.distribution.manifest.list.v2+json',
  dockerConfig: 'application/vnd.docker.container.image.v1+json',
  dockerLayerGzip: 'application/vnd.docker.image.rootfs.diff.tar.gzip',
} as const;

export interface Platform {
  os: string;
  architecture: string;
  variant?: string;
}

export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  platform?: Platform;
  annotations?: Record<string, string>;
}

export interface BuiltLayer extends Descriptor {
  /** sha256 of the uncompressed tar (the config's rootfs.diff_ids entry). */
  diffId: string;
  /** Size of the single file inside the layer. */
  contentSize: number;
}

export interface BuiltManifest extends Descriptor {
  platform: Platform;
  config: Descriptor;
  layers: BuiltLayer[];
}

export interface BuiltImage {
  layoutDir: string;
  tag: string;
  /** Digest of what the tag points at: the manifest, or the index for multi-platform images. */
  digest: string;
  mediaType: string;
  size: number;
  /** One per platform. */
  manifests: BuiltManifest[];
  /** Every blob digest of the image (index, manifests, configs, layers). */
  blobs: string[];
}

export interface OciImageOptions {
  /** Tag (the `org.opencontainers.image.ref.name` in index.json), default `latest`. */
  tag?: string;
  /** Number of layers per platform (default 1, or the length of `layerSize` when it is an array). */
  layerCount?: number;
  /** Bytes of random content per layer (default 64 KiB); an array gives each layer its own size. */
  layerSize?: number | number[];
  /** Platforms; more than one writes an image index. Default: linux/amd64 only. */
  platforms?: Platform[];
  /** Forces an image index even for one platform. */
  index?: boolean;
  /** Annotations on the manifest(s) and the index. */
  annotations?: Record<string, string>;
  /** Config labels. */
  labels?: Record<string, string>;
  /** Same seed → byte-identical image; default: random. */
  seed?: string;
}

export const MULTI_ARCH: Platform[] = [
  { os: 'linux', architecture: 'amd64' },
  { os: 'linux', architecture: 'arm64' },
];

const FIXED_TIME = '2024-01-01T00:00:00Z';

export function sha256Digest(data: Buffer | string): string {
  return `sha256:${createHash('sha256').update(data).digest('hex')}`;
}

export function blobPath(layoutDir: string, digest: string): string {
  const [algo, hex] = digest.split(':');
  return path.join(layoutDir, 'blobs', algo, hex);
}

export async function readBlob(layoutDir: string, digest: string): Promise<Buffer> {
  return readFile(blobPath(layoutDir, digest));
}

async function writeBlob(layoutDir: string, data: Buffer | string, mediaType: string): Promise<Descriptor> {
  const buf = Buffer.from(data);
  const digest = sha256Digest(buf);
  await writeFile(blobPath(layoutDir, digest), buf);
  return { mediaType, digest, size: buf.length };
}

function octal(value: number, width: number): string {
  return value.toString(8).padStart(width - 1, '0') + '\0';
}

/** A ustar header for one regular file. */
export function tarHeader(name: string, size: number, mode = 0o644, mtime = 0): Buffer {
  if (Buffer.byteLength(name) > 100) throw new Error(`tar name too long: ${name}`);
  const h = Buffer.alloc(512, 0);
  h.write(name, 0, 100, 'utf8');
  h.write(octal(mode, 8), 100, 8, 'ascii');
  h.write(octal(0, 8), 108, 8, 'ascii');
  h.write(octal(0, 8), 116, 8, 'ascii');
  h.write(octal(size, 12), 124, 12, 'ascii');
  h.write(octal(mtime, 12), 136, 12, 'ascii');
  h.write('        ', 148, 8, 'ascii');
  h.write('0', 156, 1, 'ascii');
  h.write('ustar\0', 257, 6, 'ascii');
  h.write('00', 263, 2, 'ascii');
  h.write('root', 265, 32, 'ascii');
  h.write('root', 297, 32, 'ascii');
  let sum = 0;
  for (const byte of h) sum += byte;
  h.write(sum.toString(8).padStart(6, '0') + '\0 ', 148, 8, 'ascii');
  return h;
}

/** Deterministic incompressible bytes: an AES-256-CTR keystream keyed by `seed`. */
function keystream(seed: string): (n: number) => Buffer {
  const key = createHash('sha256').update(`key:${seed}`).digest();
  const iv = createHash('sha256').update(`iv:${seed}`).digest().subarray(0, 16);
  const cipher = createCipheriv('aes-256-ctr', key, iv);
  return (n) => cipher.update(Buffer.alloc(n));
}

/** Writes one tar.gz layer holding a single file of `size` random bytes; streams, so sizes may be large. */
async function writeLayer(layoutDir: string, seed: string, fileName: string, size: number): Promise<BuiltLayer> {
  const tmp = path.join(layoutDir, 'blobs', 'sha256', `.tmp-${process.pid}-${Math.random().toString(36).slice(2)}`);
  const diff = createHash('sha256');
  const compressed = createHash('sha256');
  let compressedSize = 0;
  const gzip = zlib.createGzip({ level: 1 });
  const file = createWriteStream(tmp);
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      compressed.update(chunk);
      compressedSize += chunk.length;
      if (file.write(chunk)) cb();
      else file.once('drain', () => cb());
    },
    final(cb) {
      file.end(() => cb());
    },
  });
  gzip.pipe(sink);
  const done = new Promise<void>((resolve, reject) => {
    sink.on('finish', () => resolve());
    sink.on('error', reject);
    gzip.on('error', reject);
    file.on('error', reject);
  });
  const write = async (buf: Buffer): Promise<void> => {
    diff.update(buf);
    if (!gzip.write(buf)) await new Promise<void>((resolve) => gzip.once('drain', () => resolve()));
  };
  const next = keystream(seed);
  await write(tarHeader(fileName, size));
  const chunk = 1 << 20;
  for (let left = size; left > 0; left -= chunk) await write(next(Math.min(chunk, left)));
  const pad = (512 - (size % 512)) % 512;
  await write(Buffer.alloc(pad + 1024));
  gzip.end();
  await done;
  const digest = `sha256:${compressed.digest('hex')}`;
  await rename(tmp, blobPath(layoutDir, digest));
  return {
    mediaType: MEDIA_TYPES.ociLayerGzip,
    digest,
    size: compressedSize,
    diffId: `sha256:${diff.digest('hex')}`,
    contentSize: size,
  };
}

interface IndexJson {
  schemaVersion: number;
  mediaType?: string;
  manifests: Descriptor[];
}

async function readIndexJson(layoutDir: string): Promise<IndexJson> {
  try {
    return JSON.parse(await readFile(path.join(layoutDir, 'index.json'), 'utf8')) as IndexJson;
  } catch {
    return { schemaVersion: 2, mediaType: MEDIA_TYPES.ociIndex, manifests: [] };
  }
}

/**
 * Writes an image into the OCI layout `layoutDir` (created if needed; other
 * tags already in it are kept) and tags it in index.json.
 */
export async function createOciImage(layoutDir: string, options: OciImageOptions = {}): Promise<BuiltImage> {
  const tag = options.tag ?? 'latest';
  const seed = options.seed ?? Math.random().toString(36).slice(2) + Date.now().toString(36);
  const sizes = Array.isArray(options.layerSize)
    ? options.layerSize
    : Array.from({ length: options.layerCount ?? 1 }, () => (options.layerSize as number | undefined) ?? 64 * 1024);
  if (Array.isArray(options.layerSize) && options.layerCount !== undefined && options.layerCount !== sizes.length) {
    throw new Error('createOciImage: layerCount does not match layerSize.length');
  }
  const platforms = options.platforms ?? [{ os: 'linux', architecture: 'amd64' }];
  if (platforms.length === 0) throw new Error('createOciImage: no platform');

  await mkdir(path.join(layoutDir, 'blobs', 'sha256'), { recursive: true });
  await writeFile(path.join(layoutDir, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));

  const manifests: BuiltManifest[] = [];
  const blobs: string[] = [];
  for (const platform of platforms) {
    const pKey = `${platform.os}/${platform.architecture}${platform.variant ? `/${platform.variant}` : ''}`;
    const layers: BuiltLayer[] = [];
    for (let i = 0; i < sizes.length; i++) {
      layers.push(await writeLayer(layoutDir, `${seed}:${pKey}:${i}`, `layer${i}.bin`, sizes[i]));
    }
    const configJson = {
      created: FIXED_TIME,
      architecture: platform.architecture,
      os: platform.os,
      ...(platform.variant ? { variant: platform.variant } : {}),
      config: {
        Env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'],
        Cmd: ['/bin/sh'],
        Labels: { 'org.entrepot.test.seed': seed, ...(options.labels ?? {}) },
      },
      rootfs: { type: 'layers', diff_ids: layers.map((l) => l.diffId) },
      history: layers.map((_l, i) => ({ created: FIXED_TIME, created_by: `entrepot test layer ${i}` })),
    };
    const config = await writeBlob(layoutDir, JSON.stringify(configJson), MEDIA_TYPES.ociConfig);
    const manifestJson = {
      schemaVersion: 2,
      mediaType: MEDIA_TYPES.ociManifest,
      config: { mediaType: config.mediaType, digest: config.digest, size: config.size },
      layers: layers.map((l) => ({ mediaType: l.mediaType, digest: l.digest, size: l.size })),
      ...(options.annotations ? { annotations: options.annotations } : {}),
    };
    const manifest = await writeBlob(layoutDir, JSON.stringify(manifestJson), MEDIA_TYPES.ociManifest);
    manifests.push({ ...manifest, platform, config, layers });
    blobs.push(manifest.digest, config.digest, ...layers.map((l) => l.digest));
  }

  let top: Descriptor;
  if (platforms.length > 1 || options.index) {
    const indexJson = {
      schemaVersion: 2,
      mediaType: MEDIA_TYPES.ociIndex,
      manifests: manifests.map((m) => ({ mediaType: m.mediaType, digest: m.digest, size: m.size, platform: m.platform })),
      ...(options.annotations ? { annotations: options.annotations } : {}),
    };
    top = await writeBlob(layoutDir, JSON.stringify(indexJson), MEDIA_TYPES.ociIndex);
    blobs.unshift(top.digest);
  } else {
    top = { mediaType: manifests[0].mediaType, digest: manifests[0].digest, size: manifests[0].size };
  }

  const index = await readIndexJson(layoutDir);
  index.manifests = index.manifests.filter((d) => d.annotations?.['org.opencontainers.image.ref.name'] !== tag);
  index.manifests.push({
    mediaType: top.mediaType,
    digest: top.digest,
    size: top.size,
    annotations: { 'org.opencontainers.image.ref.name': tag },
  });
  await writeFile(path.join(layoutDir, 'index.json'), JSON.stringify(index));

  return { layoutDir, tag, digest: top.digest, mediaType: top.mediaType, size: top.size, manifests, blobs };
}

// ---------------------------------------------------------------------------
// skopeo

export interface SkopeoOptions {
  /** `user:password` for the registry side. */
  creds?: string;
  /** A registries.conf to use (skopeo ignores CONTAINERS_REGISTRIES_CONF). */
  registriesConf?: string;
  /** Require TLS verification (default false: plain HTTP to loopback registries). */
  tlsVerify?: boolean;
  timeoutMs?: number;
  /** Extra arguments placed before source and destination. */
  extraArgs?: string[];
}

/** Runs skopeo with no inherited credentials and no signature policy file. */
export async function skopeo(args: string[], opts: { registriesConf?: string; timeoutMs?: number } = {}): Promise<RunResult> {
  const global = ['--insecure-policy'];
  if (opts.registriesConf) global.push('--registries-conf', opts.registriesConf);
  const env = { ...process.env, REGISTRY_AUTH_FILE: path.join(os.tmpdir(), 'entrepot-test-no-auth.json') };
  return run(requireTool('skopeo'), [...global, ...args], { env, timeoutMs: opts.timeoutMs ?? 300_000 });
}

async function copyWithDigestFile(args: string[], opts: SkopeoOptions): Promise<string> {
  const digestFile = path.join(os.tmpdir(), `entrepot-digest-${process.pid}-${Math.random().toString(36).slice(2)}`);
  try {
    await skopeo(['copy', '--quiet', '--digestfile', digestFile, ...args], opts);
    return (await readFile(digestFile, 'utf8')).trim();
  } finally {
    await rm(digestFile, { force: true });
  }
}

export interface PushOptions extends SkopeoOptions {
  /** Manifest format at the destination: `oci` (default: as in the layout) or `v2s2` (Docker media types). */
  format?: 'oci' | 'v2s2';
  /** Copy every platform of an index (`--all`); otherwise skopeo picks the host's platform. */
  all?: boolean;
}

/**
 * Pushes `oci:layoutDir:tag` to `dest` (`127.0.0.1:PORT/repo:tag`, no transport
 * prefix) and returns the digest of the manifest (or index) as pushed.
 */
export async function pushImage(layoutDir: string, tag: string, dest: string, opts: PushOptions = {}): Promise<string> {
  const args = [`--dest-tls-verify=${opts.tlsVerify ?? false}`];
  if (opts.creds) args.push('--dest-creds', opts.creds);
  if (opts.format) args.push('--format', opts.format);
  if (opts.all) args.push('--all');
  args.push(...(opts.extraArgs ?? []), `oci:${layoutDir}:${tag}`, `docker://${dest}`);
  return copyWithDigestFile(args, opts);
}

export interface CopyOutOptions extends SkopeoOptions {
  /** Copy all platforms of an index. */
  all?: boolean;
  /**
   * `dir` (default) keeps the manifest bytes exactly as served, so the returned
   * digest is that of the pulled manifest; `oci` writes an OCI layout (which
   * converts Docker media types).
   */
  transport?: 'dir' | 'oci';
}

/**
 * Pulls `src` (`host/repo:tag` or `host/repo@digest`, no transport prefix) into
 * `destDir` and returns the digest of the manifest that was pulled.
 */
export async function skopeoCopyOut(src: string, destDir: string, opts: CopyOutOptions = {}): Promise<string> {
  const transport = opts.transport ?? 'dir';
  const args = [`--src-tls-verify=${opts.tlsVerify ?? false}`];
  if (opts.creds) args.push('--src-creds', opts.creds);
  if (opts.all) args.push('--all');
  if (transport === 'dir') args.push('--preserve-digests');
  args.push(...(opts.extraArgs ?? []));
  await mkdir(destDir, { recursive: true });
  if (transport === 'dir') {
    await skopeo(['copy', '--quiet', ...args, `docker://${src}`, `dir:${destDir}`], opts);
    return sha256Digest(await readFile(path.join(destDir, 'manifest.json')));
  }
  await skopeo(['copy', '--quiet', ...args, `docker://${src}`, `oci:${destDir}:pulled`], opts);
  const index = await readIndexJson(destDir);
  const entry = index.manifests.find((d) => d.annotations?.['org.opencontainers.image.ref.name'] === 'pulled');
  if (!entry) throw new Error(`skopeoCopyOut: no manifest written to ${destDir}`);
  return entry.digest;
}

/** The raw manifest bytes of `ref` (`host/repo:tag` or `@digest`), as the registry serves them. */
export async function skopeoInspectRaw(ref: string, opts: SkopeoOptions = {}): Promise<Buffer> {
  const args = ['inspect', '--raw', `--tls-verify=${opts.tlsVerify ?? false}`];
  if (opts.creds) args.push('--creds', opts.creds);
  args.push(...(opts.extraArgs ?? []), `docker://${ref}`);
  return (await skopeo(args, opts)).stdout;
}

/** sha256 digest of the raw manifest of `ref`. */
export async function skopeoInspectDigest(ref: string, opts: SkopeoOptions = {}): Promise<string> {
  return sha256Digest(await skopeoInspectRaw(ref, opts));
}
