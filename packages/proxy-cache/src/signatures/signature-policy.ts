import { Counter } from 'prom-client';
import { RegistryError, type CorePorts, type Digest, type LookupContext, type ManifestHit, type PullGuard, oci } from '@entrepot/registry-core';
import type { CoreMetrics, Repositories } from '../core-types';
import type { CacheConfig, CacheConfigStore } from '../config/cache-config-store';
import type { CacheSource } from '../source/cache-source';
import { parseStoredKeys, type SignatureKey } from './cosign-keys';
import { COSIGN_SIGNATURE_ARTIFACT_TYPE, MAX_PAYLOAD_BYTES, signedPayloads, verifyPayload } from './cosign-signature';

/** Tags of signatures, attestations, SBOMs and referrer indexes (`sha256-<hex>[.sig|.att|.sbom]`). */
const REFERRER_TAG = /^sha256-[0-9a-f]{64}(\.sig|\.att|\.sbom)?$/;

/** How far up the index chain a child manifest pulled by digest looks for a signed parent. */
const MAX_PARENT_DEPTH = 2;

export type SignatureState = { verified: true; keyFingerprint: string; via: 'tag' | 'referrer' | 'index' } | { verified: false };

export function createSignatureMetrics(core: CoreMetrics): Counter<'org' | 'result'> {
  return new Counter({
    name: 'entrepot_cache_signature_checks_total',
    help: 'Pulls checked by a cache organization signature policy, by result (verified, refused)',
    labelNames: ['org', 'result'],
    registers: [core.registry],
  });
}

/**
 * The `require_signature` policy of cache organizations: a manifest is served
 * only with a valid cosign signature by one of the organization's keys — a
 * signature manifest under cosign's tag (`sha256-<hex>.sig`) or a referrer of
 * cosign's signature artifact type, whose simple-signing payload names the
 * manifest's digest and verifies with the key. The signature manifests and
 * payloads are pulled through the cache like any content, so inside the
 * staleness period a verified pull asks the upstream nothing. There is no
 * transparency log: keys are trusted as configured.
 *
 * Signatures, attestations and other referrers are served when their subject
 * is signed; a child of an index pulled by digest passes when the index is signed.
 */
export class SignaturePolicy implements PullGuard {
  constructor(
    private readonly configs: CacheConfigStore,
    private readonly source: CacheSource,
    private readonly repositories: Repositories,
    private readonly usage: Pick<CorePorts['usage'], 'parentIndexes'>,
    private readonly checks: Counter<'org' | 'result'>,
  ) {}

  /** Throws DENIED, naming the policy, when the organization requires a signature that `hit` lacks. */
  async checkPull(ref: oci.Reference, hit: ManifestHit, ctx: LookupContext): Promise<void> {
    const config = await this.configs.get(ctx.target.org.id);
    if (!config?.requireSignature) return;
    const target = subjectOf(ref, hit) ?? hit.digest;
    const state = await this.state(target, await this.withRepository(ctx), config);
    if (state.verified) {
      this.checks.inc({ org: ctx.target.org.name, result: 'verified' });
      return;
    }
    this.checks.inc({ org: ctx.target.org.name, result: 'refused' });
    const what = target === hit.digest ? '' : ` (a referrer of ${target})`;
    throw new RegistryError(
      'DENIED',
      `pull of ${ctx.target.fullName}@${hit.digest}${what} refused by the signature policy of cache organization ${ctx.target.org.name} (require_signature): no valid cosign signature by one of its keys`,
    );
  }

  /** Whether `digest` is signed by one of the organization's keys (for the web UI as well as for pulls). */
  async state(digest: Digest, ctx: LookupContext, config: CacheConfig, depth = 0): Promise<SignatureState> {
    const keys = parseStoredKeys(config.signatureKeys);
    if (keys.length === 0) return { verified: false };
    const byTag = await this.source.manifestFor({ kind: 'tag', tag: `sha256-${oci.digestHex(digest)}.sig` }, ctx);
    const key = byTag ? await this.verifies(byTag, digest, keys, ctx) : null;
    if (key) return { verified: true, keyFingerprint: key.fingerprint, via: 'tag' };
    for (const referrer of (await this.source.listReferrers(digest, ctx)) ?? []) {
      if (referrer.artifactType !== COSIGN_SIGNATURE_ARTIFACT_TYPE) continue;
      const manifest = await this.source.manifestFor({ kind: 'digest', digest: referrer.digest as Digest }, ctx);
      const signer = manifest ? await this.verifies(manifest, digest, keys, ctx) : null;
      if (signer) return { verified: true, keyFingerprint: signer.fingerprint, via: 'referrer' };
    }
    if (depth < MAX_PARENT_DEPTH && ctx.repository) {
      for (const parent of await this.usage.parentIndexes(ctx.repository.id, digest)) {
        const state = await this.state(parent, ctx, config, depth + 1);
        if (state.verified) return { ...state, via: 'index' };
      }
    }
    return { verified: false };
  }

  /** The key that signed `digest` in one of the signature manifest's layers, or null. */
  private async verifies(signatures: ManifestHit, digest: Digest, keys: readonly SignatureKey[], ctx: LookupContext): Promise<SignatureKey | null> {
    for (const layer of signedPayloads(signatures.body, signatures.mediaType)) {
      const payload = await this.source.smallBlob(layer.payloadDigest, ctx, MAX_PAYLOAD_BYTES);
      const key = payload ? verifyPayload(payload, layer.signature, digest, keys) : null;
      if (key) return key;
    }
    return null;
  }


  /** A first pull creates the repository during the lookup, after the context was built. */
  private async withRepository(ctx: LookupContext): Promise<LookupContext> {
    const repository = ctx.repository ?? (await this.repositories.find(ctx.target.org.id, ctx.target.repoName));
    return { ...ctx, repository, headOnly: false };
  }
}

/**
 * Signatures, attestations and SBOMs are not signed themselves: they are
 * served when the image they belong to is (its digest is named by their tag,
 * `sha256-<hex>.sig`, or by their `subject`).
 */
function subjectOf(ref: oci.Reference, hit: ManifestHit): Digest | null {
  if (ref.kind === 'tag' && REFERRER_TAG.test(ref.tag)) return `sha256:${ref.tag.slice('sha256-'.length, 'sha256-'.length + 64)}` as Digest;
  try {
    return oci.parseManifest(hit.body, hit.mediaType).subject?.digest ?? null;
  } catch {
    return null;
  }
}
