import { createHash } from 'node:crypto';
import type { Request } from 'express';
import type { Config } from '../config/config';
import type { Db } from '../db/database';
import { authChallenge } from './challenge';
import { clientIp } from './client-ip';
import type { AuthResult, Authenticator } from './authenticator';
import type { LoginThrottle } from './login-throttle';
import { PasswordHasher, tokenMatches } from './passwords';
import { ANONYMOUS, Principal } from './principal';
import type { TokenService } from './token-service';

const VERIFIED_CACHE_SIZE = 10_000;

/** Basic credentials (users, robots `org+name` with their token) and bearer tokens. */
export class DbAuthenticator implements Authenticator {
  /** Digests of (stored hash, password) pairs already verified; bounded, oldest dropped first. */
  private readonly verified = new Set<string>();

  constructor(
    private readonly db: Db,
    private readonly config: Config,
    private readonly passwords: PasswordHasher,
    private readonly tokens: TokenService,
    private readonly throttle: LoginThrottle,
  ) {}

  async authenticate(req: Request): Promise<AuthResult> {
    if (req.entrepot.auth) return req.entrepot.auth;
    const header = req.get('authorization');
    if (!header) return { principal: ANONYMOUS };
    const [scheme, value = ''] = header.split(' ', 2);
    if (/^bearer$/i.test(scheme)) {
      try {
        const claims = this.tokens.verify(value.trim());
        return { principal: claims.principal, grants: claims.access };
      } catch (err) {
        throw authChallenge(req, this.config, undefined, (err as Error).message);
      }
    }
    if (/^basic$/i.test(scheme)) {
      const decoded = Buffer.from(value.trim(), 'base64').toString('utf8');
      const colon = decoded.indexOf(':');
      if (colon <= 0) throw authChallenge(req, this.config, undefined, 'malformed Basic credentials');
      const principal = await this.verifyCredentials(decoded.slice(0, colon), decoded.slice(colon + 1), clientIp(req));
      if (!principal) throw authChallenge(req, this.config, undefined, 'invalid username or password');
      return { principal };
    }
    throw authChallenge(req, this.config, undefined, `unsupported authorization scheme ${scheme.slice(0, 20)}`);
  }

  /** Returns null for wrong credentials; throws TOOMANYREQUESTS while throttled. */
  async verifyCredentials(username: string, secret: string, ip: string): Promise<Principal | null> {
    const { failuresOnRecord } = await this.throttle.check(username, ip);
    const principal = username.includes('+') ? await this.verifyRobot(username, secret) : await this.verifyUser(username, secret);
    if (!principal) await this.throttle.recordFailure(username, ip);
    // Clients that send Basic credentials with every request would otherwise write once per request.
    else if (failuresOnRecord) await this.throttle.recordSuccess(username, ip);
    return principal;
  }

  private async verifyUser(username: string, password: string): Promise<Principal | null> {
    const row = await this.db('users').where({ username }).first();
    if (!row) return null;
    // The slow hash runs once per (stored hash, password) pair: clients that send Basic
    // credentials on every request (the web UI, scripts) pay it once, and a password
    // change invalidates the entry because the stored hash changes.
    const key = createHash('sha256').update(`${String(row.password_hash)}\u0000${password}`).digest('hex');
    if (!this.verified.has(key)) {
      if (!(await this.passwords.verify(row.password_hash as string | null, password))) return null;
      if (this.verified.size >= VERIFIED_CACHE_SIZE) this.verified.delete(this.verified.values().next().value as string);
      this.verified.add(key);
    }
    return { kind: 'user', id: Number(row.id), username: String(row.username), isSuperuser: Boolean(row.is_superuser) };
  }

  private async verifyRobot(name: string, token: string): Promise<Principal | null> {
    const plus = name.indexOf('+');
    const row = await this.db('robots as r')
      .join('organizations as o', 'o.id', 'r.org_id')
      .where({ 'o.name': name.slice(0, plus), 'r.short_name': name.slice(plus + 1) })
      .first('r.id', 'r.org_id', 'r.token_hash');
    if (!row || !tokenMatches(String(row.token_hash), token)) return null;
    return { kind: 'robot', id: Number(row.id), name, orgId: Number(row.org_id) };
  }
}

