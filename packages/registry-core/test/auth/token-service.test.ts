import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TokenService } from '../../src/auth/token-service';
import { createDb, migrate, type Db } from '../../src/db/database';
import { coreMigrations } from '../../src/db/migrations/core-migrations';
import type { Clock } from '../../src/services/clock';

describe('registry tokens', () => {
  const TTL_S = 300;
  let dir: string;
  let db: Db;
  let nowMs: number;
  const clock: Clock = { now: () => nowMs };
  let tokens: TokenService;
  const grant = () => [{ type: 'repository', name: 'hub/library/alpine', actions: ['pull'] }];

  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'entrepot-tokens-'));
    db = createDb({ database: { client: 'sqlite', filename: join(dir, 't.db') }, data_dir: dir });
    await migrate(db, coreMigrations);
    nowMs = Date.UTC(2026, 10, 29, 12, 0, 0);
    tokens = new TokenService(db, clock, TTL_S);
    await tokens.init();
  });

  afterEach(async () => {
    await db.destroy();
    rmSync(dir, { recursive: true, force: true });
  });

  it('accepts a token on every use inside its validity window and refuses it from its expiry on', () => {
    const { token } = tokens.issue({ kind: 'robot', id: 7, name: 'hub+ci', orgId: 3 }, grant(), 'registry');
    expect(tokens.verify(token)).toEqual({ principal: { kind: 'robot', id: 7, name: 'hub+ci', orgId: 3 }, access: grant() });
    nowMs += (TTL_S - 1) * 1000;
    expect(tokens.verify(token).principal).toEqual({ kind: 'robot', id: 7, name: 'hub+ci', orgId: 3 });
    nowMs += 1000;
    expect(() => tokens.verify(token)).toThrow(/invalid token: jwt expired/);
    nowMs += 3600 * 1000;
    expect(() => tokens.verify(token)).toThrow(/invalid token: jwt expired/);
  });

  it('refuses a token before its not-before time, also once it was accepted', () => {
    const { token } = tokens.issue({ kind: 'anonymous' }, grant(), 'registry');
    expect(tokens.verify(token).principal).toEqual({ kind: 'anonymous' });
    nowMs -= 60 * 1000;
    expect(() => tokens.verify(token)).toThrow(/invalid token: jwt not active/);
  });

  it('refuses altered tokens and tokens of another key, whatever was accepted before', async () => {
    const { token } = tokens.issue({ kind: 'user', id: 1, username: 'ana', isSuperuser: false }, grant(), 'registry');
    tokens.verify(token);
    const [header, payload, signature] = token.split('.');
    const claims = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as { principal: { isSuperuser: boolean } };
    claims.principal.isSuperuser = true;
    const altered = `${header}.${Buffer.from(JSON.stringify(claims)).toString('base64url')}.${signature}`;
    expect(() => tokens.verify(altered)).toThrow(/invalid token: invalid signature/);
    expect(() => tokens.verify(`${token.slice(0, -4)}AAAA`)).toThrow(/invalid token/);

    const otherDir = mkdtempSync(join(tmpdir(), 'entrepot-tokens-other-'));
    const otherDb = createDb({ database: { client: 'sqlite', filename: join(otherDir, 't.db') }, data_dir: otherDir });
    try {
      await migrate(otherDb, coreMigrations);
      const other = new TokenService(otherDb, clock, TTL_S);
      await other.init();
      const foreign = other.issue({ kind: 'user', id: 1, username: 'ana', isSuperuser: true }, grant(), 'registry').token;
      expect(() => tokens.verify(foreign)).toThrow(/invalid token: invalid signature/);
    } finally {
      await otherDb.destroy();
      rmSync(otherDir, { recursive: true, force: true });
    }
  });

  it('hands every request claims that no request can change for the next one', () => {
    const { token } = tokens.issue({ kind: 'robot', id: 7, name: 'hub+ci', orgId: 3 }, grant(), 'registry');
    const first = tokens.verify(token);
    expect(() => first.access[0].actions.push('push')).toThrow(TypeError);
    expect(() => Object.assign(first.principal, { orgId: 4 })).toThrow(TypeError);
    expect(tokens.verify(token)).toEqual({ principal: { kind: 'robot', id: 7, name: 'hub+ci', orgId: 3 }, access: grant() });
  });
});
