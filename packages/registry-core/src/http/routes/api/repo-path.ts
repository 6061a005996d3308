import { invalidField } from '../../../errors/registry-error';
import { MAX_NAME_LENGTH } from '../../../oci/names';

const COMPONENT = /^[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*$/;

/** What follows the repository name in `/repository/{org}/{repo...}/...`. */
export type RepoEndpoint =
  | { kind: 'repository' }
  | { kind: 'changevisibility' }
  | { kind: 'logs' }
  | { kind: 'aggregatelogs' }
  | { kind: 'exportlogs' }
  | { kind: 'tags' }
  | { kind: 'tag'; tag: string }
  | { kind: 'pin'; tag: string }
  | { kind: 'permissions' }
  | { kind: 'permission'; name: string }
  | { kind: 'teampermissions' }
  | { kind: 'teampermission'; team: string }
  | { kind: 'security'; digest: string };

/** Where each endpoint sits below `/repository/{repository}` (OpenAPI form; `{repository}` is `org/path`). */
export const REPO_ENDPOINT_PATHS: { [K in RepoEndpoint['kind']]: string } = {
  repository: '',
  changevisibility: '/changevisibility',
  logs: '/logs',
  aggregatelogs: '/aggregatelogs',
  exportlogs: '/exportlogs',
  tags: '/tag/',
  tag: '/tag/{tag}',
  pin: '/tag/{tag}/pin',
  permissions: '/permissions/user/',
  permission: '/permissions/user/{username}',
  teampermissions: '/permissions/team/',
  teampermission: '/permissions/team/{teamname}',
  security: '/manifest/{digest}/security',
};

export interface ApiRepoPath {
  org: string;
  /** The path below the organization, e.g. `library/postgres`. */
  repo: string;
  endpoint: RepoEndpoint;
}

/**
 * Decodes the segments of a raw (still percent-encoded) path. Throws INVALID_REQUEST for
 * malformed encoding, encoded slashes and `.`/`..` segments, so a path can never be
 * made to mean something else after decoding.
 */
export function decodeSegments(rawPath: string): string[] {
  const segments = rawPath.replace(/^\//, '').split('/');
  return segments.map((segment) => {
    let decoded: string;
    try {
      decoded = decodeURIComponent(segment);
    } catch {
      throw invalidField('repository', 'malformed percent-encoding in the path');
    }
    if (decoded.includes('/') || decoded.includes('\\')) throw invalidField('repository', 'encoded slashes are not allowed in paths');
    if (decoded === '.' || decoded === '..') throw invalidField('repository', '"." and ".." are not allowed in paths');
    return decoded;
  });
}

/** True when `name` is a valid repository path below an organization (OCI grammar). */
export function isValidRepoName(org: string, name: string): boolean {
  if (name.length === 0 || org.length + 1 + name.length > MAX_NAME_LENGTH) return false;
  return name.split('/').every((part) => COMPONENT.test(part));
}

function matchEndpoint(segments: string[]): { nameEnd: number; endpoint: RepoEndpoint } {
  const n = segments.length;
  const at = (i: number): string | undefined => segments[n - i];
  // Trailing-slash forms produce an empty last segment: `tag/` and `permissions/user/`.
  if (n >= 4 && at(3) === 'permissions' && at(2) === 'user') {
    return at(1) === '' ? { nameEnd: n - 3, endpoint: { kind: 'permissions' } } : { nameEnd: n - 3, endpoint: { kind: 'permission', name: at(1) ?? '' } };
  }
  if (n >= 3 && at(2) === 'permissions' && at(1) === 'user') return { nameEnd: n - 2, endpoint: { kind: 'permissions' } };
  if (n >= 4 && at(3) === 'permissions' && at(2) === 'team') {
    return at(1) === '' ? { nameEnd: n - 3, endpoint: { kind: 'teampermissions' } } : { nameEnd: n - 3, endpoint: { kind: 'teampermission', team: at(1) ?? '' } };
  }
  if (n >= 3 && at(2) === 'permissions' && at(1) === 'team') return { nameEnd: n - 2, endpoint: { kind: 'teampermissions' } };
  if (n >= 4 && at(3) === 'manifest' && at(1) === 'security') return { nameEnd: n - 3, endpoint: { kind: 'security', digest: at(2) ?? '' } };
  if (n >= 4 && at(3) === 'tag' && at(1) === 'pin') return { nameEnd: n - 3, endpoint: { kind: 'pin', tag: at(2) ?? '' } };
  if (n >= 3 && at(2) === 'tag') {
    return at(1) === '' ? { nameEnd: n - 2, endpoint: { kind: 'tags' } } : { nameEnd: n - 2, endpoint: { kind: 'tag', tag: at(1) ?? '' } };
  }
  if (n >= 2 && at(1) === 'tag') return { nameEnd: n - 1, endpoint: { kind: 'tags' } };
  if (n >= 2 && at(1) === 'changevisibility') return { nameEnd: n - 1, endpoint: { kind: 'changevisibility' } };
  if (n >= 2 && at(1) === 'logs') return { nameEnd: n - 1, endpoint: { kind: 'logs' } };
  if (n >= 2 && at(1) === 'aggregatelogs') return { nameEnd: n - 1, endpoint: { kind: 'aggregatelogs' } };
  if (n >= 2 && at(1) === 'exportlogs') return { nameEnd: n - 1, endpoint: { kind: 'exportlogs' } };
  const trailing = at(1) === '' ? 1 : 0;
  return { nameEnd: n - trailing, endpoint: { kind: 'repository' } };
}

/**
 * Parses `/{org}/{repo...}[/endpoint...]` (relative to `/repository`), reading the
 * endpoint from the end so that repository names may have several segments.
 * Throws INVALID_REQUEST for unsafe paths (see decodeSegments) and for invalid names
 * on a recognised endpoint; returns null when nothing here matches (plugin routes may).
 * A repository whose last component is `tag`, `logs`, `aggregatelogs`, `exportlogs` or `changevisibility` is reached
 * by its endpoints only.
 */
export function parseApiRepoPath(rawPath: string): ApiRepoPath | null {
  const segments = decodeSegments(rawPath);
  if (segments.length < 2 || segments[0] === '') return null;
  const { nameEnd, endpoint } = matchEndpoint(segments);
  const org = segments[0];
  const repo = segments.slice(1, nameEnd).join('/');
  if (!isValidRepoName(org, repo)) {
    if (endpoint.kind === 'repository') return null;
    throw invalidField('repository', `invalid repository name "${`${org}/${repo}`.slice(0, 300)}"`);
  }
  return { org, repo, endpoint };
}
