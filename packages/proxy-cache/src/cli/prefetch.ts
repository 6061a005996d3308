import { createHash } from 'node:crypto';
import { SingleBar, Presets } from 'cli-progress';
import { oci } from '@entrepot/registry-core';

export interface PrefetchOptions {
  /** `<org>/<path>:<tag>` or `<org>/<path>@<digest>`. */
  image: string;
  url: string;
  user?: string;
  password?: string;
  /** `os/arch[/variant]`: only that platform of an index. */
  platform?: string;
  progress: boolean;
}

export interface PrefetchResult {
  manifests: number;
  blobs: number;
  bytes: number;
}

function splitImage(image: string): { name: string; reference: string } {
  const at = image.indexOf('@');
  if (at > 0) return { name: image.slice(0, at), reference: image.slice(at + 1) };
  const colon = image.lastIndexOf(':');
  if (colon > image.lastIndexOf('/')) return { name: image.slice(0, colon), reference: image.slice(colon + 1) };
  return { name: image, reference: 'latest' };
}

function matchesPlatform(descriptor: oci.Descriptor, platform?: string): boolean {
  if (!platform) return true;
  const [os, architecture, variant] = platform.split('/');
  const p = descriptor.platform ?? {};
  return p.os === os && p.architecture === architecture && (variant === undefined || p.variant === variant);
}

/**
 * Pulls an image through the registry API exactly as a client would — manifests,
 * then every blob, each verified against its digest — so that the cache holds it.
 */
export async function prefetch(options: PrefetchOptions): Promise<PrefetchResult> {
  const base = options.url.replace(/\/$/, '');
  const headers: Record<string, string> = {};
  if (options.user !== undefined) headers.authorization = `Basic ${Buffer.from(`${options.user}:${options.password ?? ''}`).toString('base64')}`;
  const { name, reference } = splitImage(options.image);

  async function getManifest(ref: string): Promise<{ body: Buffer; type: string }> {
    const res = await fetch(`${base}/v2/${name}/manifests/${ref}`, { headers: { ...headers, accept: oci.ACCEPTED_MANIFEST_TYPES } });
    if (!res.ok) throw new Error(`manifest ${name}:${ref}: HTTP ${res.status} ${(await res.text()).slice(0, 300)}`);
    return { body: Buffer.from(await res.arrayBuffer()), type: res.headers.get('content-type') ?? '' };
  }

  const result: PrefetchResult = { manifests: 0, blobs: 0, bytes: 0 };
  const blobs = new Map<string, number>();
  const top = await getManifest(reference);
  result.manifests++;
  const parsed = oci.parseManifest(top.body, top.type);
  const images = parsed.isIndex ? [] : [parsed];
  for (const child of parsed.manifests.filter((d) => matchesPlatform(d, options.platform))) {
    const fetched = await getManifest(child.digest);
    result.manifests++;
    images.push(oci.parseManifest(fetched.body, fetched.type));
  }
  for (const image of images) for (const blob of image.blobs) if (!oci.isNonDistributable(blob)) blobs.set(blob.digest, blob.size);

  const total = [...blobs.values()].reduce((a, b) => a + b, 0);
  const bar = options.progress ? new SingleBar({ format: 'prefetch [{bar}] {percentage}% | {value}/{total} bytes | {blobs} blobs', stream: process.stderr }, Presets.shades_classic) : null;
  bar?.start(total, 0, { blobs: `0/${blobs.size}` });
  try {
    for (const [digest] of blobs) {
      const res = await fetch(`${base}/v2/${name}/blobs/${digest}`, { headers });
      if (!res.ok || !res.body) throw new Error(`blob ${digest}: HTTP ${res.status}`);
      const hash = createHash(digest.startsWith('sha512:') ? 'sha512' : 'sha256');
      for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
        hash.update(chunk);
        result.bytes += chunk.length;
        bar?.increment(chunk.length);
      }
      if (`${digest.slice(0, digest.indexOf(':'))}:${hash.digest('hex')}` !== digest) throw new Error(`blob ${digest} arrived corrupted`);
      result.blobs++;
      bar?.update({ blobs: `${result.blobs}/${blobs.size}` });
    }
  } finally {
    bar?.stop();
  }
  return result;
}
