/**
 * A seeded generator of HTTP requests for the fuzz test: paths built from the
 * real route shapes of /v2 and /api/v1 with real and junk names, references,
 * digests and percent-encodings; random methods; headers (Range, Content-Type,
 * Authorization, Accept, Content-Range) that are valid or not; random JSON
 * (built from the API's own field names), broken JSON, binary and oversized
 * bodies. The same seed always gives the same requests.
 */
import { createHash } from 'node:crypto';

/** mulberry32: small, fast, and the same sequence for the same seed on every machine. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export interface FuzzRequest {
  method: string;
  /** Raw request target, already percent-encoded (or deliberately mis-encoded). */
  path: string;
  headers: Record<string, string>;
  body?: Buffer;
  /** Which credentials to send (resolved to a header by the test). */
  auth: 'none' | 'admin' | 'reader' | 'junk-basic' | 'junk-bearer' | 'garbage';
  /** The body is far larger than any limit: the server may answer early and close. */
  oversized: boolean;
}

export interface FuzzWorld {
  /** Organizations the fuzz may change freely as the admin. */
  sacrificialOrgs: string[];
  /** Organizations whose content must survive: only read there as the admin. */
  protectedOrgs: string[];
  /** Repository names through Entrepot (org/repo...) that hold content. */
  repos: string[];
  tags: string[];
  digests: string[];
  /** Accounts that must not be changed by the admin (the admin itself, the reader). */
  protectedUsers: string[];
  /** The upstream registry's URL (the only one the cache may reach). */
  upstreamUrl: string;
}

const sha = (s: string): string => createHash('sha256').update(s).digest('hex');

export class FuzzGenerator {
  private readonly rand: () => number;

  constructor(
    seed: number,
    private readonly world: FuzzWorld,
  ) {
    this.rand = prng(seed);
  }

  private int(n: number): number {
    return Math.floor(this.rand() * n);
  }

  private chance(p: number): boolean {
    return this.rand() < p;
  }

