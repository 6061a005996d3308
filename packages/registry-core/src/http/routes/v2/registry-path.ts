import { RegistryError } from '../../../errors/registry-error';
import { validateRepositoryName } from '../../../oci/names';

export type RegistryEndpoint = 'manifests' | 'blobs' | 'uploads' | 'tags' | 'referrers';

export interface RegistryPath {
  name: string;
  endpoint: RegistryEndpoint;
  /** What follows the endpoint: a reference, digest or upload id ('' for collections). */
  rest: string;
}

const ENDPOINTS: ReadonlySet<string> = new Set(['manifests', 'blobs', 'tags', 'referrers']);

/**
 * Splits `/v2/<name>/<endpoint>/<rest>`, reading from the end so that names may
 * contain several segments (even ones called `blobs`). Returns null for paths
 * that are not repository endpoints. Throws NAME_INVALID for malformed names,
 * including encoded characters and `..`.
 */
export function parseRegistryPath(path: string): RegistryPath | null {
  if (!path.startsWith('/v2/')) return null;
  const segments = path.slice(4).split('/');
  const n = segments.length;
  let nameEnd: number;
  let endpoint: RegistryEndpoint;
  let rest = '';
  if (n >= 4 && segments[n - 3] === 'blobs' && segments[n - 2] === 'uploads') {
    nameEnd = n - 3;
    endpoint = 'uploads';
    rest = segments[n - 1];
  } else if (n >= 3 && segments[n - 2] === 'blobs' && segments[n - 1] === 'uploads') {
    nameEnd = n - 2;
    endpoint = 'uploads';
  } else if (n >= 3 && ENDPOINTS.has(segments[n - 2])) {
    nameEnd = n - 2;
    endpoint = segments[n - 2] as RegistryEndpoint;
    rest = segments[n - 1];
  } else {
    return null;
  }
  const name = segments.slice(0, nameEnd).join('/');
  if (name.includes('%')) throw new RegistryError('NAME_INVALID', 'repository names may not contain encoded characters');
  validateRepositoryName(name);
  if (rest.includes('%')) throw new RegistryError(endpoint === 'manifests' ? 'MANIFEST_INVALID' : 'DIGEST_INVALID', 'references may not contain encoded characters');
  return { name, endpoint, rest };
}
