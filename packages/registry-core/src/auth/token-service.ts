import { createPrivateKey, createPublicKey, generateKeyPairSync, randomUUID, type KeyObject } from 'node:crypto';
import jwt from 'jsonwebtoken';
import type { Db } from '../db/database';
import { RegistryError } from '../errors/registry-error';
import type { Clock } from '../services/clock';
import type { TokenGrant } from './authenticator';
import type { Principal } from './principal';

const ISSUER = 'entrepot';
const KEY_ID = 'primary';
/** Verified tokens remembered (a client reuses its token for every request of a pull). */
const VERIFIED_TOKENS = 10_000;

interface TokenClaims {
  access: TokenGrant[];
  principal: Principal;
}

interface VerifiedToken {
  claims: TokenClaims;
  /** Validity window in seconds since the epoch, as signed. */
  notBefore: number;
  expires: number;
}

/**
 * Short-lived RS256 registry tokens (Docker token auth). The key pair lives in
 * the database so every replica signs and verifies with the same key.
 */
export class TokenService {
  // Parsed once: parsing a PEM key on every request costs more than the signature check.
  private privateKey: KeyObject | null = null;
  private publicKey: KeyObject | null = null;
  /**
   * The RSA check and the claims' parsing cost more than the rest of a warm
   * manifest GET. A token's signature and claims never change, so once checked
   * it only needs its validity window compared with the clock on later uses.
   * Bounded; the oldest entry goes first.
   */
  private readonly verified = new Map<string, VerifiedToken>();

  constructor(
    private readonly db: Db,
    private readonly clock: Clock,
    private readonly ttlSeconds: number,
  ) {}

  async init(): Promise<void> {
    let row = await this.db('signing_keys').where({ id: KEY_ID }).first();
    if (!row) {
      const pair = generateKeyPairSync('rsa', { modulusLength: 2048 });
      await this.db('signing_keys')
        .insert({
          id: KEY_ID,
          private_pem: pair.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
          public_pem: pair.publicKey.export({ type: 'spki', format: 'pem' }).toString(),
          created_at: this.clock.now(),
        })
        .onConflict('id')
        .ignore();
      row = await this.db('signing_keys').where({ id: KEY_ID }).first();
    }
    this.privateKey = createPrivateKey(String(row.private_pem));
    this.publicKey = createPublicKey(String(row.public_pem));
  }

  /** Signs a token; `ttlSeconds` overrides the configured lifetime (the scanner's layer tokens). */
  issue(principal: Principal, access: TokenGrant[], audience: string, ttlSeconds = this.ttlSeconds): { token: string; expiresIn: number; issuedAt: string } {
    const now = Math.floor(this.clock.now() / 1000);
    const claims: TokenClaims & Record<string, unknown> = { access, principal, iat: now, nbf: now - 5, exp: now + ttlSeconds };
    if (!this.privateKey) throw new Error('token service used before init');
    const token = jwt.sign(claims, this.privateKey, {
      algorithm: 'RS256',
      issuer: ISSUER,
      audience,
      subject: principal.kind === 'user' ? principal.username : principal.kind === 'robot' ? principal.name : principal.kind === 'scanner' ? '(security scanner)' : '',
      jwtid: randomUUID(),
      keyid: KEY_ID,
    });
    return { token, expiresIn: ttlSeconds, issuedAt: new Date(now * 1000).toISOString() };
  }

  /** Throws UNAUTHORIZED for invalid, expired or foreign tokens. */
  verify(token: string): TokenClaims {
    const now = Math.floor(this.clock.now() / 1000);
    const known = this.verified.get(token);
    if (known) {
      if (now >= known.notBefore && now < known.expires) return known.claims;
      this.verified.delete(token);
    }
    try {
      if (!this.publicKey) throw new Error('token service used before init');
      const decoded = jwt.verify(token, this.publicKey, { algorithms: ['RS256'], issuer: ISSUER, clockTimestamp: now });
      if (typeof decoded !== 'object' || decoded === null) throw new Error('token payload is not an object');
      const claims = decoded as Partial<TokenClaims> & { nbf?: number; exp?: number };
      if (!claims.principal || !Array.isArray(claims.access)) throw new Error('token lacks principal or access');
      const verified: TokenClaims = { principal: claims.principal, access: claims.access };
      // Only tokens that say when they expire are remembered (Entrepot's always do).
      if (typeof claims.exp === 'number') this.remember(token, { claims: verified, notBefore: claims.nbf ?? 0, expires: claims.exp });
      return verified;
    } catch (err) {
      throw new RegistryError('UNAUTHORIZED', `invalid token: ${(err as Error).message}`);
    }
  }

  private remember(token: string, entry: VerifiedToken): void {
    // Shared by every request that presents the token: nothing may change it.
    for (const grant of entry.claims.access) {
      Object.freeze(grant.actions);
      Object.freeze(grant);
    }
    Object.freeze(entry.claims.access);
    Object.freeze(entry.claims.principal);
    if (this.verified.size >= VERIFIED_TOKENS) this.verified.delete(this.verified.keys().next().value as string);
    this.verified.set(token, entry);
  }
}
