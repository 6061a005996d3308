import type { NameResolver, RepoTarget } from '../plugin/contract';
import { splitFirstSegment } from '../oci/names';
import { RepositoryService } from './repository-service';

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
    for (const resolver of this.resolvers) {
      const target = await resolver.resolve(name, query);
      if (target) return target;
    }
    return null;
  }
}