  private pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)];
  }

  private junkString(): string {
    const pools = [
      'a',
      '',
      '..',
      '.',
      '-',
      '_',
      'A',
      'ü',
      '☃',
      '%',
      '%00',
      '%2F',
      '%2e%2e',
      '%GG',
      '%C0%AF',
      '%E0%A4%A',
      '%ff',
      '+',
      ' ',
      '\\',
      '"',
      "'",
      '<script>',
      '${x}',
      '{}',
      '[]',
      'null',
      ':',
      ';',
      '@',
      '?',
      '#',
      '&',
      '=',
      'x'.repeat(300),
      '\u0000',
      '\r\n',
      'sha256:',
    ];
    let out = '';
    const parts = 1 + this.int(3);
    for (let i = 0; i < parts; i++) out += this.pick(pools);
    return out;
  }

  /** Encodes characters a request line cannot carry, leaving `%` sequences (valid or not) as they are. */
  private raw(s: string): string {
    return s.replace(/[^A-Za-z0-9\-._~!$&'()*+,;=:@/%?]/g, (c) => encodeURIComponent(c));
  }

  private orgName(): string {
    const { sacrificialOrgs, protectedOrgs } = this.world;
    const r = this.rand();
    if (r < 0.35) return this.pick(sacrificialOrgs);
    if (r < 0.65) return this.pick(protectedOrgs);
    if (r < 0.8) return this.pick(['nope', 'library', 'admin', 'Hub', 'acme+robot', '-x', 'a'.repeat(300)]);
    return this.raw(this.junkString());
  }

  private repoName(): string {
    const r = this.rand();
    if (r < 0.4) return this.pick(this.world.repos);
    if (r < 0.55) return `${this.orgName()}/${this.pick(['app', 'library/app', 'x/y/z', 'new', 'blobs', 'manifests', 'tag'])}`;
    if (r < 0.65) return this.pick(['library/app', 'app', 'library/nope']);
    return `${this.orgName()}/${this.raw(this.junkString())}`;
  }

  private reference(): string {
    const r = this.rand();
    if (r < 0.3) return this.pick(this.world.tags);
    if (r < 0.55) return this.pick(this.world.digests);
    if (r < 0.7) return `sha256:${sha(String(this.rand()))}`;
    return this.raw(this.pick(['-bad', 'latest', 't'.repeat(200), 'sha256:zz', 'sha512:abc', 'a:b:c', 'v1.0', this.junkString()]));
  }

  private digest(): string {
    const r = this.rand();
    if (r < 0.4) return this.pick(this.world.digests);
    if (r < 0.6) return `sha256:${sha(String(this.rand()))}`;
    return this.raw(this.pick(['sha256:xyz', `sha256:${sha('x').slice(1)}`, `md5:${sha('x').slice(0, 32)}`, `sha512:${sha('x')}`, 'sha256:', ':', `SHA256:${sha('y')}`, this.junkString()]));
  }

  private query(keys: string[]): string {
    if (this.chance(0.4)) return '';
    const parts: string[] = [];
    const count = 1 + this.int(3);
    for (let i = 0; i < count; i++) {
      const key = this.chance(0.8) ? this.pick(keys) : this.raw(this.junkString());
      const value = this.pick([this.digest(), this.repoName(), String(this.int(5000) - 10), 'docker.io', '', this.raw(this.junkString()), '1e99', 'true', '%zz']);
      parts.push(`${key}=${value}`);
    }
    return `?${parts.join('&')}`;
  }

  private v2Path(): string {
    const name = this.repoName();
    switch (this.int(10)) {
      case 0:
        return this.pick(['/v2/', '/v2', '/v2/_catalog', `/v2/_catalog${this.query(['n', 'last'])}`]);
      case 1:
        return `/v2/auth${this.query(['service', 'scope', 'account', 'client_id', 'offline_token'])}`;
      case 2:
      case 3:
        return `/v2/${name}/manifests/${this.reference()}${this.query(['ns', 'tag'])}`;
      case 4:
      case 5:
        return `/v2/${name}/blobs/${this.digest()}${this.query(['ns'])}`;
      case 6:
        return `/v2/${name}/blobs/uploads/${this.query(['digest', 'mount', 'from'])}`;
      case 7:
        return `/v2/${name}/blobs/uploads/${this.pick(['00000000-0000-0000-0000-000000000000', 'nope', '../../x', 'a'.repeat(80), this.raw(this.junkString())])}${this.query(['digest', '_state'])}`;
      case 8:
        return `/v2/${name}/tags/list${this.query(['n', 'last', 'ns'])}`;
      default:
        return `/v2/${name}/referrers/${this.digest()}${this.query(['artifactType'])}`;
    }
  }

  private apiPath(): string {
    const org = this.orgName();
    const repo = this.repoName();
    const user = this.pick([...this.world.protectedUsers, 'someone', this.raw(this.junkString())]);
    const id = this.pick(['1', '0', '-1', '999999', 'abc', '1.5', this.raw(this.junkString())]);
    const shapes = [
      '/api/v1/organization/',
      `/api/v1/organization/${org}`,
      `/api/v1/organization/${org}/members`,
      `/api/v1/organization/${org}/members/${user}`,
      `/api/v1/organization/${org}/robots`,
      `/api/v1/organization/${org}/robots/${this.raw(this.pick(['bot', 'ci', this.junkString()]))}`,
      `/api/v1/organization/${org}/robots/bot/regenerate`,
      `/api/v1/organization/${org}/logs${this.query(['kind', 'starttime', 'endtime', 'performer', 'repository', 'next_page', 'format', 'limit'])}`,
      `/api/v1/organization/${org}/quota`,
      `/api/v1/organization/${org}/quota/${id}`,
      `/api/v1/organization/${org}/prototypes`,
      `/api/v1/organization/${org}/prototypes/${id}`,
      `/api/v1/organization/${org}/proxycache`,
      `/api/v1/organization/${org}/proxycache/cache${this.query(['repository', 'tag'])}`,
      `/api/v1/organization/${org}/validateproxycache`,
      `/api/v1/organization/${org}/permissions/user/${user}`,
      '/api/v1/user/',
      '/api/v1/superuser/users/',
      `/api/v1/superuser/users/${user}`,
      `/api/v1/repository${this.query(['namespace', 'public', 'starred', 'next_page', 'last_modified', 'popularity', 'repo_kind'])}`,
      `/api/v1/repository/${repo}`,
      `/api/v1/repository/${repo}/tag/`,
      `/api/v1/repository/${repo}/tag/${this.reference()}`,
      `/api/v1/repository/${repo}/tag/${this.reference()}/pin`,
      `/api/v1/repository/${repo}/permissions/user/`,
      `/api/v1/repository/${repo}/permissions/user/${user}`,
      `/api/v1/repository/${repo}/logs`,
      `/api/v1/repository/${repo}/manifest/${this.digest()}/security`,
      `/api/v1/${this.raw(this.junkString())}`,
      '/api/v1',
      '/api/v1/',
    ];
    return this.pick(shapes);
  }

  private jsonValue(depth: number): unknown {
    const r = this.rand();
    if (r < 0.25) return this.pick(['', 'x', this.junkString(), 'docker.io', 'quay.io/org', this.world.upstreamUrl, 'http://127.0.0.1:1', 'ftp://x', 'admin', 'read', 'write', 'lru', 'lfu', 'remove', 'keep', 'public', 'private']);
    if (r < 0.45) return this.pick([0, -1, 1, 2 ** 31, 2 ** 53 + 1, 1e308, -1e308, 0.5, 86400, 3600]);
    if (r < 0.55) return this.chance(0.5);
    if (r < 0.62) return null;
    if (r < 0.8 && depth < 3) return Array.from({ length: this.int(4) }, () => this.jsonValue(depth + 1));
    if (depth < 3) return this.jsonObject(depth + 1);
    return 'deep';
  }

  private jsonObject(depth = 0): Record<string, unknown> {
    const fields = [
      'name',
      'email',
      'username',
      'password',
      'upstream_registry',
      'upstream_endpoint',
      'upstream_registry_username',
      'upstream_registry_password',
      'expiration_s',
      'insecure',
      'stale_if_error_s',
      'on_upstream_404',
      'limit_bytes',
      'eviction_policy',
      'role',
      'permission',
      'description',
      'repository',
      'namespace',
      'visibility',
      'delegate',
      'activating_user',
      'pinned',
      'manifest_digest',
      'is_public',
      'kind',
      'schemaVersion',
      'mediaType',
      'manifests',
      'layers',
      'config',
      '__proto__',
      'constructor',
    ];
    const out: Record<string, unknown> = {};
    const count = this.int(6);
    for (let i = 0; i < count; i++) {
      const key = this.chance(0.85) ? this.pick(fields) : this.junkString();
      // Defined as own properties, so `__proto__` is sent as a key.
      Object.defineProperty(out, key, { value: this.jsonValue(depth), enumerable: true, configurable: true, writable: true });
    }
    return out;
  }

  private manifestBody(): Buffer {
    const digest = this.pick(this.world.digests);
    const docs: unknown[] = [
      { schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json', config: { mediaType: 'x', digest, size: this.int(100) }, layers: [] },
      { schemaVersion: 2, mediaType: 'application/vnd.oci.image.index.v1+json', manifests: [{ mediaType: 'x', digest, size: -4 }] },
      { schemaVersion: 2, manifests: 'no' },
      { schemaVersion: 1, name: 'x', tag: 'y', fsLayers: [] },
      { schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json', config: { mediaType: 'x', digest, size: 1 }, layers: [{ mediaType: 'y', digest, size: 1 }], subject: { mediaType: 'z', digest, size: 2 } },
      this.jsonObject(),
    ];
    return Buffer.from(JSON.stringify(this.pick(docs)));
  }

  private body(path: string): { body?: Buffer; oversized: boolean; contentType?: string } {
    const r = this.rand();
    if (r < 0.3) return { oversized: false };
    if (r < 0.6) return { body: Buffer.from(JSON.stringify(this.jsonObject())), oversized: false, contentType: 'application/json' };
    if (r < 0.7 && path.includes('/manifests/')) return { body: this.manifestBody(), oversized: false, contentType: 'application/vnd.oci.image.manifest.v1+json' };
    if (r < 0.8) return { body: Buffer.from(this.pick(['{', '[]', '{"a":', 'null', '"x"', '1', '{"name":"x"}x', '\u0000\u0001', ''])), oversized: false };
    if (r < 0.95) {
      const size = this.int(4096);
      const bytes = Buffer.alloc(size);
      for (let i = 0; i < size; i++) bytes[i] = this.int(256);
      return { body: bytes, oversized: false, contentType: 'application/octet-stream' };
    }
    // Past every limit (1 MB JSON, 4 MiB manifests).
    return { body: Buffer.alloc(5 * 1024 * 1024 + this.int(1024), 0x7b), oversized: true };
  }

  /**
   * A well-formed request on the sacrificial organizations (or a read of the
   * protected ones), so that the fuzz also drives the paths that succeed:
   * pushes, tags, robots, quotas, default permissions, cache configuration,
   * pulls through a cache, flushes.
   */
  private valid(): FuzzRequest {
    const org = this.pick(this.world.sacrificialOrgs);
    const repo = `${org}/${this.pick(['app', 'x/y', 'tools'])}`;
    const json = (value: unknown): Buffer => Buffer.from(JSON.stringify(value));
    const data = Buffer.from(`blob ${this.int(50)}`);
    const digest = `sha256:${createHash('sha256').update(data).digest('hex')}`;
    const tag = this.pick(['v1', 'v2', 'latest']);
    const base = { headers: {} as Record<string, string>, auth: 'admin' as const, oversized: false };
    const digests = this.world.digests;
    const choices: Array<() => FuzzRequest> = [
      () => ({ ...base, method: 'POST', path: `/v2/${repo}/blobs/uploads/?digest=${digest}`, body: data, headers: { 'content-type': 'application/octet-stream' } }),
      () => ({ ...base, method: 'POST', path: `/v2/${repo}/blobs/uploads/?mount=${this.pick(digests)}&from=${this.pick(this.world.repos)}` }),
      () => ({
        ...base,
        method: 'PUT',
        path: `/v2/${repo}/manifests/${tag}`,
        headers: { 'content-type': 'application/vnd.oci.image.manifest.v1+json' },
        body: json({
          schemaVersion: 2,
          mediaType: 'application/vnd.oci.image.manifest.v1+json',
          config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest, size: data.length },
          layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest, size: data.length }],
        }),
      }),
      () => ({ ...base, method: this.pick(['GET', 'HEAD', 'DELETE']), path: `/v2/${repo}/manifests/${tag}` }),
      () => ({ ...base, method: this.pick(['GET', 'HEAD']), path: `/v2/${this.pick(this.world.repos)}/${this.pick(['manifests/v1', `blobs/${this.pick(digests)}`, 'tags/list', `referrers/${this.pick(digests)}`])}` }),
      () => ({ ...base, auth: this.pick(['admin', 'reader', 'none'] as const), method: 'GET', path: `/v2/${this.pick(this.world.repos)}/blobs/${this.pick(digests)}`, headers: { range: `bytes=${this.int(100)}-${100 + this.int(100000)}` } }),
      () => ({ ...base, method: 'POST', path: '/api/v1/organization/', body: json({ name: `${org}${this.int(20)}`, is_public: this.chance(0.5) }), headers: { 'content-type': 'application/json' } }),
      () => ({ ...base, method: 'PUT', path: `/api/v1/organization/${org}/robots/bot${this.int(5)}`, body: json({ description: 'fuzz' }), headers: { 'content-type': 'application/json' } }),
      () => ({ ...base, method: this.pick(['DELETE', 'GET', 'POST']), path: `/api/v1/organization/${org}/robots/bot${this.int(5)}${this.chance(0.3) ? '/regenerate' : ''}` }),
      () => ({ ...base, method: 'POST', path: `/api/v1/organization/${org}/quota`, body: json({ limit_bytes: 1 + this.int(10_000_000), eviction_policy: this.pick(['lru', 'lfu']) }), headers: { 'content-type': 'application/json' } }),
      () => ({ ...base, method: this.pick(['PUT', 'DELETE', 'GET']), path: `/api/v1/organization/${org}/quota/${1 + this.int(5)}`, body: json({ limit_bytes: 1 + this.int(1_000_000) }), headers: { 'content-type': 'application/json' } }),
      () => ({ ...base, method: 'POST', path: `/api/v1/organization/${org}/prototypes`, body: json({ role: this.pick(['read', 'write', 'admin']), delegate: { kind: 'user', name: this.pick(['reader', `${org}+bot1`, 'nobody']) } }), headers: { 'content-type': 'application/json' } }),
      () => ({ ...base, method: 'PUT', path: `/api/v1/repository/${repo}/permissions/user/reader`, body: json({ role: this.pick(['read', 'write', 'admin']) }), headers: { 'content-type': 'application/json' } }),
      () => ({ ...base, method: this.pick(['GET', 'PUT', 'DELETE']), path: `/api/v1/repository/${repo}/tag/${tag}`, body: json({ manifest_digest: this.pick(digests) }), headers: { 'content-type': 'application/json' } }),
      () => ({ ...base, method: 'GET', path: `/api/v1/organization/${org}/logs?kind=${this.pick(['pull_repo', 'push_repo', 'create_robot'])}&format=${this.pick(['json', 'csv'])}&limit=${1 + this.int(50)}` }),
      () => ({ ...base, method: this.pick(['GET', 'GET', 'HEAD']), path: `/v2/fzc/library/app/${this.pick(['manifests/v1', `blobs/${this.pick(digests)}`, 'tags/list'])}` }),
      () => ({ ...base, method: 'DELETE', path: `/api/v1/organization/fzc/proxycache/cache${this.pick(['', '?repository=library/app', '?repository=library/app&tag=v1'])}` }),
      () => ({
        ...base,
        method: 'POST',
        path: `/api/v1/organization/${this.pick(['fzc', org])}/${this.pick(['proxycache', 'validateproxycache'])}`,
        body: json({ upstream_registry: this.pick(['docker.io', 'quay.io/org', 'registry.k8s.io']), upstream_endpoint: this.world.upstreamUrl, insecure: true, expiration_s: this.int(100) }),
        headers: { 'content-type': 'application/json' },
      }),
    ];
    return this.pick(choices)();
  }

  next(): FuzzRequest {
    if (this.chance(0.25)) return this.valid();
    const method = this.pick(['GET', 'GET', 'GET', 'HEAD', 'HEAD', 'POST', 'POST', 'PUT', 'PUT', 'PATCH', 'DELETE', 'DELETE', 'OPTIONS', 'PROPFIND', 'TRACE']);
    const r = this.rand();
    const path = r < 0.55 ? this.v2Path() : r < 0.97 ? this.apiPath() : this.pick(['/', '/health/instance', '/health/endtoend', '/metrics', `/${this.raw(this.junkString())}`, '//v2//', '/v2/../api/v1/user/']);
    const headers: Record<string, string> = {};
    if (this.chance(0.25)) headers.range = this.pick(['bytes=0-0', 'bytes=5-2', 'bytes=-0', 'bytes=-10', 'bytes=99999999999-', 'items=0-1', 'bytes=0-1,3-4', 'bytes=abc', 'bytes=--1', 'bytes=0-', 'bytes=1-1']);
    if (this.chance(0.3)) headers.accept = this.pick(['*/*', 'application/vnd.oci.image.index.v1+json', 'application/vnd.docker.distribution.manifest.v1+prettyjws', 'text/html', '', 'application/json;q=0']);
    if (this.chance(0.15)) headers['content-range'] = this.pick(['0-3', '5-1', 'x', '100-200', '0-999999999999999999999', 'bytes 0-3/4']);
    if (this.chance(0.1)) headers['x-forwarded-for'] = this.pick(['1.2.3.4', 'junk', '::1, 10.0.0.1', '']);
    const mutating = !['GET', 'HEAD', 'OPTIONS', 'PROPFIND', 'TRACE'].includes(method);
    // `ns=` routes a name without its organization to a cache organization (a protected one here).
    const touchesProtected = path.includes('ns=') || [...this.world.protectedOrgs, ...this.world.protectedUsers].some((name) => path.toLowerCase().includes(name.toLowerCase()));
    let auth: FuzzRequest['auth'] = this.pick(['none', 'admin', 'admin', 'admin', 'reader', 'junk-basic', 'junk-bearer', 'garbage']);
    // The admin only reads what must survive; every other caller may try anything.
    if (auth === 'admin' && mutating && touchesProtected) auth = this.pick(['reader', 'none', 'junk-bearer']);
    const { body, oversized, contentType } = method === 'GET' || method === 'HEAD' ? (this.chance(0.05) ? this.body(path) : { oversized: false }) : this.body(path);
    if (contentType && this.chance(0.8)) headers['content-type'] = contentType;
    else if (this.chance(0.3)) headers['content-type'] = this.pick(['application/json', 'text/plain', 'application/vnd.oci.image.index.v1+json', 'multipart/form-data; boundary=x', 'application/json; charset=latin1', '']);
    return { method, path, headers, body, auth, oversized };
  }
}
