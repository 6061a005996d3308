/**
 * What the infrastructure fault tests share: images pushed straight to a real
 * upstream registry over HTTP (no skopeo: the soak pushes new images while it
 * runs), a client that pulls an image through Entrepot and classifies every
 * answer (ok / clean failure / corrupt), and checks of what Entrepot stored.
 */
import { createHash, randomBytes } from 'node:crypto';
import { describeError, readBody } from '../../../../testing/read-body';
import { sleep } from '../../../../testing/tools';
import { createReadStream } from 'node:fs';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { Knex } from 'knex';

export const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
const OCI_CONFIG = 'application/vnd.oci.image.config.v1+json';
const OCI_LAYER = 'application/vnd.oci.image.layer.v1.tar+gzip';
const MANIFEST_ACCEPT = [OCI_MANIFEST, 'application/vnd.oci.image.index.v1+json', 'application/vnd.docker.distribution.manifest.v2+json'].join(', ');

export const KiB = 1024;
export const MiB = 1024 * 1024;

export function sha256(data: Buffer | string): string {
  return `sha256:${createHash('sha256').update(data).digest('hex')}`;
}

export interface BlobRef {
  digest: string;
  size: number;
}

/** An image as pushed to the upstream: what a correct pull must return, byte for byte. */
export interface PushedImage {
  repo: string;
  tag: string;
  manifestDigest: string;
  manifest: Buffer;
  /** Config first, then the layers. */
  blobs: BlobRef[];
}

async function expectStatus(res: Response, want: number, what: string): Promise<void> {
  if (res.status !== want) throw new Error(`${what}: HTTP ${res.status} ${(await res.text()).slice(0, 300)}`);
}

/** Monolithic upload of one blob to a Distribution registry (POST, then PUT with the digest). */
async function pushBlob(upstreamUrl: string, repo: string, data: Buffer): Promise<BlobRef> {
  const digest = sha256(data);
  const start = await fetch(`${upstreamUrl}/v2/${repo}/blobs/uploads/`, { method: 'POST' });
  await expectStatus(start, 202, `starting an upload to ${repo}`);
  const location = new URL(start.headers.get('location') ?? '', upstreamUrl);
  location.searchParams.set('digest', digest);
  const put = await fetch(location, { method: 'PUT', headers: { 'content-type': 'application/octet-stream' }, body: data });
  await expectStatus(put, 201, `uploading ${digest} to ${repo}`);
  return { digest, size: data.length };
}

/**
 * Pushes an OCI image with random (incompressible) layers of the given sizes to
 * the upstream as `repo:tag`. Layers are random bytes, not real tarballs: a
 * registry never looks inside them.
 */
export async function pushRandomImage(upstreamUrl: string, repo: string, tag: string, layerSizes: number[]): Promise<PushedImage> {
  const layers: BlobRef[] = [];
  for (const size of layerSizes) layers.push(await pushBlob(upstreamUrl, repo, randomBytes(size)));
  const config = Buffer.from(
    JSON.stringify({
      architecture: 'amd64',
      os: 'linux',
      config: { Labels: { 'entrepot.test': `${repo}:${tag}` } },
      rootfs: { type: 'layers', diff_ids: layers.map(() => sha256(randomBytes(16))) },
    }),
  );
  const configRef = await pushBlob(upstreamUrl, repo, config);
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: OCI_MANIFEST,
      config: { mediaType: OCI_CONFIG, ...configRef },
      layers: layers.map((l) => ({ mediaType: OCI_LAYER, ...l })),
    }),
  );
  const put = await fetch(`${upstreamUrl}/v2/${repo}/manifests/${tag}`, { method: 'PUT', headers: { 'content-type': OCI_MANIFEST }, body: manifest });
  await expectStatus(put, 201, `pushing ${repo}:${tag}`);
  return { repo, tag, manifestDigest: sha256(manifest), manifest, blobs: [configRef, ...layers] };
}

