import { RegistryError } from '../errors/registry-error';
import { Digest, tryParseDigest } from './digest';
import { INDEX_MEDIA_TYPES, MANIFEST_MEDIA_TYPES, MediaType } from './media-types';

export interface Descriptor {
  mediaType: string;
  digest: Digest;
  size: number;
  artifactType?: string;
  annotations?: Record<string, string>;
  platform?: { os?: string; architecture?: string; variant?: string };
  /** External locations of non-distributable layers. */
  urls?: string[];
}

/**
 * Layers a registry is not expected to hold: non-distributable (foreign) layers
 * that clients fetch from their `urls`.
 */
export function isNonDistributable(descriptor: Descriptor): boolean {
  return /nondistributable|foreign/.test(descriptor.mediaType) || (descriptor.urls?.length ?? 0) > 0;
}

/** What Entrepot needs to know about a manifest; the bytes themselves are stored untouched. */
export interface ParsedManifest {
  mediaType: string;
  isIndex: boolean;
  /** config and layers of an image manifest */
  blobs: Descriptor[];
  /** child manifests of an index */
  manifests: Descriptor[];
  subject?: Descriptor;
  /** artifactType, or the config media type as distribution-spec's referrers API defines */
  artifactType?: string;
  annotations?: Record<string, string>;
}

type Json = Record<string, unknown>;

function isObject(value: unknown): value is Json {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function descriptor(value: unknown, where: string): Descriptor {
  if (!isObject(value)) throw invalid(`${where} is not an object`);
  const digest = typeof value.digest === 'string' ? tryParseDigest(value.digest) : null;
  if (!digest) throw invalid(`${where}.digest is missing or invalid`);
  if (typeof value.size !== 'number' || !Number.isSafeInteger(value.size) || value.size < 0) {
    throw invalid(`${where}.size is missing or invalid`);
  }
  if (typeof value.mediaType !== 'string' || value.mediaType.length === 0) {
    throw invalid(`${where}.mediaType is missing`);
  }
  const result: Descriptor = { mediaType: value.mediaType, digest, size: value.size };
  if (typeof value.artifactType === 'string') result.artifactType = value.artifactType;
  if (isObject(value.annotations)) result.annotations = value.annotations as Record<string, string>;
  if (isObject(value.platform)) result.platform = value.platform as Descriptor['platform'];
  if (Array.isArray(value.urls)) result.urls = value.urls.filter((u): u is string => typeof u === 'string');
  return result;
}

function invalid(message: string): RegistryError {
  return new RegistryError('MANIFEST_INVALID', `manifest invalid: ${message}`);
}

/**
 * Parses and validates manifest bytes. `declaredType` is the Content-Type of a push
 * (or the upstream's response); it must agree with the body's mediaType when that is set.
 * Throws MANIFEST_INVALID on malformed content.
 */
export function parseManifest(body: Buffer, declaredType?: string): ParsedManifest {
  let doc: unknown;
  try {
    doc = JSON.parse(body.toString('utf8'));
  } catch {
    throw invalid('body is not valid JSON');
  }
  if (!isObject(doc)) throw invalid('body is not a JSON object');
  const declared = declaredType?.split(';')[0].trim();
  const bodyType = typeof doc.mediaType === 'string' ? doc.mediaType : undefined;
  if (bodyType && declared && MANIFEST_MEDIA_TYPES.has(declared) && bodyType !== declared) {
    throw invalid(`Content-Type ${declared} does not match mediaType ${bodyType}`);
  }
  let mediaType = bodyType ?? (declared && MANIFEST_MEDIA_TYPES.has(declared) ? declared : undefined);
  if (!mediaType) mediaType = Array.isArray(doc.manifests) ? MediaType.OciIndex : MediaType.OciManifest;
  if (!MANIFEST_MEDIA_TYPES.has(mediaType)) throw invalid(`unsupported manifest media type ${mediaType}`);
  if (doc.schemaVersion !== 2) throw invalid('schemaVersion must be 2');

  const isIndex = INDEX_MEDIA_TYPES.has(mediaType);
  const parsed: ParsedManifest = { mediaType, isIndex, blobs: [], manifests: [] };
  if (isIndex) {
    if (!Array.isArray(doc.manifests)) throw invalid('manifests must be an array');
    parsed.manifests = doc.manifests.map((m, i) => descriptor(m, `manifests[${i}]`));
  } else {
    const config = descriptor(doc.config, 'config');
    if (!Array.isArray(doc.layers)) throw invalid('layers must be an array');
    parsed.blobs = [config, ...doc.layers.map((l, i) => descriptor(l, `layers[${i}]`))];
  }
  if (doc.subject !== undefined) parsed.subject = descriptor(doc.subject, 'subject');
  if (typeof doc.artifactType === 'string') parsed.artifactType = doc.artifactType;
  else if (!isIndex && parsed.blobs[0]) parsed.artifactType = parsed.blobs[0].mediaType;
  if (isObject(doc.annotations)) parsed.annotations = doc.annotations as Record<string, string>;
  return parsed;
}

/** A referrer as the OCI referrers API lists it (an image index entry). */
export interface ReferrerDescriptor {
  mediaType: string;
  digest: string;
  size: number;
  artifactType?: string;
  annotations?: Record<string, string>;
}
