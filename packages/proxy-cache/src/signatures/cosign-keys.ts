import { createHash, createPublicKey, verify, type KeyObject } from 'node:crypto';
import { RegistryError } from '@entrepot/registry-core';

/** At most this many keys per cache organization. */
export const MAX_SIGNATURE_KEYS = 16;

/** A public key a signature policy accepts, parsed once. */
export interface SignatureKey {
  key: KeyObject;
  kind: 'ecdsa-p256' | 'ed25519';
  /** sha256 of the DER public key, to name the key in answers and logs. */
  fingerprint: string;
}

/**
 * Parses a PEM public key as cosign writes one (`cosign generate-key-pair`:
 * ECDSA P-256; imported Ed25519 keys). Throws INVALID_REQUEST naming `field`
 * for anything else.
 */
export function parseSignatureKey(pem: string, field: string): SignatureKey {
  let key: KeyObject;
  try {
    key = createPublicKey({ key: pem, format: 'pem' });
  } catch {
    throw new RegistryError('INVALID_REQUEST', `${field}: not a PEM public key`, { detail: { field } });
  }
  const fingerprint = `sha256:${createHash('sha256').update(key.export({ type: 'spki', format: 'der' })).digest('hex')}`;
  if (key.asymmetricKeyType === 'ed25519') return { key, kind: 'ed25519', fingerprint };
  if (key.asymmetricKeyType === 'ec' && key.asymmetricKeyDetails?.namedCurve === 'prime256v1') return { key, kind: 'ecdsa-p256', fingerprint };
  throw new RegistryError('INVALID_REQUEST', `${field}: only ECDSA P-256 and Ed25519 public keys are supported`, { detail: { field } });
}

/**
 * Whether `signature` is `key`'s signature of `payload`, as cosign signs:
 * ECDSA over the SHA-256 of the payload (ASN.1 DER signature), Ed25519 over
 * the payload itself.
 */
export function verifiesWith(key: SignatureKey, payload: Buffer, signature: Buffer): boolean {
  try {
    if (key.kind === 'ed25519') return verify(null, payload, key.key, signature);
    return verify('sha256', payload, { key: key.key, dsaEncoding: 'der' }, signature);
  } catch {
    return false;
  }
}

/** Stored keys are validated when saved; one that no longer parses is skipped (and so accepts nothing). */
export function parseStoredKeys(pems: readonly string[]): SignatureKey[] {
  const keys: SignatureKey[] = [];
  for (const pem of pems) {
    try {
      keys.push(parseSignatureKey(pem, 'signature_public_keys'));
    } catch {
      // Skipped: a key that does not parse verifies nothing.
    }
  }
  return keys;
}
