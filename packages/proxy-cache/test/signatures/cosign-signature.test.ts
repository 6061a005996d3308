import { createHash, generateKeyPairSync, sign, type KeyObject } from 'node:crypto';
import { RegistryError, type Digest } from '@entrepot/registry-core';
import { parseSignatureKey } from '../../src/signatures/cosign-keys';
import { SIGNATURE_ANNOTATION, SIMPLE_SIGNING_TYPE, signedPayloads, verifyPayload } from '../../src/signatures/cosign-signature';

const IMAGE = `sha256:${'ab'.repeat(32)}` as Digest;
const OTHER = `sha256:${'cd'.repeat(32)}` as Digest;

function payloadFor(digest: string): Buffer {
  return Buffer.from(
    JSON.stringify({ critical: { identity: { 'docker-reference': 'registry.example/app' }, image: { 'docker-manifest-digest': digest }, type: 'cosign container image signature' }, optional: null }),
  );
}

function pem(key: KeyObject): string {
  return key.export({ type: 'spki', format: 'pem' }).toString();
}

describe('cosign signatures verified with Node crypto', () => {
  const ec = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  const ed = generateKeyPairSync('ed25519');
  const ecKey = parseSignatureKey(pem(ec.publicKey), 'k');
  const edKey = parseSignatureKey(pem(ed.publicKey), 'k');

  it('accepts an ECDSA P-256 signature over the payload naming the manifest', () => {
    const payload = payloadFor(IMAGE);
    const signature = sign('sha256', payload, { key: ec.privateKey, dsaEncoding: 'der' });
    expect(verifyPayload(payload, signature, IMAGE, [ecKey])?.fingerprint).toBe(ecKey.fingerprint);
  });

  it('accepts an Ed25519 signature', () => {
    const payload = payloadFor(IMAGE);
    expect(verifyPayload(payload, sign(null, payload, ed.privateKey), IMAGE, [ecKey, edKey])).toBe(edKey);
  });

  it('refuses a signature by another key, over another digest, or over altered bytes', () => {
    const payload = payloadFor(IMAGE);
    const signature = sign('sha256', payload, { key: ec.privateKey, dsaEncoding: 'der' });
    expect(verifyPayload(payload, signature, IMAGE, [edKey])).toBeNull();
    expect(verifyPayload(payload, signature, OTHER, [ecKey])).toBeNull();
    const altered = Buffer.from(payload.toString().replace('registry.example', 'registry.evil'));
    expect(verifyPayload(altered, signature, IMAGE, [ecKey])).toBeNull();
    expect(verifyPayload(payload, Buffer.from('not a signature'), IMAGE, [ecKey])).toBeNull();
  });

  it('refuses a payload that is not a container image signature', () => {
    const payload = Buffer.from(JSON.stringify({ critical: { image: { 'docker-manifest-digest': IMAGE }, type: 'something else' } }));
    const signature = sign('sha256', payload, { key: ec.privateKey, dsaEncoding: 'der' });
    expect(verifyPayload(payload, signature, IMAGE, [ecKey])).toBeNull();
  });

  it('rejects keys that are not PEM, RSA keys and other curves with INVALID_REQUEST', () => {
    const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const p384 = generateKeyPairSync('ec', { namedCurve: 'secp384r1' });
    for (const bad of ['not a key', pem(rsa.publicKey), pem(p384.publicKey)]) {
      let caught: unknown;
      try {
        parseSignatureKey(bad, 'signature_public_keys.0');
      } catch (err) {
        caught = err;
      }
      expect(caught).toBeInstanceOf(RegistryError);
      expect((caught as RegistryError).code).toBe('INVALID_REQUEST');
      expect((caught as RegistryError).message).toMatch(/^signature_public_keys\.0: /);
    }
  });

  it('reads the signed payloads of a cosign signature manifest', () => {
    const payload = payloadFor(IMAGE);
    const layerDigest = `sha256:${createHash('sha256').update(payload).digest('hex')}`;
    const manifest = {
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', size: 2, digest: `sha256:${'00'.repeat(32)}` },
      layers: [
        { mediaType: SIMPLE_SIGNING_TYPE, size: payload.length, digest: layerDigest, annotations: { [SIGNATURE_ANNOTATION]: Buffer.from('sig').toString('base64') } },
        { mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', size: 10, digest: `sha256:${'11'.repeat(32)}` },
      ],
    };
    const found = signedPayloads(Buffer.from(JSON.stringify(manifest)), manifest.mediaType);
    expect(found).toEqual([{ payloadDigest: layerDigest, signature: Buffer.from('sig') }]);
    expect(signedPayloads(Buffer.from('{'), manifest.mediaType)).toEqual([]);
  });
});
