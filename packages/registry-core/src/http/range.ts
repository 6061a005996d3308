import { RegistryError } from '../errors/registry-error';
import type { ByteRange } from '../storage/blob-store';

/**
 * Parses a single `Range: bytes=start-end` (or `start-`, or suffix `-n`) against
 * a blob of `size` bytes. Returns undefined for no header; throws RANGE_INVALID
 * (416, with `Content-Range: bytes * /size`) when it cannot be satisfied.
 */
export function parseRange(header: string | undefined, size: number): ByteRange | undefined {
  if (header === undefined) return undefined;
  const unsatisfiable = () =>
    new RegistryError('RANGE_INVALID', `range "${header.slice(0, 100)}" cannot be satisfied for ${size} bytes`, {
      headers: { 'Content-Range': `bytes */${size}` },
    });
  const match = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (!match || (match[1] === '' && match[2] === '')) throw unsatisfiable();
  let start: number;
  let end: number;
  if (match[1] === '') {
    const suffix = Number(match[2]);
    if (suffix === 0) throw unsatisfiable();
    start = Math.max(0, size - suffix);
    end = size - 1;
  } else {
    start = Number(match[1]);
    end = match[2] === '' ? size - 1 : Math.min(Number(match[2]), size - 1);
  }
  if (!Number.isSafeInteger(start) || !Number.isSafeInteger(end) || start > end || start >= size) throw unsatisfiable();
  return { start, end };
}
