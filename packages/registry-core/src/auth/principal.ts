/** Who is making a request, after authentication. */
export type Principal =
  | { kind: 'anonymous' }
  | { kind: 'user'; id: number; username: string; isSuperuser: boolean }
  | { kind: 'robot'; id: number; name: string; orgId: number }
  /** Clair fetching layers to scan, with a pull-only token for one repository. */
  | { kind: 'scanner' };

export const ANONYMOUS: Principal = { kind: 'anonymous' };

export function principalName(principal: Principal): string {
  switch (principal.kind) {
    case 'anonymous':
      return '(anonymous)';
    case 'user':
      return principal.username;
    case 'robot':
      return principal.name;
    case 'scanner':
      return '(security scanner)';
  }
}

export type RepoRole = 'read' | 'write' | 'admin';
export type RepoAction = 'pull' | 'push' | 'delete' | 'admin';
