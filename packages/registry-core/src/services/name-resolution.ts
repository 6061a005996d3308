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

  async resolve(name: string, query: { ns?: string }): Promise<RepoTarget | null> {
    const { head, rest } = splitFirstSegment(name);
    if (rest) {
      const org = await this.repositories.findOrg(head);
      if (org) return { org, repoName: rest, fullName: name, route: 'explicit', ns: query.ns };
    }
    return this.fromResolvers(name, query);
  }

  /** As `resolve`, with the local repository looked up too; for a name under an organization, in the same query. */
  async resolveWithRepository(name: string, query: { ns?: string }): Promise<ResolvedName | null> {
    const { head, rest } = splitFirstSegment(name);
    if (rest) {
      const found = await this.repositories.findOrgWithRepository(head, rest);
      if (found) return { target: { org: found.org, repoName: rest, fullName: name, route: 'explicit', ns: query.ns }, repository: found.repository };
    }
    const target = await this.fromResolvers(name, query);
    return target ? { target, repository: await this.repositories.find(target.org.id, target.repoName) } : null;
  }

  private async fromResolvers(name: string, query: { ns?: string }): Promise<RepoTarget | null> {
    for (const resolver of this.resolvers) {
      const target = await resolver.resolve(name, query);
      if (target) return target;
    }
    return null;
  }
}
