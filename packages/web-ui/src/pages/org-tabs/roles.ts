/** Repository and membership roles as the forms offer them. */
import type { MemberRole, RepoRole } from '../../api/types';

export const REPO_ROLES: ReadonlyArray<readonly [RepoRole, string]> = [
  ['read', 'Read (pull)'],
  ['write', 'Write (pull and push)'],
  ['admin', 'Admin'],
];

export const MEMBER_ROLES: ReadonlyArray<readonly [MemberRole, string]> = [
  ['member', 'Member'],
  ['admin', 'Administrator'],
];

export function parseRepoRole(value: string): RepoRole {
  return REPO_ROLES.find(([role]) => role === value)?.[0] ?? 'read';
}

export function parseMemberRole(value: string): MemberRole {
  return value === 'admin' ? 'admin' : 'member';
}
