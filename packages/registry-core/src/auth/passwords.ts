import { hash, verify } from '@node-rs/argon2';
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';

/** Argon2id password hashing (OWASP's recommended parameters by default). */
export class PasswordHasher {
  constructor(private readonly memoryKib: number) {}

  hash(password: string): Promise<string> {
    return hash(password, { memoryCost: this.memoryKib, timeCost: 2, parallelism: 1 });
  }

  async verify(stored: string | null, password: string): Promise<boolean> {
    if (!stored) return false;
    try {
      return await verify(stored, password);
    } catch {
      return false;
    }
  }
}

/** Robot tokens are long random strings: a fast hash suffices and allows lookup by hash. */
export function newRobotToken(): string {
  return randomBytes(32).toString('base64url');
}

export function hashToken(token: string): string {
  return createHash('sha256').update(token).digest('hex');
}

export function tokenMatches(hashHex: string, token: string): boolean {
  const a = Buffer.from(hashHex, 'hex');
  const b = Buffer.from(hashToken(token), 'hex');
  return a.length === b.length && timingSafeEqual(a, b);
}
