/** Typed calls to Entrepot's `/api/v1`, one method per endpoint the UI uses. */
import { ApiClient, ApiError, encodePath, type QueryValue } from './client';
import type { OpenApiDocument } from './openapi-document';
import type {
  CurrentUser,
  FlushResult,
  FlushScope,
  LogFilter,
  LogPage,
  Member,
  MemberRole,
  Organization,
  Prototype,
  CacheStats,
  ProxyCacheConfig,
  ProxyCacheInput,
  ProxyCacheValidation,
  ReferrersReport,
  Quota,
  QuotaInput,
  RepoRole,
  StatsWindow,
  RepositoryDetail,
  RepositoryList,
  Robot,
  SecurityPolicy,
  SecurityPolicyInput,
  SecurityReport,
  TagList,
} from './types';

const org = (name: string): string => `/organization/${encodeURIComponent(name)}`;
const repo = (namespace: string, name: string): string => `/repository/${encodeURIComponent(namespace)}/${encodePath(name)}`;

export class EntrepotApi {
  constructor(private readonly client: ApiClient) {}

  get username(): string {
    return this.client.credentials.username;
  }

  private async call<T>(method: string, path: string, body?: unknown, query?: Record<string, QueryValue>): Promise<T> {
    return (await this.client.request(method, path, { body, query })) as T;
  }

  // --- account -------------------------------------------------------------
  currentUser(): Promise<CurrentUser> {
    return this.call('GET', '/user/');
  }

  /** The server's OpenAPI document (what the API reference page renders). */
  openApiDocument(): Promise<OpenApiDocument> {
    return this.call('GET', '/openapi.json');
  }

  // --- organizations -------------------------------------------------------
  organization(name: string): Promise<Organization> {
    return this.call('GET', org(name));
  }

  createOrganization(name: string, email?: string): Promise<{ name: string; is_public: boolean }> {
    return this.call('POST', '/organization/', { name, ...(email ? { email } : {}) });
  }

  deleteOrganization(name: string): Promise<null> {
    return this.call('DELETE', org(name));
  }

  members(name: string): Promise<{ members: Member[] }> {
    return this.call('GET', `${org(name)}/members`);
  }

  setMember(name: string, member: string, role: MemberRole): Promise<Member> {
    return this.call('PUT', `${org(name)}/members/${encodeURIComponent(member)}`, { role });
  }

  removeMember(name: string, member: string): Promise<null> {
    return this.call('DELETE', `${org(name)}/members/${encodeURIComponent(member)}`);
  }

  // --- repositories and tags ----------------------------------------------
  repositories(namespace: string, nextPage?: string): Promise<RepositoryList> {
    return this.call('GET', '/repository', undefined, { namespace, next_page: nextPage, limit: 100 });
  }

  repository(namespace: string, name: string): Promise<RepositoryDetail> {
    return this.call('GET', repo(namespace, name));
  }

  tags(namespace: string, name: string, page = 1): Promise<TagList> {
    return this.call('GET', `${repo(namespace, name)}/tag/`, undefined, { page, limit: 50 });
  }

  deleteTag(namespace: string, name: string, tag: string): Promise<null> {
    return this.call('DELETE', `${repo(namespace, name)}/tag/${encodeURIComponent(tag)}`);
  }

  deleteRepository(namespace: string, name: string): Promise<null> {
    return this.call('DELETE', repo(namespace, name));
  }

  /** Clair results for one manifest; `vulnerabilities` as Quay's UI asks for them. */
  security(namespace: string, name: string, digest: string): Promise<SecurityReport> {
    return this.call('GET', `${repo(namespace, name)}/manifest/${encodeURIComponent(digest)}/security`, undefined, { vulnerabilities: true });
  }

  securityPolicy(name: string): Promise<SecurityPolicy> {
    return this.call('GET', `${org(name)}/securitypolicy`);
  }

  setSecurityPolicy(name: string, policy: SecurityPolicyInput): Promise<SecurityPolicy> {
    return this.call('PUT', `${org(name)}/securitypolicy`, policy);
  }

  // --- proxy cache ---------------------------------------------------------
  /** The cache configuration, or null when the organization is not a proxy cache (Quay answers with empty fields). */
  async proxyCache(name: string): Promise<ProxyCacheConfig | null> {
    const config = await this.call<ProxyCacheConfig | { upstream_registry: '' }>('GET', `${org(name)}/proxycache`);
    return config.upstream_registry === '' ? null : (config as ProxyCacheConfig);
  }

  /** What the cache served and saved over a window (the dashboard). */
  cacheStats(name: string, window: StatsWindow): Promise<CacheStats> {
    return this.call('GET', `${org(name)}/proxycache/stats`, undefined, { window });
  }