/** How one response ended, from the client's side. */
export type Verdict =
  /** 200 with exactly the expected bytes. */
  | 'ok'
  /** An error status (4xx/5xx) with a proper response. */
  | 'error'
  /** 200 whose body was cut with a transport error: the client knows it failed. */
  | 'cut'
  /** No response at all (connection refused or reset before the status line). */
  | 'no-response'
  /** 200 whose body ended cleanly but is not the expected content: must never happen. */
  | 'corrupt';

export interface Fetched {
  url: string;
  status: number;
  received: number;
  digest: string;
  body?: Buffer;
  bodyError?: string;
  /** The OCI error code of an error answer, when it had the envelope. */
  errorCode?: string;
  verdict: Verdict;
}


/**
 * GETs `url`, reading the whole body, and judges it against `expected` (digest
 * and size). A 200 that ends cleanly with other bytes is `corrupt`.
 */
export async function getChecked(
  url: string,
  expected: BlobRef,
  init: { headers?: Record<string, string>; keepBody?: boolean; timeoutMs?: number; onBytes?: (received: number) => void } = {},
): Promise<Fetched> {
  let res: Response;
  try {
    res = await fetch(url, { headers: init.headers, signal: AbortSignal.timeout(init.timeoutMs ?? 120_000) });
  } catch (err) {
    return { url, status: 0, received: 0, digest: '', bodyError: describeError(err), verdict: 'no-response' };
  }
  const read = await readBody(res, { keep: init.keepBody, onBytes: init.onBytes });
  const { received, digest, bodyError } = read;
  const out: Fetched = { url, status: res.status, received, digest, verdict: 'ok' };
  if (bodyError !== undefined) out.bodyError = bodyError;
  if (init.keepBody) out.body = read.body;
  if (read.errors?.[0]) out.errorCode = read.errors[0].code;
  if (res.status !== 200) out.verdict = bodyError !== undefined && res.status < 400 ? 'cut' : 'error';
  else if (bodyError !== undefined) out.verdict = 'cut';
  else if (received !== expected.size || digest !== expected.digest) out.verdict = 'corrupt';
  return out;
}

export interface PullResult {
  image: PushedImage;
  /** Manifest first, then config and layers. */
  responses: Fetched[];
  /** Every response was `ok`. */
  ok: boolean;
  corrupt: Fetched[];
}

export interface PullOptions {
  /** `Authorization` header value, if any. */
  auth?: string;
  /** Name of the image through Entrepot, e.g. `hub/library/app` (default `<org>/<repo>`). */
  name: string;
  /** Stop after the manifest when it failed (a client cannot know the blobs then); default true. */
  stopOnManifestFailure?: boolean;
  timeoutMs?: number;
}

/**
 * Pulls `image` through Entrepot like a client: the manifest by tag, then its
 * config and layers concurrently, checking every body against what was pushed.
 */
export async function pullImage(baseUrl: string, image: PushedImage, options: PullOptions): Promise<PullResult> {
  const headers: Record<string, string> = { accept: MANIFEST_ACCEPT };
  if (options.auth) headers.authorization = options.auth;
  const manifest = await getChecked(
    `${baseUrl}/v2/${options.name}/manifests/${image.tag}`,
    { digest: image.manifestDigest, size: image.manifest.length },
    { headers, timeoutMs: options.timeoutMs },
  );
  const responses = [manifest];
  if (manifest.verdict === 'ok' || options.stopOnManifestFailure === false) {
    const blobHeaders: Record<string, string> = options.auth ? { authorization: options.auth } : {};
    responses.push(
      ...(await Promise.all(
        image.blobs.map((b) => getChecked(`${baseUrl}/v2/${options.name}/blobs/${b.digest}`, b, { headers: blobHeaders, timeoutMs: options.timeoutMs })),
      )),
    );
  }
  const corrupt = responses.filter((r) => r.verdict === 'corrupt');
  return { image, responses, ok: responses.length === image.blobs.length + 1 && responses.every((r) => r.verdict === 'ok'), corrupt };
}

/** Counts verdicts and statuses over many pulls, and keeps the details of the bad ones. */
export class PullTally {
  readonly verdicts: Record<Verdict, number> = { ok: 0, error: 0, cut: 0, 'no-response': 0, corrupt: 0 };
  readonly statuses: Record<string, number> = {};
  readonly corrupt: Fetched[] = [];
  pullsOk = 0;
  pullsFailed = 0;

