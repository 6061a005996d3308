import { type Digest, oci } from '@entrepot/registry-core';
import { verifiesWith, type SignatureKey } from './cosign-keys';

/** The layer annotation in which cosign keeps the base64 signature of the layer's payload. */
export const SIGNATURE_ANNOTATION = 'dev.cosignproject.cosign/signature';
/** The media type of cosign's simple-signing payload layers. */
export const SIMPLE_SIGNING_TYPE = 'application/vnd.dev.cosign.simplesigning.v1+json';
/** The artifact type of cosign signatures stored as OCI 1.1 referrers. */
export const COSIGN_SIGNATURE_ARTIFACT_TYPE = 'application/vnd.dev.cosign.artifact.sig.v1+json';
/** The `critical.type` of a container image signature payload. */
const PAYLOAD_TYPE = 'cosign container image signature';
/** Payloads are a few hundred bytes; anything much larger is not one. */
export const MAX_PAYLOAD_BYTES = 64 * 1024;

/** A layer of a signature manifest: the payload's digest and the signature over it. */
export interface SignedPayload {
  payloadDigest: Digest;
  signature: Buffer;
}

/**
 * The signed payloads of a cosign signature manifest (tag `sha256-<hex>.sig`
 * or a referrer of artifact type COSIGN_SIGNATURE_ARTIFACT_TYPE): one per
 * layer that carries a signature annotation. Anything else yields nothing.
 */
export function signedPayloads(manifestBody: Buffer, mediaType: string): SignedPayload[] {
  let parsed;
  try {
    parsed = oci.parseManifest(manifestBody, mediaType);
  } catch {
    return [];
  }
  const found: SignedPayload[] = [];
  for (const layer of parsed.blobs) {
    const b64 = layer.annotations?.[SIGNATURE_ANNOTATION];
    if (layer.mediaType !== SIMPLE_SIGNING_TYPE || typeof b64 !== 'string' || layer.size > MAX_PAYLOAD_BYTES) continue;
    found.push({ payloadDigest: layer.digest, signature: Buffer.from(b64, 'base64') });
  }
  return found;
}

/** The manifest digest a simple-signing payload vouches for, or null when it is not a container image signature. */
export function signedManifestDigest(payload: Buffer): string | null {
  try {
    const doc = JSON.parse(payload.toString('utf8')) as { critical?: { type?: unknown; image?: { 'docker-manifest-digest'?: unknown } } };
    const digest = doc.critical?.image?.['docker-manifest-digest'];
    if (doc.critical?.type !== PAYLOAD_TYPE || typeof digest !== 'string') return null;
    return digest;
  } catch {
    return null;
  }
}

/**
 * The key that signed `payload` for `manifest`, or null: the payload must name
 * the manifest's digest, and the signature must verify with one of `keys`
 * (no transparency log is consulted).
 */
export function verifyPayload(payload: Buffer, signature: Buffer, manifest: Digest, keys: readonly SignatureKey[]): SignatureKey | null {
  if (signedManifestDigest(payload) !== manifest) return null;
  return keys.find((key) => verifiesWith(key, payload, signature)) ?? null;
}
