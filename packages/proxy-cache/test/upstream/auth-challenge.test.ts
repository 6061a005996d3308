import { parseWwwAuthenticate, pullScope, selectChallenge, tokenRequestUrl } from '../../src/upstream/auth-challenge';

describe('parseWwwAuthenticate', () => {
  it('parses a Docker Hub Bearer challenge with realm, service and scope', () => {
    const challenges = parseWwwAuthenticate(
      'Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/alpine:pull"',
    );
    expect(challenges).toEqual([
      {
        scheme: 'bearer',
        params: { realm: 'https://auth.docker.io/token', service: 'registry.docker.io', scope: 'repository:library/alpine:pull' },
      },
    ]);
  });

  it('keeps commas inside quoted values and unescapes quoted pairs', () => {
    const [c] = parseWwwAuthenticate('Bearer realm="https://a/t", scope="repository:a/b:pull,push", error="say \\"no\\""');
    expect(c.params.scope).toBe('repository:a/b:pull,push');
    expect(c.params.error).toBe('say "no"');
  });

  it('splits several challenges in one header and across header lines', () => {
    const one = parseWwwAuthenticate('Basic realm="Registry Realm", Bearer realm="https://t.example/token",service=reg');
    expect(one.map((c) => c.scheme)).toEqual(['basic', 'bearer']);
    expect(one[0].params.realm).toBe('Registry Realm');
    expect(one[1].params).toEqual({ realm: 'https://t.example/token', service: 'reg' });

    const lines = parseWwwAuthenticate(['Basic realm="a"', 'Bearer realm="https://b/token"']);
    expect(lines.map((c) => c.scheme)).toEqual(['basic', 'bearer']);
  });

  it('accepts unquoted tokens, odd spacing and case, and token68', () => {
    const [a, b] = parseWwwAuthenticate('BEARER   Realm = "https://x/token" ,  Service=svc.io, Negotiate YWJjZA==');
    expect(a.scheme).toBe('bearer');
    expect(a.params).toEqual({ realm: 'https://x/token', service: 'svc.io' });
    expect(b).toEqual({ scheme: 'negotiate', params: {}, token68: 'YWJjZA==' });
  });

  it('returns nothing for empty or absent headers and survives garbage', () => {
    expect(parseWwwAuthenticate(undefined)).toEqual([]);
    expect(parseWwwAuthenticate('')).toEqual([]);
    expect(() => parseWwwAuthenticate('Bearer realm="unterminated, ==,, "')).not.toThrow();
  });
});

describe('selectChallenge', () => {
  it('prefers a usable Bearer challenge over Basic', () => {
    const c = selectChallenge(parseWwwAuthenticate('Basic realm="r", Bearer realm="https://auth/token",service="s"'));
    expect(c).toEqual({ scheme: 'bearer', realm: 'https://auth/token', service: 's', scope: undefined, error: undefined });
  });

  it('falls back to Basic when the Bearer realm is not an absolute http(s) URL', () => {
    expect(selectChallenge(parseWwwAuthenticate('Bearer realm="/token", Basic realm="r"'))).toEqual({ scheme: 'basic', realm: 'r' });
    expect(selectChallenge(parseWwwAuthenticate('Negotiate abc'))).toBeNull();
  });
});

describe('tokenRequestUrl', () => {
  it('adds service and one scope parameter per scope, keeping the realm query', () => {
    const url = tokenRequestUrl({ realm: 'https://auth.example/token?x=1', service: 'registry.example' }, `${pullScope('library/app')} repository:other:pull`);
    expect(url.origin).toBe('https://auth.example');
    expect(url.searchParams.get('x')).toBe('1');
    expect(url.searchParams.get('service')).toBe('registry.example');
    expect(url.searchParams.getAll('scope')).toEqual(['repository:library/app:pull', 'repository:other:pull']);
  });
});
