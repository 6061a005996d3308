import type { NameResolver, RepoTarget } from '../plugin/contract';
import { splitFirstSegment } from '../oci/names';
import { RepositoryService, type RepositoryRow } from './repository-service';

export interface ResolvedName {
  target: RepoTarget;
  /** The repository row when it exists locally. */
  repository: RepositoryRow | null;
}

/**
 * Maps a `/v2/<name>` path to an organization and repository. An organization
 * named by the first path segment always wins; otherwise registered resolvers
 * (mirror routing by `ns`, a default mirror org) are asked in order.
 */
export class NameResolution {
  constructor(
    private readonly repositories: RepositoryService,
    private readonly resolvers: readonly NameResolver[],
  ) {}

  /** The organization and repository a name maps to; for a name under an organization, read in one query. */
  async targetOf(name: string, query: { ns?: string }): Promise<ResolvedName | null> {
    const { head, rest } = splitFirstSegment(name);
    if (rest) {
      const found = await this.repositories.findOrgWithRepository(head, rest);
      if (found) return { target: { org: found.org, repoName: rest, fullName: name, route: 'explicit', ns: query.ns }, repository: found.repository };
    }
    for (const resolver of this.resolvers) {
      const target = await resolver.targetOf(name, query);
      if (target) return { target, repository: await this.repositories.find(target.org.id, target.repoName) };
    }
    return null;
  }
}
