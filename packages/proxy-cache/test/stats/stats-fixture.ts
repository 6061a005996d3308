import type { TestInstance } from '../../../../testing/entrepot-instance';
import { sleep } from '../../../../testing/tools';
import type { UpstreamRegistry } from '../../../../testing/upstream-registry';
import { pushTestImage } from '../lifecycle/lifecycle-fixture';

/** What the known sequence of pulls (see `runKnownSequence`) must show. */
export interface ExpectedStats {
  cacheRequests: number;
  upstreamRequests: number;
  cacheBytes: number;
  upstreamBytes: number;
  pulls: number;
  staleServes: number;
}

async function get(instance: TestInstance, path: string): Promise<number> {
  const res = await fetch(`${instance.url}/v2/${path}`, { headers: { authorization: instance.adminAuth } });
  if (res.status !== 200) throw new Error(`GET ${path}: ${res.status} ${await res.text()}`);
  return (await res.arrayBuffer()).byteLength;
}

/**
 * In organization `org` (staleness period 2 s): a miss of the manifest, its
 * config and layer; hits of the manifest and (twice) the layer; then, past the
 * period with the upstream down, a stale serve of the manifest.
 */
export async function runKnownSequence(instance: TestInstance, upstream: UpstreamRegistry, work: string, org: string): Promise<ExpectedStats> {
  const image = await pushTestImage(upstream, work, 'library/app', '1', { layerSize: 300_000 });
  const manifest = image.manifests[0];
  const config = manifest.config.digest;
  const layer = manifest.layers[0].digest;
  const repo = `${org}/library/app`;
  const m = await get(instance, `${repo}/manifests/1`);
  const c = await get(instance, `${repo}/blobs/${config}`);
  const l = await get(instance, `${repo}/blobs/${layer}`);
  await get(instance, `${repo}/manifests/1`);
  await get(instance, `${repo}/blobs/${layer}`);
  await get(instance, `${repo}/blobs/${layer}`);
  await sleep(2500);
  await upstream.down();
  try {
    await get(instance, `${repo}/manifests/1`);
  } finally {
    await upstream.up();
  }
  return { cacheRequests: 4, upstreamRequests: 3, cacheBytes: m + 2 * l + m, upstreamBytes: m + c + l, pulls: 3, staleServes: 1 };
}
