import {
  contentLength,
  linkNext,
  parseContentRange,
  rateLimitRemaining,
  retryAfterSeconds,
  viaHasToken,
  viaReceivedBy,
} from '../../src/upstream/response-headers';

describe('rateLimitRemaining', () => {
  it('reads Docker Hub\'s "97;w=21600" form and plain numbers', () => {
    expect(rateLimitRemaining({ 'ratelimit-remaining': '97;w=21600' })).toBe(97);
    expect(rateLimitRemaining({ 'ratelimit-remaining': '0;w=21600' })).toBe(0);
    expect(rateLimitRemaining({ 'ratelimit-remaining': ' 12 ' })).toBe(12);
  });

  it('reads the combined RateLimit field and ignores garbage', () => {
    expect(rateLimitRemaining({ ratelimit: 'limit=100, remaining=42, reset=50' })).toBe(42);
    expect(rateLimitRemaining({ 'ratelimit-remaining': 'lots' })).toBeUndefined();
    expect(rateLimitRemaining({})).toBeUndefined();
  });
});

describe('parseContentRange', () => {
  it('parses complete and unknown-length ranges', () => {
    expect(parseContentRange('bytes 100-199/1000')).toEqual({ start: 100, end: 199, total: 1000 });
    expect(parseContentRange('bytes 0-9/*')).toEqual({ start: 0, end: 9, total: undefined });
  });

  it('refuses malformed or inconsistent ranges', () => {
    expect(parseContentRange(undefined)).toBeNull();
    expect(parseContentRange('bytes 10-5/100')).toBeNull();
    expect(parseContentRange('bytes 0-100/100')).toBeNull();
    expect(parseContentRange('items 0-1/2')).toBeNull();
    expect(parseContentRange('bytes */100')).toBeNull();
  });
});

describe('Via', () => {
  it('finds our token among hops, ignoring comments and case', () => {
    expect(viaReceivedBy('1.1 Entrepot-A (Entrepot/1.0), 1.0 squid')).toEqual(['Entrepot-A', 'squid']);
    expect(viaHasToken('1.1 entrepot-a (x, y), 1.1 other', 'ENTREPOT-A')).toBe(true);
    expect(viaHasToken('1.1 entrepot-ab', 'entrepot-a')).toBe(false);
    expect(viaHasToken(undefined, 'entrepot-a')).toBe(false);
  });
});

describe('other headers', () => {
  it('reads Retry-After as seconds or as an HTTP date', () => {
    const now = Date.parse('2026-01-01T00:00:00Z');
    expect(retryAfterSeconds({ 'retry-after': '7' }, now)).toBe(7);
    expect(retryAfterSeconds({ 'retry-after': 'Thu, 01 Jan 2026 00:00:30 GMT' }, now)).toBe(30);
    expect(retryAfterSeconds({ 'retry-after': 'soon' }, now)).toBeUndefined();
  });

  it('reads Content-Length and Link rel=next', () => {
    expect(contentLength({ 'content-length': '123' })).toBe(123);
    expect(contentLength({ 'content-length': '-1' })).toBeUndefined();
    const next = linkNext('</v2/a/tags/list?n=2&last=b>; rel="next"', new URL('https://r.example/v2/a/tags/list?n=2'));
    expect(next?.href).toBe('https://r.example/v2/a/tags/list?n=2&last=b');
    expect(linkNext('<https://x/>; rel="prev"', new URL('https://r.example/'))).toBeNull();
  });
});
