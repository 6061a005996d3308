/** Test images for the benchmark: built by the harness, pushed to the upstream, and published to nginx. */
import { createHash, randomBytes } from 'node:crypto';
import { rm } from 'node:fs/promises';
import * as http from 'node:http';
import { join } from 'node:path';
import { blobPath, createOciImage, pushImage, readBlob, MEDIA_TYPES } from '../../testing/oci-images';
import type { UpstreamRegistry } from '../../testing/upstream-registry';
import type { NginxStatic } from './contenders';
import { mapLimit } from './util';

export interface BlobRef {
  digest: string;
  size: number;
}

export interface PublishedImage {
  repo: string;
  tag: string;
  digest: string;
  mediaType: string;
  manifest: Buffer;
  config: BlobRef;
  layers: BlobRef[];
  largest: BlobRef;
  /** Config and layers. */
  blobs: BlobRef[];
  totalBytes: number;
}

export const MANIFEST_ACCEPT = `Accept: ${MEDIA_TYPES.ociManifest}, ${MEDIA_TYPES.dockerManifest}, ${MEDIA_TYPES.ociIndex}, ${MEDIA_TYPES.dockerManifestList}`;

/** Builds an image with random incompressible layers, pushes it with skopeo, and links its files into nginx. */
export async function buildAndPush(upstream: UpstreamRegistry, workDir: string, repo: string, layerSizes: number[], nginx?: NginxStatic): Promise<PublishedImage> {
  const layout = join(workDir, `layout-${repo.replace(/\W/g, '_')}-${Date.now()}`);
  try {
    const tag = 'v1';
    const image = await createOciImage(layout, { tag, layerSize: layerSizes });
    const pushed = await pushImage(layout, tag, upstream.ref(repo, tag));
    if (pushed !== image.digest) throw new Error(`pushed digest ${pushed} differs from built ${image.digest}`);
    const m = image.manifests[0];
    const manifest = await readBlob(layout, image.digest);
    const layers = m.layers.map((l) => ({ digest: l.digest, size: l.size }));
    const config = { digest: m.config.digest, size: m.config.size };
    const largest = layers.reduce((a, b) => (b.size > a.size ? b : a));
    const blobs = [config, ...layers];
    if (nginx) {
      nginx.publish(repo, tag, image.digest, manifest, blobs.map((b) => ({ digest: b.digest, file: blobPath(layout, b.digest) })));
    }
    return { repo, tag, digest: image.digest, mediaType: image.mediaType, manifest, config, layers, largest, blobs, totalBytes: blobs.reduce((a, b) => a + b.size, 0) };
  } finally {
    await rm(layout, { recursive: true, force: true });
  }
}

// ---------------------------------------------------------------------------
// Many small images straight over the registry API (growth scenario)

const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });

export interface HttpResult {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
}

export function request(url: string, method: string, headers: Record<string, string> = {}, body?: Buffer, timeoutMs = 120_000): Promise<HttpResult> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method, headers: { ...headers, ...(body ? { 'content-length': String(body.length) } : {}) }, agent, timeout: timeoutMs }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`timeout: ${method} ${url}`)));
    req.on('error', reject);
    req.end(body);
  });
}

function sha256(data: Buffer): string {
  return `sha256:${createHash('sha256').update(data).digest('hex')}`;
}

export async function uploadBlob(base: string, repo: string, data: Buffer): Promise<BlobRef> {
  const digest = sha256(data);
  const start = await request(`${base}/v2/${repo}/blobs/uploads/`, 'POST');
  if (start.status !== 202) throw new Error(`upload start ${repo}: HTTP ${start.status}`);
  const location = new URL(String(start.headers.location), base);
  location.searchParams.set('digest', digest);
  const put = await request(location.toString(), 'PUT', { 'content-type': 'application/octet-stream' }, data);
  if (put.status !== 201) throw new Error(`upload ${repo}: HTTP ${put.status} ${put.body.toString()}`);
  return { digest, size: data.length };
}

export interface GrowthTag {
  repo: string;
  tag: string;
  digest: string;
}

/** `repos` repositories × `tagsPerRepo` distinct small manifests on the upstream (each repo its own layer). */
export async function populateUpstream(upstream: UpstreamRegistry, repos: number, tagsPerRepo: number, concurrency = 16): Promise<GrowthTag[]> {
  const configData = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [] }, config: {} }));
  const names = Array.from({ length: repos }, (_v, i) => `library/g${String(i).padStart(5, '0')}`);
  const perRepo = await mapLimit(names, concurrency, async (repo) => {
    const config = await uploadBlob(upstream.url, repo, configData);
    const layer = await uploadBlob(upstream.url, repo, randomBytes(1024));
    const tags: GrowthTag[] = [];
    for (let t = 0; t < tagsPerRepo; t++) {
      const tag = `t${t}`;
      const manifest = Buffer.from(
        JSON.stringify({
          schemaVersion: 2,
          mediaType: MEDIA_TYPES.ociManifest,
          config: { mediaType: MEDIA_TYPES.ociConfig, ...config },
          layers: [{ mediaType: MEDIA_TYPES.ociLayerGzip, ...layer }],
          annotations: { 'org.entrepot.bench.ref': `${repo}:${tag}` },
        }),
      );
      const res = await request(`${upstream.url}/v2/${repo}/manifests/${tag}`, 'PUT', { 'content-type': MEDIA_TYPES.ociManifest }, manifest);
      if (res.status !== 201) throw new Error(`manifest ${repo}:${tag}: HTTP ${res.status} ${res.body.toString()}`);
      tags.push({ repo, tag, digest: sha256(manifest) });
    }
    return tags;
  });
  return perRepo.flat();
}

/** GETs every tag's manifest through `baseUrl` (so a cache stores it) and checks its digest. */
export async function pullAll(baseUrl: string, repoPath: (r: string) => string, tags: GrowthTag[], concurrency = 16): Promise<void> {
  const accept = MANIFEST_ACCEPT.slice('Accept: '.length);
  await mapLimit(tags, concurrency, async (t) => {
    const res = await request(`${baseUrl}/v2/${repoPath(t.repo)}/manifests/${t.tag}`, 'GET', { accept });
    if (res.status !== 200) throw new Error(`GET ${t.repo}:${t.tag}: HTTP ${res.status} ${res.body.toString().slice(0, 200)}`);
    if (sha256(res.body) !== t.digest) throw new Error(`GET ${t.repo}:${t.tag}: wrong manifest digest`);
  });
}
