/**
 * A small Docker-token-flow client over fetch, speaking to Entrepot exactly as
 * mirror clients do: the request first, then on 401 a token from the realm of
 * the `WWW-Authenticate: Bearer` challenge for the scope it names, then the
 * request again with the token.
 */
import { createHash } from 'node:crypto';

export const MANIFEST_ACCEPT = [
  'application/vnd.oci.image.index.v1+json',
  'application/vnd.oci.image.manifest.v1+json',
  'application/vnd.docker.distribution.manifest.list.v2+json',
  'application/vnd.docker.distribution.manifest.v2+json',
].join(', ');

export interface Challenge {
  realm: string;
  service?: string;
  scope?: string;
}

/** Parses `Bearer realm="…",service="…",scope="…"`; undefined for other schemes. */
export function parseBearerChallenge(header: string | null): Challenge | undefined {
  if (!header || !/^bearer\s/i.test(header)) return undefined;
  const params: Record<string, string> = {};
  for (const m of header.slice(7).matchAll(/(\w+)="([^"]*)"/g)) params[m[1]] = m[2];
  return params.realm ? { realm: params.realm, service: params.service, scope: params.scope } : undefined;
}

export interface FlowOptions {
  method?: 'GET' | 'HEAD';
  /** `user:password` sent to the token realm (Basic), as clients do with configured credentials. */
  creds?: string;
  accept?: string;
  /** Token scope to ask for instead of the challenge's (clients compute it from the reference). */
  scope?: string;
  userAgent?: string;
}

export interface FlowResult {
  status: number;
  headers: Headers;
  body: Buffer;
  /** The challenge of the first 401, if there was one. */
  challenge?: Challenge;
  /** The token used for the final request, if one was fetched. */
  token?: string;
  /** `{errors:[{code,message}]}` of an error response, when JSON. */
  errors?: Array<{ code: string; message: string }>;
}

async function fetchToken(challenge: Challenge, scope: string | undefined, creds: string | undefined): Promise<{ status: number; token?: string }> {
  const url = new URL(challenge.realm);
  if (challenge.service) url.searchParams.set('service', challenge.service);
  if (scope) url.searchParams.set('scope', scope);
  const headers: Record<string, string> = {};
  if (creds) headers.authorization = `Basic ${Buffer.from(creds).toString('base64')}`;
  const res = await fetch(url, { headers });
  if (res.status !== 200) return { status: res.status };
  const body = (await res.json()) as { token?: string; access_token?: string };
  return { status: 200, token: body.token ?? body.access_token };
}

async function toResult(res: Response, extra: Partial<FlowResult>): Promise<FlowResult> {
  const body = Buffer.from(await res.arrayBuffer());
  let errors: FlowResult['errors'];
  if (res.status >= 400 && body.length > 0) {
    try {
      errors = (JSON.parse(body.toString('utf8')) as { errors?: FlowResult['errors'] }).errors;
    } catch {
      // not JSON
    }
  }
  return { status: res.status, headers: res.headers, body, errors, ...extra };
}

/** One registry request with the Docker token flow; `url` is the full URL (with `?ns=` when wanted). */
export async function registryRequest(url: string, opts: FlowOptions = {}): Promise<FlowResult> {
  const headers: Record<string, string> = { 'user-agent': opts.userAgent ?? 'entrepot-mirroring-test' };
  if (opts.accept) headers.accept = opts.accept;
  const method = opts.method ?? 'GET';
  const first = await fetch(url, { method, headers, redirect: 'follow' });
  if (first.status !== 401) return toResult(first, {});
  const challenge = parseBearerChallenge(first.headers.get('www-authenticate'));
  await first.arrayBuffer();
  if (!challenge) return toResult(first, {});
  const token = await fetchToken(challenge, opts.scope ?? challenge.scope, opts.creds);
  if (!token.token) return { status: token.status, headers: first.headers, body: Buffer.alloc(0), challenge };
  const second = await fetch(url, { method, headers: { ...headers, authorization: `Bearer ${token.token}` }, redirect: 'follow' });
  return toResult(second, { challenge, token: token.token });
}

/** Like registryRequest, but with a token the caller already holds. */
export async function requestWithToken(url: string, token: string, opts: Pick<FlowOptions, 'method' | 'accept'> = {}): Promise<FlowResult> {
  const headers: Record<string, string> = { authorization: `Bearer ${token}` };
  if (opts.accept) headers.accept = opts.accept;
  return toResult(await fetch(url, { method: opts.method ?? 'GET', headers }), { token });
}

export function sha256(body: Buffer): string {
  return `sha256:${createHash('sha256').update(body).digest('hex')}`;
}

export interface PulledImage {
  manifestDigest: string;
  /** Digests of the config and layers fetched (all verified). */
  blobs: string[];
}

/**
 * Pulls a single-platform image the way a mirror client does: manifest by tag,
 * then config and layers by digest, every response checked against its digest.
 * `base` is e.g. `http://127.0.0.1:P/v2/library/app`; `query` e.g. `?ns=docker.io`.
 */
export async function pullImage(base: string, tag: string, query: string, opts: FlowOptions = {}): Promise<PulledImage> {
  const manifest = await registryRequest(`${base}/manifests/${tag}${query}`, { ...opts, accept: MANIFEST_ACCEPT });
  if (manifest.status !== 200) throw new Error(`manifest ${base}:${tag}${query}: ${manifest.status} ${manifest.body.toString('utf8').slice(0, 300)}`);
  const manifestDigest = sha256(manifest.body);
  const parsed = JSON.parse(manifest.body.toString('utf8')) as { config: { digest: string }; layers: Array<{ digest: string }> };
  const digests = [parsed.config.digest, ...parsed.layers.map((l) => l.digest)];
  for (const digest of digests) {
    const blob = manifest.token
      ? await requestWithToken(`${base}/blobs/${digest}${query}`, manifest.token)
      : await registryRequest(`${base}/blobs/${digest}${query}`, opts);
    if (blob.status !== 200) throw new Error(`blob ${digest}: ${blob.status}`);
    if (sha256(blob.body) !== digest) throw new Error(`blob ${digest}: body hashes to ${sha256(blob.body)}`);
  }
  return { manifestDigest, blobs: digests };
}
