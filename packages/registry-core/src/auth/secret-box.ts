import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const VERSION = 'v1';

/** Encrypts secrets at rest (upstream credentials) with AES-256-GCM. */
export class SecretBox {
  private constructor(private readonly key: Buffer) {}

  static fromBase64(keyBase64: string): SecretBox {
    const key = Buffer.from(keyBase64, 'base64');
    if (key.length !== 32) throw new Error('secret_key must be 32 bytes, base64-encoded (openssl rand -base64 32)');
    return new SecretBox(key);
  }

  /** Uses the configured key, or one generated once into the data directory (embedded mode). */
  static load(secretKey: string | undefined, dataDir: string): SecretBox {
    if (secretKey) return SecretBox.fromBase64(secretKey);
    const path = join(dataDir, 'secret.key');
    if (!existsSync(path)) {
      mkdirSync(dataDir, { recursive: true });
      writeFileSync(path, randomBytes(32).toString('base64'), { mode: 0o600, flag: 'wx' });
    }
    return SecretBox.fromBase64(readFileSync(path, 'utf8').trim());
  }

  encrypt(plaintext: string): string {
    const iv = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', this.key, iv);
    const body = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
    return `${VERSION}:${Buffer.concat([iv, cipher.getAuthTag(), body]).toString('base64')}`;
  }

  /** Throws when the value was not produced with this key. */
  decrypt(sealed: string): string {
    if (!sealed.startsWith(`${VERSION}:`)) throw new Error('unsupported secret format');
    const raw = Buffer.from(sealed.slice(VERSION.length + 1), 'base64');
    const decipher = createDecipheriv('aes-256-gcm', this.key, raw.subarray(0, 12));
    decipher.setAuthTag(raw.subarray(12, 28));
    return Buffer.concat([decipher.update(raw.subarray(28)), decipher.final()]).toString('utf8');
  }
}
