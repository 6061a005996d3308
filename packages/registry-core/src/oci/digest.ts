import { createHash, Hash } from 'node:crypto';
import { RegistryError } from '../errors/registry-error';

/** A validated content digest such as `sha256:<64 hex>`. */
export type Digest = string & { readonly __digest: unique symbol };

const ALGORITHMS: Record<string, { hash: string; hexLength: number }> = {
  sha256: { hash: 'sha256', hexLength: 64 },
  sha512: { hash: 'sha512', hexLength: 128 },
};

const DIGEST_SHAPE = /^([a-z0-9]+(?:[+._-][a-z0-9]+)*):([a-zA-Z0-9=_-]+)$/;

/** Returns the digest if it is well formed and of a supported algorithm, else null. */
export function tryParseDigest(value: string): Digest | null {
  const match = DIGEST_SHAPE.exec(value);
  if (!match) return null;
  const algo = ALGORITHMS[match[1]];
  if (!algo) return null;
  if (match[2].length !== algo.hexLength || !/^[a-f0-9]+$/.test(match[2])) return null;
  return value as Digest;
}

/** Throws DIGEST_INVALID (or UNSUPPORTED for unknown algorithms) when malformed. */
export function parseDigest(value: string): Digest {
  const parsed = tryParseDigest(value);
  if (parsed) return parsed;
  const match = DIGEST_SHAPE.exec(value);
  if (match && !ALGORITHMS[match[1]]) {
    throw new RegistryError('DIGEST_INVALID', `unsupported digest algorithm "${match[1]}"`, { status: 400 });
  }
  throw new RegistryError('DIGEST_INVALID', `invalid digest "${value.slice(0, 200)}"`);
}

export function digestAlgorithm(digest: Digest): string {
  return digest.slice(0, digest.indexOf(':'));
}

export function digestHex(digest: Digest): string {
  return digest.slice(digest.indexOf(':') + 1);
}

export function createDigester(algorithm = 'sha256'): Hash {
  const algo = ALGORITHMS[algorithm];
  if (!algo) throw new RegistryError('DIGEST_INVALID', `unsupported digest algorithm "${algorithm}"`);
  return createHash(algo.hash);
}

export function digestOf(data: Buffer | string, algorithm = 'sha256'): Digest {
  return `${algorithm}:${createDigester(algorithm).update(data).digest('hex')}` as Digest;
}
