/** Helpers shared by the /api/v1 tests: registry pushes and pulls over /v2, raw requests, log polling. */
import { createHash } from 'node:crypto';
import { request } from 'node:http';
import { basicAuth, type TestInstance } from '../../../../testing/entrepot-instance';

export { basicAuth };

export interface Pushed {
  digest: string;
  /** Sum of config and layer sizes. */
  size: number;
}

function sha256(data: Buffer): string {
  return `sha256:${createHash('sha256').update(data).digest('hex')}`;
}

/** Pushes one small image (config + one layer + manifest) to `<name>:<tag>` over /v2 with `auth`. */
export async function pushImage(inst: TestInstance, name: string, tag: string, auth: string, seed = name): Promise<Pushed> {
  const layer = Buffer.from(`layer of ${seed} ${tag} ${Math.random()}`);
  const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', seed, tag }));
  for (const blob of [layer, config]) {
    const res = await fetch(`${inst.url}/v2/${name}/blobs/uploads/?digest=${sha256(blob)}`, {
      method: 'POST',
      headers: { authorization: auth, 'content-type': 'application/octet-stream', 'content-length': String(blob.length) },
      body: blob,
    });
    if (res.status !== 201) throw new Error(`blob push to ${name} failed: ${res.status} ${await res.text()}`);
  }
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: sha256(config), size: config.length },
      layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: sha256(layer), size: layer.length }],
    }),
  );
  const res = await fetch(`${inst.url}/v2/${name}/manifests/${tag}`, {
    method: 'PUT',
    headers: { authorization: auth, 'content-type': 'application/vnd.oci.image.manifest.v1+json' },
    body: manifest,
  });
  if (res.status !== 201) throw new Error(`manifest push to ${name} failed: ${res.status} ${await res.text()}`);
  return { digest: sha256(manifest), size: layer.length + config.length };
}

/** Tries to push a blob (the first step of a push); returns the HTTP status. */
export async function tryPushBlob(inst: TestInstance, name: string, auth?: string): Promise<number> {
  const blob = Buffer.from(`probe ${Math.random()}`);
  const res = await fetch(`${inst.url}/v2/${name}/blobs/uploads/?digest=${sha256(blob)}`, {
    method: 'POST',
    headers: { ...(auth ? { authorization: auth } : {}), 'content-type': 'application/octet-stream', 'content-length': String(blob.length) },
    body: blob,
  });
  await res.arrayBuffer();
  return res.status;
}

/** GET of a manifest; returns the status (the body is drained). */
export async function pullManifest(inst: TestInstance, name: string, ref: string, auth?: string): Promise<number> {
  const res = await fetch(`${inst.url}/v2/${name}/manifests/${ref}`, {
    headers: { accept: 'application/vnd.oci.image.manifest.v1+json', ...(auth ? { authorization: auth } : {}) },
  });
  await res.arrayBuffer();
  return res.status;
}

/** The Docker token flow: exchanges Basic credentials (or none) for a bearer token for `scope`. */
export async function registryToken(inst: TestInstance, scope: string, auth?: string): Promise<{ status: number; token?: string }> {
  const res = await fetch(`${inst.url}/v2/auth?service=${encodeURIComponent(inst.host)}&scope=${encodeURIComponent(scope)}`, { headers: auth ? { authorization: auth } : {} });
  const body = (await res.json()) as { token?: string };
  return { status: res.status, token: body.token };
}

export interface RawResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
  json: unknown;
}

/** A request whose path is sent byte for byte (fetch would normalise `..` and `%2e%2e`). */
export function rawRequest(inst: TestInstance, method: string, path: string, body?: string, auth: string = inst.adminAuth, contentType = 'application/json'): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const req = request(
      { host: '127.0.0.1', port: inst.port, method, path, headers: { authorization: auth, ...(body === undefined ? {} : { 'content-type': contentType, 'content-length': Buffer.byteLength(body) }) } },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let json: unknown = null;
          try {
            json = text ? JSON.parse(text) : null;
          } catch {
            json = null;
          }
          resolve({ status: res.statusCode ?? 0, headers: res.headers, text, json });
        });
      },
    );
    req.on('error', reject);
    if (body !== undefined) req.write(body);
    req.end();
  });
}

export interface LogEntry {
  kind: string;
  metadata: Record<string, unknown>;
  performer: { kind: string; name: string };
  ip: string | null;
  datetime: string;
  repository: string | null;
}

/** Polls an organization's logs until `done` holds (audit writes are queued), or fails after a few seconds. */
export async function waitForLogs(inst: TestInstance, org: string, done: (logs: LogEntry[]) => boolean, query = ''): Promise<LogEntry[]> {
  let last: LogEntry[] = [];
  for (let i = 0; i < 100; i++) {
    const res = await inst.api('GET', `/organization/${org}/logs?limit=1000${query}`);
    if (res.status !== 200) throw new Error(`logs: ${res.status} ${JSON.stringify(res.body)}`);
    last = (res.body as { logs: LogEntry[] }).logs;
    if (done(last)) return last;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`logs of ${org} never satisfied the condition; last: ${JSON.stringify(last.map((l) => l.kind))}`);
}

export async function createUser(inst: TestInstance, username: string, password = `${username}-password`): Promise<string> {
  const res = await inst.api('POST', '/superuser/users/', { username, password });
  if (res.status !== 201) throw new Error(`create user ${username}: ${res.status} ${JSON.stringify(res.body)}`);
  return basicAuth(username, password);
}

export async function createOrg(inst: TestInstance, name: string, auth?: string): Promise<void> {
  const res = await inst.api('POST', '/organization/', { name }, auth);
  if (res.status !== 201) throw new Error(`create org ${name}: ${res.status} ${JSON.stringify(res.body)}`);
}

/** Creates a robot; returns its full name, token and Basic header. */
export async function createRobot(inst: TestInstance, org: string, short: string): Promise<{ name: string; token: string; auth: string }> {
  const res = await inst.api('PUT', `/organization/${org}/robots/${short}`, { description: `robot ${short}` });
  if (res.status !== 201) throw new Error(`create robot ${org}+${short}: ${res.status} ${JSON.stringify(res.body)}`);
  const body = res.body as { name: string; token: string };
  return { name: body.name, token: body.token, auth: basicAuth(body.name, body.token) };
}
