/**
 * `WWW-Authenticate` parsing (RFC 9110 §11.6.1) and the choice of the
 * challenge the upstream client answers: Bearer (the Docker token flow) is
 * preferred over Basic.
 *
 * A header may hold several challenges, each with several parameters, and
 * quoted values may contain commas and escaped quotes:
 * `Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:a/b:pull,push", Basic realm="x"`.
 */

export interface AuthChallenge {
  /** Lower-cased scheme, e.g. `bearer`, `basic`. */
  scheme: string;
  /** Parameters by lower-cased name; values unquoted and unescaped. */
  params: Record<string, string>;
  /** The token68 form (`Negotiate abc==`), when used instead of parameters. */
  token68?: string;
}

/** What the client acts on. */
export type UpstreamChallenge =
  | { scheme: 'bearer'; realm: string; service?: string; scope?: string; error?: string }
  | { scheme: 'basic'; realm?: string };

const TOKEN = /[!#$%&'*+.^_`|~0-9A-Za-z-]+/y;
const TOKEN68 = /[A-Za-z0-9\-._~+/]+=*/y;

class Scanner {
  pos = 0;
  constructor(readonly text: string) {}

  get done(): boolean {
    return this.pos >= this.text.length;
  }

  peek(): string {
    return this.text[this.pos] ?? '';
  }

  skipSpace(): void {
    while (this.peek() === ' ' || this.peek() === '\t') this.pos++;
  }

  /** Skips whitespace and list separators. */
  skipSeparators(): void {
    while (this.peek() === ' ' || this.peek() === '\t' || this.peek() === ',') this.pos++;
  }

  match(re: RegExp): string | null {
    re.lastIndex = this.pos;
    const m = re.exec(this.text);
    if (!m) return null;
    this.pos += m[0].length;
    return m[0];
  }

  /** A quoted-string starting at the current `"`, with backslash escapes; null if unterminated. */
  quoted(): string | null {
    if (this.peek() !== '"') return null;
    let out = '';
    for (let i = this.pos + 1; i < this.text.length; i++) {
      const c = this.text[i];
      if (c === '\\' && i + 1 < this.text.length) {
        out += this.text[++i];
      } else if (c === '"') {
        this.pos = i + 1;
        return out;
      } else {
        out += c;
      }
    }
    return null;
  }

  /** True at the end or before a list separator (after optional spaces). */
  atItemEnd(): boolean {
    const save = this.pos;
    this.skipSpace();
    const end = this.done || this.peek() === ',';
    this.pos = save;
    return end;
  }
}

/** Tries `name = value` at the scanner position; restores the position and returns null otherwise. */
function readParam(s: Scanner): [string, string] | null {
  const start = s.pos;
  const name = s.match(TOKEN);
  if (name !== null) {
    s.skipSpace();
    if (s.peek() === '=') {
      s.pos++;
      s.skipSpace();
      const value = s.peek() === '"' ? s.quoted() : s.match(TOKEN);
      if (value !== null && s.atItemEnd()) return [name.toLowerCase(), value];
    }
  }
  s.pos = start;
  return null;
}

/** Parses one or more `WWW-Authenticate` header values into challenges (malformed tails are dropped). */
export function parseWwwAuthenticate(header: string | string[] | undefined): AuthChallenge[] {
  if (header === undefined) return [];
  const values = Array.isArray(header) ? header : [header];
  const challenges: AuthChallenge[] = [];
  for (const value of values) {
    const s = new Scanner(value);
    for (;;) {
      s.skipSeparators();
      if (s.done) break;
      const scheme = s.match(TOKEN);
      if (scheme === null) break;
      const challenge: AuthChallenge = { scheme: scheme.toLowerCase(), params: {} };
      challenges.push(challenge);
      s.skipSpace();
      // token68 form: only directly after the scheme.
      const before = s.pos;
      const startsWithParam = readParam(s) !== null;
      s.pos = before;
      if (!startsWithParam) {
        const t68 = s.match(TOKEN68);
        if (t68 !== null && s.atItemEnd()) {
          challenge.token68 = t68;
          continue;
        }
        s.pos = before;
      }
      // auth-params, separated by commas, until something that is not a param (the next scheme).
      for (;;) {
        const param = readParam(s);
        if (param === null) break;
        if (!(param[0] in challenge.params)) challenge.params[param[0]] = param[1];
        s.skipSpace();
        if (s.peek() !== ',') break;
        const afterComma = s.pos;
        s.pos++;
        s.skipSeparators();
        const probe = s.pos;
        if (readParam(s) === null) {
          // Not a parameter: the next challenge starts here.
          s.pos = afterComma;
          break;
        }
        s.pos = probe;
      }
    }
  }
  return challenges;
}

/**
 * The challenge to answer: the first usable Bearer challenge (it needs an
 * absolute http(s) realm), else the first Basic challenge, else null.
 */
export function selectChallenge(challenges: AuthChallenge[]): UpstreamChallenge | null {
  for (const c of challenges) {
    if (c.scheme !== 'bearer') continue;
    const realm = c.params.realm;
    if (!realm || !/^https?:\/\//i.test(realm)) continue;
    try {
      new URL(realm);
    } catch {
      continue;
    }
    return { scheme: 'bearer', realm, service: c.params.service, scope: c.params.scope, error: c.params.error };
  }
  const basic = challenges.find((c) => c.scheme === 'basic');
  return basic ? { scheme: 'basic', realm: basic.params.realm } : null;
}

/** `repository:<name>:pull`, the scope the cache needs for every read of a repository. */
export function pullScope(repository: string): string {
  return `repository:${repository}:pull`;
}

/**
 * The token request URL: the realm with `service` and one `scope` parameter
 * per space-separated scope (the Docker token protocol), keeping any query the
 * realm already has.
 */
export function tokenRequestUrl(challenge: { realm: string; service?: string }, scope: string | undefined): URL {
  const url = new URL(challenge.realm);
  if (challenge.service !== undefined && challenge.service !== '') url.searchParams.set('service', challenge.service);
  for (const s of (scope ?? '').split(' ')) {
    if (s !== '') url.searchParams.append('scope', s);
  }
  return url;
}
