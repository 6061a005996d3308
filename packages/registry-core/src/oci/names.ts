import { RegistryError } from '../errors/registry-error';
import { Digest, tryParseDigest } from './digest';

/** OCI distribution-spec repository name grammar (path components joined by '/'). */
const COMPONENT = /^[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*$/;
const TAG = /^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$/;
export const MAX_NAME_LENGTH = 255;

/** Throws NAME_INVALID unless `name` is a valid repository name. */
export function validateRepositoryName(name: string): string {
  if (name.length === 0 || name.length > MAX_NAME_LENGTH) {
    throw new RegistryError('NAME_INVALID', `repository name must be 1 to ${MAX_NAME_LENGTH} characters`);
  }
  for (const part of name.split('/')) {
    if (!COMPONENT.test(part)) {
      throw new RegistryError('NAME_INVALID', `invalid repository name "${name.slice(0, 300)}"`);
    }
  }
  return name;
}

export function isValidTag(tag: string): boolean {
  return TAG.test(tag);
}

export type Reference = { kind: 'tag'; tag: string } | { kind: 'digest'; digest: Digest };

/** Parses a manifest reference (tag or digest); throws DIGEST_INVALID or MANIFEST_INVALID when malformed. */
export function parseReference(ref: string): Reference {
  if (ref.includes(':')) {
    const digest = tryParseDigest(ref);
    if (!digest) throw new RegistryError('DIGEST_INVALID', `invalid digest reference "${ref.slice(0, 200)}"`);
    return { kind: 'digest', digest };
  }
  if (!isValidTag(ref)) throw new RegistryError('MANIFEST_INVALID', `invalid tag "${ref.slice(0, 200)}"`, { status: 400 });
  return { kind: 'tag', tag: ref };
}

export function referenceString(ref: Reference): string {
  return ref.kind === 'tag' ? ref.tag : ref.digest;
}

/** Splits `org/rest/of/path` into its first segment and the remainder. */
export function splitFirstSegment(name: string): { head: string; rest: string } {
  const slash = name.indexOf('/');
  return slash < 0 ? { head: name, rest: '' } : { head: name.slice(0, slash), rest: name.slice(slash + 1) };
}
