/**
 * Readers for the upstream response headers the client relies on. Each
 * returns undefined (or null) for an absent or malformed value rather than
 * throwing; the caller decides whether the value was required.
 */
import type { IncomingHttpHeaders } from 'node:http';

/** The header as one string (repeated headers joined by ", "), or undefined. */
export function headerValue(headers: IncomingHttpHeaders, name: string): string | undefined {
  const value = headers[name.toLowerCase()];
  if (value === undefined) return undefined;
  return Array.isArray(value) ? value.join(', ') : value;
}

/** The header's values as a list (one entry per header line), or []. */
export function headerValues(headers: IncomingHttpHeaders, name: string): string[] {
  const value = headers[name.toLowerCase()];
  if (value === undefined) return [];
  return Array.isArray(value) ? value : [value];
}

/** A non-negative integer Content-Length, or undefined. */
export function contentLength(headers: IncomingHttpHeaders): number | undefined {
  const raw = headerValue(headers, 'content-length');
  if (raw === undefined || !/^\d{1,16}$/.test(raw.trim())) return undefined;
  return Number(raw.trim());
}

/**
 * `RateLimit-Remaining` as Docker Hub sends it (`97;w=21600`), or a plain
 * number; also the combined IETF draft field `RateLimit: limit=100, remaining=97`.
 */
export function rateLimitRemaining(headers: IncomingHttpHeaders): number | undefined {
  const remaining = headerValue(headers, 'ratelimit-remaining');
  if (remaining !== undefined) {
    const m = /^\s*(\d+)\s*(?:[;,].*)?$/.exec(remaining);
    return m ? Number(m[1]) : undefined;
  }
  const combined = headerValue(headers, 'ratelimit');
  if (combined !== undefined) {
    const m = /(?:^|[,;\s])r(?:emaining)?=(\d+)/i.exec(combined);
    return m ? Number(m[1]) : undefined;
  }
  return undefined;
}

/**
 * `Retry-After` in whole seconds (delta-seconds or an HTTP date relative to
 * `nowMs`), or undefined when absent or malformed.
 */
export function retryAfterSeconds(headers: IncomingHttpHeaders, nowMs: number): number | undefined {
  const raw = headerValue(headers, 'retry-after')?.trim();
  if (!raw) return undefined;
  if (/^\d{1,10}$/.test(raw)) return Number(raw);
  const at = Date.parse(raw);
  if (Number.isNaN(at)) return undefined;
  return Math.max(0, Math.ceil((at - nowMs) / 1000));
}

export interface ContentRange {
  start: number;
  end: number;
  /** Total size, or undefined for `*`. */
  total: number | undefined;
}

/** Parses `bytes <start>-<end>/<total|*>`; null when malformed or inconsistent. */
export function parseContentRange(value: string | undefined): ContentRange | null {
  if (value === undefined) return null;
  const m = /^\s*bytes\s+(\d{1,16})-(\d{1,16})\/(\d{1,16}|\*)\s*$/i.exec(value);
  if (!m) return null;
  const start = Number(m[1]);
  const end = Number(m[2]);
  const total = m[3] === '*' ? undefined : Number(m[3]);
  if (end < start || (total !== undefined && end >= total)) return null;
  return { start, end, total };
}

/** The media type of a Content-Type value without parameters, lower-cased; '' when absent. */
export function mediaTypeOf(headers: IncomingHttpHeaders): string {
  const raw = headerValue(headers, 'content-type') ?? '';
  return raw.split(';')[0].trim().toLowerCase();
}

/**
 * Splits a `Via` header into its entries and returns the `received-by` part of
 * each (`1.1 entrepot-a (comment), 1.0 proxy` → [`entrepot-a`, `proxy`]).
 */
export function viaReceivedBy(value: string | undefined): string[] {
  if (!value) return [];
  const withoutComments = value.replace(/\([^)]*\)/g, '');
  return withoutComments
    .split(',')
    .map((entry) => entry.trim().split(/\s+/))
    .filter((parts) => parts.length >= 2)
    .map((parts) => parts[1]);
}

/** True when a `Via` header names `token` as one of its hops (case-insensitive). */
export function viaHasToken(value: string | undefined, token: string): boolean {
  const wanted = token.toLowerCase();
  return viaReceivedBy(value).some((hop) => hop.toLowerCase() === wanted);
}

/**
 * The `rel="next"` target of a `Link` header (`<url>; rel="next"`), resolved
 * against `base`, or null.
 */
export function linkNext(value: string | undefined, base: URL): URL | null {
  if (!value) return null;
  const re = /<([^>]*)>\s*((?:;\s*[a-zA-Z*]+\s*=\s*(?:"[^"]*"|[^;,\s]*)\s*)*)/g;
  for (let m = re.exec(value); m; m = re.exec(value)) {
    const rel = /;\s*rel\s*=\s*(?:"([^"]*)"|([^;,\s]*))/i.exec(m[2]);
    const rels = (rel?.[1] ?? rel?.[2] ?? '').toLowerCase().split(/\s+/);
    if (rels.includes('next')) {
      try {
        return new URL(m[1], base);
      } catch {
        return null;
      }
    }
  }
  return null;
}