  /** Referrers of a manifest in a cache organization, with its signature state under the organization's keys. */
  referrers(name: string, repository: string, digest: string): Promise<ReferrersReport> {
    return this.call('GET', `${org(name)}/proxycache/referrers`, undefined, { repository, digest });
  }

  /** Saves the configuration (the server answers with Quay's bare "Created") and reads it back. */
  async saveProxyCache(name: string, input: ProxyCacheInput): Promise<ProxyCacheConfig> {
    await this.call('POST', `${org(name)}/proxycache`, input);
    const saved = await this.proxyCache(name);
    if (!saved) throw new ApiError(409, `${name} stopped being a proxy cache while it was saved`);
    return saved;
  }

  async deleteProxyCache(name: string): Promise<void> {
    await this.call('DELETE', `${org(name)}/proxycache`);
  }

  /** Checks reachability and credentials of a configuration without saving it ("Valid", or "Anonymous" without credentials). */
  async validateProxyCache(name: string, input: ProxyCacheInput): Promise<ProxyCacheValidation> {
    try {
      const answer = await this.call<string>('POST', `${org(name)}/validateproxycache`, input);
      return { valid: true, anonymous: answer === 'Anonymous' };
    } catch (err) {
      if (err instanceof ApiError && err.status === 400) return { valid: false, error_message: err.message };
      throw err;
    }
  }

  /**
   * Removes what the cache organization holds: everything, one repository, or one tag.
   * Rejects with an ApiError whose `endpointMissing` is true on servers without flush.
   */
  flushCache(name: string, scope: FlushScope = {}): Promise<FlushResult> {
    return this.call('DELETE', `${org(name)}/proxycache/cache`, undefined, { repository: scope.repository, tag: scope.tag });
  }

  // --- quota ---------------------------------------------------------------
  quotas(name: string): Promise<Quota[]> {
    return this.call('GET', `${org(name)}/quota`);
  }

  createQuota(name: string, input: QuotaInput): Promise<unknown> {
    return this.call('POST', `${org(name)}/quota`, input);
  }

  updateQuota(name: string, id: string | number, input: QuotaInput): Promise<unknown> {
    return this.call('PUT', `${org(name)}/quota/${encodeURIComponent(String(id))}`, input);
  }

  // --- robots --------------------------------------------------------------
  robots(name: string): Promise<{ robots: Robot[] }> {
    return this.call('GET', `${org(name)}/robots`, undefined, { token: false });
  }

  createRobot(name: string, short: string, description: string): Promise<Robot> {
    return this.call('PUT', `${org(name)}/robots/${encodeURIComponent(short)}`, description ? { description } : {});
  }

  regenerateRobot(name: string, short: string): Promise<Robot> {
    return this.call('POST', `${org(name)}/robots/${encodeURIComponent(short)}/regenerate`);
  }

  deleteRobot(name: string, short: string): Promise<null> {
    return this.call('DELETE', `${org(name)}/robots/${encodeURIComponent(short)}`);
  }

  /** Grants `role` to a user or robot on every repository that exists now. */
  grantOnAllRepositories(name: string, subject: string, role: RepoRole): Promise<{ name: string; role: RepoRole; repositories: number }> {
    return this.call('PUT', `${org(name)}/permissions/user/${encodeURIComponent(subject)}`, { role });
  }

  // --- default permissions -------------------------------------------------
  prototypes(name: string): Promise<{ prototypes: Prototype[] }> {
    return this.call('GET', `${org(name)}/prototypes`);
  }

  createPrototype(name: string, delegate: { kind: 'user' | 'robot'; name: string }, role: RepoRole): Promise<Prototype> {
    return this.call('POST', `${org(name)}/prototypes`, { role, delegate });
  }

  updatePrototype(name: string, id: string, role: RepoRole): Promise<Prototype> {
    return this.call('PUT', `${org(name)}/prototypes/${encodeURIComponent(id)}`, { role });
  }

  deletePrototype(name: string, id: string): Promise<null> {
    return this.call('DELETE', `${org(name)}/prototypes/${encodeURIComponent(id)}`);
  }

  // --- logs ----------------------------------------------------------------
  logs(name: string, filter: LogFilter, nextPage?: string): Promise<LogPage> {
    return this.call('GET', `${org(name)}/logs`, undefined, { ...filter, next_page: nextPage, limit: 100 });
  }

  /** The same filters as CSV text (one page of up to 1000 entries). */
  async logsCsv(name: string, filter: LogFilter): Promise<string> {
    return String(await this.client.request('GET', `${org(name)}/logs`, { query: { ...filter, format: 'csv', limit: 1000 }, text: true }));
  }
}
