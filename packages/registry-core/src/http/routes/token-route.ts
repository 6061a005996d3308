import { Router } from 'express';
import type { Authorizer } from '../../auth/authenticator';
import type { TokenGrant } from '../../auth/authenticator';
import type { DbAuthenticator } from '../../auth/db-authenticator';
import type { TokenService } from '../../auth/token-service';
import type { Config } from '../../config/config';
import { asyncHandler } from '../async-handler';
import { serviceName } from '../../auth/challenge';

const SCOPE = /^repository(?:\([a-z]+\))?:([^:]+):([a-z*,]+)$/;

/** Parses Docker token scopes, `repository:<name>:<actions>`, possibly several. */
export function parseScopes(raw: unknown): TokenGrant[] {
  const values = Array.isArray(raw) ? raw : raw === undefined ? [] : [raw];
  const grants: TokenGrant[] = [];
  for (const value of values) {
    if (typeof value !== 'string') continue;
    for (const scope of value.split(' ')) {
      const match = SCOPE.exec(scope);
      if (match) grants.push({ type: 'repository', name: match[1], actions: match[2].split(',').filter(Boolean) });
    }
  }
  return grants;
}

/**
 * `GET /v2/auth`: exchanges Basic credentials (or none, for anonymous access) for
 * a short-lived bearer token. Requested actions are granted as asked for
 * authenticated principals and as pull-only for anonymous ones; every request
 * made with the token is still checked against live permissions, so a token
 * never grants more than its holder may do.
 */
export function tokenRouter(deps: { config: Config; authenticator: DbAuthenticator; tokens: TokenService; authorizer: Authorizer }): Router {
  const router = Router();
  router.get('/v2/auth', asyncHandler(async (req, res) => {
    const { principal } = await deps.authenticator.authenticate(req);
    const requested = parseScopes(req.query.scope);
    const grants = requested.map((g) => ({
      ...g,
      actions: principal.kind === 'anonymous' ? g.actions.filter((a) => a === 'pull') : g.actions,
    }));
    const issued = deps.tokens.issue(principal, grants, serviceName(req, deps.config));
    res.set('Cache-Control', 'no-store');
    res.json({ token: issued.token, access_token: issued.token, expires_in: issued.expiresIn, issued_at: issued.issuedAt });
  }));
  return router;
}
