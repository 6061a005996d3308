import { join } from 'node:path';
import type { TestInstance } from '../../../../testing/entrepot-instance';
import { ADMIN_PASSWORD, ADMIN_USER } from '../../../../testing/entrepot-instance';
import { createOciImage, pushImage, skopeoCopyOut, type BuiltImage } from '../../../../testing/oci-images';
import type { UpstreamRegistry } from '../../../../testing/upstream-registry';

export const creds = `${ADMIN_USER}:${ADMIN_PASSWORD}`;

/** Settings that keep lifecycle tests deterministic: collection at once, jobs queued only when the test says. */
export function lifecycleOverrides(intervalS = 3600): Record<string, unknown> {
  return { gc: { grace_seconds: 0, interval_seconds: 3600 }, proxy_cache: { lifecycle_interval_s: intervalS } };
}

export async function pushTestImage(upstream: UpstreamRegistry, work: string, repo: string, tag: string, options: { layerSize?: number; seed?: string } = {}): Promise<BuiltImage & { pushed: string }> {
  const image = await createOciImage(join(work, `${repo.replace(/\//g, '_')}-${tag}-${options.seed ?? 'r'}`), { tag, layerCount: 1, layerSize: options.layerSize ?? 200_000, seed: options.seed });
  return { ...image, pushed: await pushImage(image.layoutDir, tag, upstream.ref(repo, tag), { creds: upstream.creds }) };
}

export async function pull(instance: TestInstance, work: string, ref: string): Promise<string> {
  return skopeoCopyOut(`${instance.host}/${ref}`, join(work, `out-${Math.random().toString(36).slice(2)}`), { creds });
}

/** Queues a lifecycle job for an organization and waits for the queue to be idle. */
export async function runJob(instance: TestInstance, job: string, org: string): Promise<void> {
  const services = instance.entrepot.services;
  const row = await services.repositories.findOrg(org);
  if (!row) throw new Error(`no organization ${org}`);
  await services.queue.enqueue(job, { orgId: row.id }, { jobId: `${job}|${row.id}` });
  await services.queue.drain(60_000);
}

export async function tagsOf(instance: TestInstance, repo: string): Promise<string[]> {
  const res = await instance.api('GET', `/repository/${repo}/tag/`);
  if (res.status !== 200) return [];
  return (res.body as { tags: Array<{ name: string }> }).tags.map((t) => t.name).sort();
}

export async function jobRuns(instance: TestInstance, org: string, job?: string): Promise<Array<{ job: string; state: string; duration_ms: number; started: string; summary: Record<string, unknown> }>> {
  const res = await instance.api('GET', `/organization/${org}/proxycache/jobs${job ? `?job=${job}` : ''}`);
  if (res.status !== 200) throw new Error(`jobs view: ${res.status} ${JSON.stringify(res.body)}`);
  return (res.body as { runs: Array<{ job: string; state: string; duration_ms: number; started: string; summary: Record<string, unknown> }> }).runs;
}
