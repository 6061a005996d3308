/**
 * Small OS images a vulnerability scanner recognises, written as OCI layouts:
 * one layer with `etc/os-release` and the package database of an Alpine
 * (`lib/apk/db/installed`) or Debian (`var/lib/dpkg/status` and `info/`) system listing
 * the given packages. Enough for Clair to detect the distribution and the
 * installed versions; nothing in them runs.
 */
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import { MEDIA_TYPES, sha256Digest, tarHeader, type Platform } from './oci-images';

export type OsFlavour = 'alpine' | 'debian';

export interface OsPackage {
  name: string;
  version: string;
}

export interface OsImageOptions {
  tag: string;
  flavour: OsFlavour;
  packages: OsPackage[];
  /** Several platforms make the tag an index (one manifest per platform, same layer). */
  platforms?: Platform[];
}

export interface OsImage {
  digest: string;
  /** Per platform: manifest digest. */
  manifests: Array<{ platform: Platform; digest: string }>;
  layerDigest: string;
}

/** `VERSION_ID` 3.18.4 → Clair's Alpine release 3.18 ("Alpine Linux v3.18"); Debian 12 → "12 (bookworm)". */
export const ALPINE_DISTRIBUTION = { did: 'alpine', name: 'Alpine Linux', pretty_name: 'Alpine Linux v3.18' };
export const DEBIAN_DISTRIBUTION = { did: 'debian', name: 'Debian GNU/Linux', version: '12 (bookworm)' };

function osRelease(flavour: OsFlavour): string {
  return flavour === 'alpine'
    ? 'NAME="Alpine Linux"\nID=alpine\nVERSION_ID=3.18.4\nPRETTY_NAME="Alpine Linux v3.18"\nHOME_URL="https://alpinelinux.org/"\n'
    : 'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nNAME="Debian GNU/Linux"\nVERSION_ID="12"\nVERSION="12 (bookworm)"\nVERSION_CODENAME=bookworm\nID=debian\n';
}

function packageDb(flavour: OsFlavour, packages: OsPackage[]): { file: string; text: string } {
  if (flavour === 'alpine') {
    return { file: 'lib/apk/db/installed', text: packages.map((p) => `P:${p.name}\nV:${p.version}\nA:x86_64\no:${p.name}\n`).join('\n') + '\n' };
  }
  return {
    file: 'var/lib/dpkg/status',
    text: packages.map((p) => `Package: ${p.name}\nStatus: install ok installed\nPriority: optional\nArchitecture: amd64\nVersion: ${p.version}\nDescription: ${p.name}\n`).join('\n') + '\n',
  };
}

function dirHeader(name: string): Buffer {
  const h = tarHeader(name, 0, 0o755);
  // Directory entry: type flag '5', checksum recomputed.
  h.write('5', 156, 1, 'ascii');
  h.fill(' ', 148, 156);
  let sum = 0;
  for (const byte of h) sum += byte;
  h.write(sum.toString(8).padStart(6, '0') + '\0 ', 148, 8, 'ascii');
  return h;
}

function tarOf(files: Array<{ name: string; text: string }>, extraDirs: string[]): Buffer {
  const parts: Buffer[] = [];
  const dirs = new Set<string>();
  for (const dir of extraDirs) {
    dirs.add(dir);
    parts.push(dirHeader(dir));
  }
  for (const f of files) {
    const segments = f.name.split('/');
    for (let i = 1; i < segments.length; i++) {
      const dir = `${segments.slice(0, i).join('/')}/`;
      if (!dirs.has(dir)) {
        dirs.add(dir);
        parts.push(dirHeader(dir));
      }
    }
    const body = Buffer.from(f.text);
    parts.push(tarHeader(f.name, body.length), body, Buffer.alloc((512 - (body.length % 512)) % 512));
  }
  parts.push(Buffer.alloc(1024));
  return Buffer.concat(parts);
}

async function writeBlob(layoutDir: string, data: Buffer): Promise<string> {
  const digest = sha256Digest(data);
  await writeFile(path.join(layoutDir, 'blobs', 'sha256', digest.slice(7)), data);
  return digest;
}

/** Writes the image into `layoutDir` (kept: other tags stay) and tags it. */
export async function createOsImage(layoutDir: string, options: OsImageOptions): Promise<OsImage> {
  await mkdir(path.join(layoutDir, 'blobs', 'sha256'), { recursive: true });
  await writeFile(path.join(layoutDir, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
  const db = packageDb(options.flavour, options.packages);
  // dpkg's database is a directory holding `status` and `info/`; Clair looks for both.
  const dirs = options.flavour === 'debian' ? ['var/', 'var/lib/', 'var/lib/dpkg/', 'var/lib/dpkg/info/'] : [];
  const tar = tarOf([{ name: 'etc/os-release', text: osRelease(options.flavour) }, { name: db.file, text: db.text }], dirs);
  const gz = zlib.gzipSync(tar);
  const layerDigest = await writeBlob(layoutDir, gz);
  const platforms = options.platforms ?? [{ os: 'linux', architecture: 'amd64' }];
  const manifests: OsImage['manifests'] = [];
  const descriptors: Array<Record<string, unknown>> = [];
  for (const platform of platforms) {
    const config = Buffer.from(
      JSON.stringify({ architecture: platform.architecture, os: platform.os, config: { Labels: { 'org.entrepot.test': options.tag } }, rootfs: { type: 'layers', diff_ids: [sha256Digest(tar)] } }),
    );
    const configDigest = await writeBlob(layoutDir, config);
    const manifest = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: MEDIA_TYPES.ociManifest,
        config: { mediaType: MEDIA_TYPES.ociConfig, digest: configDigest, size: config.length },
        layers: [{ mediaType: MEDIA_TYPES.ociLayerGzip, digest: layerDigest, size: gz.length }],
      }),
    );
    const digest = await writeBlob(layoutDir, manifest);
    manifests.push({ platform, digest });
    descriptors.push({ mediaType: MEDIA_TYPES.ociManifest, digest, size: manifest.length, platform });
  }
  let top = descriptors[0];
  if (platforms.length > 1) {
    const index = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MEDIA_TYPES.ociIndex, manifests: descriptors }));
    top = { mediaType: MEDIA_TYPES.ociIndex, digest: await writeBlob(layoutDir, index), size: index.length };
  }
  let indexJson: { schemaVersion: number; manifests: Array<Record<string, unknown>> } = { schemaVersion: 2, manifests: [] };
  try {
    indexJson = JSON.parse(await readFile(path.join(layoutDir, 'index.json'), 'utf8')) as typeof indexJson;
  } catch {
    // a new layout
  }
  indexJson.manifests = indexJson.manifests.filter((d) => (d.annotations as Record<string, string> | undefined)?.['org.opencontainers.image.ref.name'] !== options.tag);
  indexJson.manifests.push({ mediaType: top.mediaType, digest: top.digest, size: top.size, annotations: { 'org.opencontainers.image.ref.name': options.tag } });
  await writeFile(path.join(layoutDir, 'index.json'), JSON.stringify(indexJson));
  return { digest: String(top.digest), manifests, layerDigest };
}
