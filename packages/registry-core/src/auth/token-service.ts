import { createPrivateKey, createPublicKey, generateKeyPairSync, randomUUID, type KeyObject } from 'node:crypto';
import jwt from 'jsonwebtoken';
import type { Db } from '../db/database';
import { RegistryError } from '../errors/registry-error';
import type { Clock } from '../services/clock';
import type { TokenGrant } from './authenticator';
import type { Principal } from './principal';

const ISSUER = 'entrepot';
const KEY_ID = 'primary';

interface TokenClaims {
  access: TokenGrant[];
  principal: Principal;
}

/**
 * Short-lived RS256 registry tokens (Docker token auth). The key pair lives in
 * the database so every replica signs and verifies with the same key.
 */
export class TokenService {
  // Parsed once: parsing a PEM key on every request costs more than the signature check.
  private privateKey: KeyObject | null = null;
  private publicKey: KeyObject | null = null;

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

  issue(principal: Principal, access: TokenGrant[], audience: string): { token: string; expiresIn: number; issuedAt: string } {
    const now = Math.floor(this.clock.now() / 1000);
    const claims: TokenClaims & Record<string, unknown> = { access, principal, iat: now, nbf: now - 5, exp: now + this.ttlSeconds };
    if (!this.privateKey) throw new Error('token service used before init');
    const token = jwt.sign(claims, this.privateKey, {
      algorithm: 'RS256',
      issuer: ISSUER,
      audience,
      subject: principal.kind === 'user' ? principal.username : principal.kind === 'robot' ? principal.name : '',
      jwtid: randomUUID(),
      keyid: KEY_ID,
    });
    return { token, expiresIn: this.ttlSeconds, issuedAt: new Date(now * 1000).toISOString() };
  }

  /** Throws UNAUTHORIZED for invalid, expired or foreign tokens. */
  verify(token: string): TokenClaims {
    try {
      if (!this.publicKey) throw new Error('token service used before init');
      const decoded = jwt.verify(token, this.publicKey, { algorithms: ['RS256'], issuer: ISSUER, clockTimestamp: Math.floor(this.clock.now() / 1000) });
      if (typeof decoded !== 'object' || decoded === null) throw new Error('token payload is not an object');
      const claims = decoded as Partial<TokenClaims>;
      if (!claims.principal || !Array.isArray(claims.access)) throw new Error('token lacks principal or access');
      return { principal: claims.principal, access: claims.access };
    } catch (err) {
      throw new RegistryError('UNAUTHORIZED', `invalid token: ${(err as Error).message}`);
    }
  }
}
