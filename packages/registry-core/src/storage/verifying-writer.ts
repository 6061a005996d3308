import { Transform, TransformCallback } from 'node:stream';
import { RegistryError } from '../errors/registry-error';
import { createDigester, Digest, digestAlgorithm } from '../oci/digest';
import { Hash } from 'node:crypto';

/**
 * A pass-through stream that hashes and counts what flows through it. Call
 * `verify()` after the stream ended: it throws DIGEST_INVALID / SIZE_INVALID.
 */
export class DigestingStream extends Transform {
  private readonly hash: Hash;
  private readonly algorithm: string;
  bytes = 0;

  constructor(algorithm = 'sha256') {
    super();
    this.algorithm = algorithm;
    this.hash = createDigester(algorithm);
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    this.hash.update(chunk);
    this.bytes += chunk.length;
    done(null, chunk);
  }

  digest(): Digest {
    return `${this.algorithm}:${this.hash.digest('hex')}` as Digest;
  }

  verify(expected: Digest, expectedSize?: number): void {
    if (expectedSize !== undefined && expectedSize !== this.bytes) {
      throw new RegistryError('SIZE_INVALID', `expected ${expectedSize} bytes, received ${this.bytes}`);
    }
    const actual = this.digest();
    if (actual !== expected) {
      throw new RegistryError('DIGEST_INVALID', `content digest ${actual} does not match ${expected}`);
    }
  }
}

export function digestingStreamFor(expected: Digest): DigestingStream {
  return new DigestingStream(digestAlgorithm(expected));
}