  add(pull: PullResult): void {
    if (pull.ok) this.pullsOk++;
    else this.pullsFailed++;
    for (const r of pull.responses) {
      this.verdicts[r.verdict]++;
      this.statuses[String(r.status)] = (this.statuses[String(r.status)] ?? 0) + 1;
      if (r.verdict === 'corrupt') this.corrupt.push(r);
    }
  }

  summary(): string {
    return `pulls ok ${this.pullsOk}, failed ${this.pullsFailed}; responses ${JSON.stringify(this.verdicts)}; statuses ${JSON.stringify(this.statuses)}`;
  }
}

async function hashFile(path: string): Promise<{ digest: string; size: number }> {
  const hash = createHash('sha256');
  let size = 0;
  for await (const chunk of createReadStream(path, { highWaterMark: MiB }) as AsyncIterable<Buffer>) {
    hash.update(chunk);
    size += chunk.length;
  }
  return { digest: `sha256:${hash.digest('hex')}`, size };
}

export interface StoredBlobCheck {
  /** Every blob file in the filesystem store. */
  stored: string[];
  /** Files whose content does not hash to the digest they are stored under. */
  mismatched: Array<{ digest: string; actual: string; size: number }>;
}

/** Re-hashes every blob of the filesystem store under `<dataDir>/storage/blobs`. */
export async function checkFsBlobStore(dataDir: string): Promise<StoredBlobCheck> {
  const root = join(dataDir, 'storage', 'blobs');
  const result: StoredBlobCheck = { stored: [], mismatched: [] };
  for (const algo of await readdir(root).catch(() => [] as string[])) {
    for (const shard of await readdir(join(root, algo)).catch(() => [] as string[])) {
      for (const hex of await readdir(join(root, algo, shard)).catch(() => [] as string[])) {
        const digest = `${algo}:${hex}`;
        result.stored.push(digest);
        const actual = await hashFile(join(root, algo, shard, hex));
        if (actual.digest !== digest) result.mismatched.push({ digest, actual: actual.digest, size: actual.size });
      }
    }
  }
  return result;
}

/** Files in a directory (empty when it does not exist). */
export async function entriesOf(dir: string): Promise<string[]> {
  return readdir(dir).catch(() => [] as string[]);
}

export interface DbReferenceCheck {
  manifests: number;
  tags: number;
  blobRows: number;
  /** Manifests (by digest) the database lists but whose bytes are not stored. */
  manifestsWithoutBytes: string[];
  /** Rows of `blobs` / `repo_blobs` (stored content, links of repositories to it) whose bytes are not stored. */
  blobsWithoutBytes: string[];
}

/**
 * What the database says is stored, against what the blob store has: no row
 * may point at content that is not there (a dangling manifest or link).
 * `isStored` answers for the store.
 */
export async function checkDbReferences(db: Knex, isStored: (digest: string) => Promise<boolean>): Promise<DbReferenceCheck> {
  const manifests = (await db('manifests').distinct('digest')) as Array<{ digest: string }>;
  const [tags] = (await db('tags').count({ n: '*' })) as Array<{ n: number | string }>;
  const blobRows = (await db('blobs').select('digest')) as Array<{ digest: string }>;
  const links = (await db('repo_blobs').distinct('digest')) as Array<{ digest: string }>;
  const out: DbReferenceCheck = { manifests: manifests.length, tags: Number(tags.n), blobRows: blobRows.length, manifestsWithoutBytes: [], blobsWithoutBytes: [] };
  for (const m of manifests) if (!(await isStored(m.digest))) out.manifestsWithoutBytes.push(m.digest);
  for (const digest of new Set([...blobRows, ...links].map((r) => r.digest))) {
    if (!(await isStored(digest))) out.blobsWithoutBytes.push(digest);
  }
  return out;
}

/** Counts an organization's `pull_repo` audit entries straight from the database. */
export async function countPullEntries(db: Knex, orgName: string): Promise<number> {
  const [row] = (await db('audit_logs as a')
    .join('organizations as o', 'o.id', 'a.org_id')
    .where({ 'o.name': orgName, 'a.kind': 'pull_repo' })
    .count({ n: '*' })) as Array<{ n: number | string }>;
  return Number(row.n);
}

