/**
 * Interpreting the documents the upstream client reads: tag lists
 * (`/tags/list`) and referrers indexes (`/referrers/<digest>`) with their
 * `Link: <…>; rel="next"` pagination, and the media type of a manifest body.
 * Malformed documents are `protocol` UpstreamErrors.
 */
import { oci } from '@entrepot/registry-core';
import { headerValue, linkNext } from './response-headers';
import type { TransportResponse } from './http-transport';
import { protocolFailure } from './upstream-failure';

export interface TagList {
  /** Repository name as the upstream reports it. */
  name: string;
  tags: string[];
  /** Parameters of the next page (from the Link header), or null on the last page. */
  next: { last: string; n?: number } | null;
}

type ResponseMeta = Pick<TransportResponse, 'headers' | 'url' | 'host'>;

function parseJsonObject(body: Buffer, host: string, what: string): Record<string, unknown> {
  let doc: unknown;
  try {
    doc = JSON.parse(body.toString('utf8'));
  } catch {
    throw protocolFailure(host, `sent a ${what} that is not JSON`);
  }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) throw protocolFailure(host, `sent a ${what} that is not a JSON object`);
  return doc as Record<string, unknown>;
}

/** Parses a `/tags/list` answer (`tags: null` is read as no tags). */
export function parseTagList(body: Buffer, res: ResponseMeta, repo: string): TagList {
  const doc = parseJsonObject(body, res.host, 'tag list');
  const tags = doc.tags ?? [];
  if (!Array.isArray(tags) || !tags.every((t): t is string => typeof t === 'string')) {
    throw protocolFailure(res.host, 'sent a tag list whose tags are not strings');
  }
  const nextUrl = linkNext(headerValue(res.headers, 'link'), res.url);
  let next: TagList['next'] = null;
  const last = nextUrl?.searchParams.get('last');
  if (nextUrl && last) {
    const n = Number(nextUrl.searchParams.get('n'));
    next = Number.isSafeInteger(n) && n > 0 ? { last, n } : { last };
  }
  return { name: typeof doc.name === 'string' ? doc.name : repo, tags, next };
}

function isDescriptor(value: unknown): value is oci.ReferrerDescriptor {
  if (typeof value !== 'object' || value === null) return false;
  const d = value as Record<string, unknown>;
  return typeof d.mediaType === 'string' && typeof d.digest === 'string' && typeof d.size === 'number';
}

function toDescriptor(value: oci.ReferrerDescriptor): oci.ReferrerDescriptor {
  const d: oci.ReferrerDescriptor = { mediaType: value.mediaType, digest: value.digest, size: value.size };
  if (typeof value.artifactType === 'string') d.artifactType = value.artifactType;
  if (typeof value.annotations === 'object' && value.annotations !== null) d.annotations = value.annotations;
  return d;
}

/**
 * Parses one referrers index page. When `artifactType` was asked for but the
 * upstream did not say it applied that filter (`OCI-Filters-Applied`), the
 * descriptors are filtered here.
 */
export function parseReferrers(body: Buffer, res: ResponseMeta, artifactType: string | undefined): { manifests: oci.ReferrerDescriptor[]; next: URL | null } {
  const doc = parseJsonObject(body, res.host, 'referrers index');
  const manifests = doc.manifests ?? [];
  if (!Array.isArray(manifests) || !manifests.every(isDescriptor)) {
    throw protocolFailure(res.host, 'sent a referrers index with malformed descriptors');
  }
  let list = manifests.map(toDescriptor);
  if (artifactType !== undefined) {
    const applied = (headerValue(res.headers, 'oci-filters-applied') ?? '').split(',').map((s) => s.trim());
    if (!applied.includes('artifactType')) list = list.filter((d) => d.artifactType === artifactType);
  }
  return { manifests: list, next: linkNext(headerValue(res.headers, 'link'), res.url) };
}

/** Content types that say nothing about which manifest format a body is. */
const GENERIC_TYPES: ReadonlySet<string> = new Set(['', 'application/json', 'text/plain', 'application/octet-stream']);

/** True for a Content-Type that names a specific manifest format (not empty or generic JSON). */
export function isManifestMediaType(mediaType: string): boolean {
  return !GENERIC_TYPES.has(mediaType);
}

/**
 * The media type to store with a manifest: the upstream's Content-Type, or,
 * when that is missing or generic, the `mediaType` field of the body (and
 * failing that the shape of the body).
 */
export function manifestMediaType(contentType: string, body: Buffer): string {
  if (isManifestMediaType(contentType)) return contentType;
  try {
    const doc = JSON.parse(body.toString('utf8')) as Record<string, unknown>;
    if (typeof doc.mediaType === 'string' && doc.mediaType !== '') return doc.mediaType;
    if (Array.isArray(doc.manifests)) return oci.MediaType.OciIndex;
    if (doc.schemaVersion === 1) return oci.MediaType.DockerSchema1Signed;
  } catch {
    // Not JSON: keep what the upstream said.
  }
  return contentType || oci.MediaType.OciManifest;
}