/** Polls `check` until it is true or `timeoutMs` passes; returns the last answer. */
export async function waitUntil(check: () => Promise<boolean> | boolean, timeoutMs: number, intervalMs = 100): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return true;
    if (Date.now() >= deadline) return false;
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

/** A service a test can crash and start again (the private MariaDB and Redis servers). */
export interface RestartableService {
  down(opts?: { crash?: boolean }): Promise<void>;
  up(): Promise<void>;
}

export interface RestartEvent {
  at: number;
  what: string;
}

/**
 * The outage both restart tests put a service through while clients pull: a
 * crash (kill -9) for 3 s, then a clean stop for 2 s. Returns what happened when.
 */
export async function crashThenStop(service: RestartableService): Promise<RestartEvent[]> {
  const events: RestartEvent[] = [];
  await sleep(1500);
  events.push({ at: Date.now(), what: 'crash' });
  await service.down({ crash: true });
  await sleep(3000);
  await service.up();
  events.push({ at: Date.now(), what: 'up' });
  await sleep(3000);
  events.push({ at: Date.now(), what: 'clean stop' });
  await service.down();
  await sleep(2000);
  await service.up();
  events.push({ at: Date.now(), what: 'up' });
  return events;
}

/** Events as offsets from the first, for reports. */
export function relativeEvents(events: RestartEvent[]): string {
  return JSON.stringify(events.map((e) => ({ ...e, at: e.at - events[0].at })));
}

export interface TimedPull {
  client: number;
  startedAt: number;
  endedAt: number;
  result: PullResult;
}

/**
 * Runs `clients` concurrent pull loops until `shouldStop()` (checked before each
 * pull) or `maxRounds` pulls per client; `next` picks each pull's image (null: skip a beat).
 */
export async function runClients(
  clients: number,
  next: (client: number, round: number) => PushedImage | null,
  pull: (image: PushedImage, client: number) => Promise<PullResult>,
  shouldStop: () => boolean,
  maxRounds = 100_000,
): Promise<TimedPull[]> {
  const log: TimedPull[] = [];
  await Promise.all(
    Array.from({ length: clients }, async (_, client) => {
      for (let round = 0; round < maxRounds && !shouldStop(); round++) {
        const image = next(client, round);
        if (!image) {
          await new Promise((r) => setTimeout(r, 50));
          continue;
        }
        const startedAt = Date.now();
        const result = await pull(image, client);
        log.push({ client, startedAt, endedAt: Date.now(), result });
      }
    }),
  );
  return log;
}

/** Creates organization `name` and makes it a cache of `upstreamUrl` (as docker.io) through the API. */
export async function createCacheOrg(
  api: (method: string, path: string, body?: unknown) => Promise<{ status: number; body: unknown }>,
  name: string,
  upstreamUrl: string,
  extra: Record<string, unknown> = {},
): Promise<void> {
  const org = await api('POST', '/organization/', { name });
  if (org.status !== 201) throw new Error(`creating org ${name}: ${org.status} ${JSON.stringify(org.body)}`);
  const res = await api('POST', `/organization/${name}/proxycache`, { upstream_registry: 'docker.io', upstream_endpoint: upstreamUrl, insecure: true, ...extra });
  if (res.status !== 201) throw new Error(`configuring cache ${name}: ${res.status} ${JSON.stringify(res.body)}`);
}

/** Prints one line of findings into the test output (numbers for the report; not assertions). */
export function report(test: string, line: string): void {
  process.stderr.write(`[infra-faults] ${test}: ${line}\n`);
}

/**
 * knex prints pool errors with console.log while a database is down (hundreds
 * of identical lines); they are expected here, so they are dropped from the
 * test output. Returns a function that restores console.log.
 */
export function quietKnexPoolErrors(): () => void {
  const original = console.log;
  console.log = (...args: unknown[]) => {
    if (typeof args[0] === 'string' && /^(Acquire connection error|Connection Error)/.test(args[0])) return;
    original(...args);
  };
  return () => {
    console.log = original;
  };
}
