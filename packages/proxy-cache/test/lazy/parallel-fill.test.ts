/**
 * Parallel ranged fills: a blob above the threshold is fetched as fixed-size
 * pieces over several connections, in order, each byte once, with the
 * upstream behind a relay that caps each connection at 20 MB/s (as CDNs do).
 * How much faster that makes a cold pull is measured by the benchmark
 * (bench/, lazy-pull scenario); here the structure is checked.
 */
import { metricValue, storedBlob } from '../faults/fault-fixture';
import { startLazyFixture, type LazyFixture } from './lazy-fixture';
import type { RelayedRequest } from '../../../../testing/throttle-relay';
import { eventually } from '../../../../testing/tools';

const MiB = 1024 * 1024;
const PIECE = 8 * MiB;

describe('parallel ranged fills', () => {
  let lf: LazyFixture;

  // Pieces without the first GET's measurement, which a machine busy with other work can tip either way.
  beforeAll(async () => {
    lf = await startLazyFixture({ fill_connections: 4, fill_piece_bytes: PIECE, fill_parallel_threshold_bytes: 64 * MiB, fill_parallel: 'always' });
  });

  afterAll(() => lf.stop());

  function blobGets(requests: RelayedRequest[], digest: string): RelayedRequest[] {
    return requests.filter((r) => r.method === 'GET' && r.path.endsWith(digest));
  }

  /** The ranges follow one another without gap or overlap from `from` to `to` (exclusive). */
  function expectCovering(ranges: Array<{ start: number; end: number }>, from: number, to: number): void {
    let next = from;
    for (const r of ranges) {
      expect(r.start).toBe(next);
      next = r.end + 1;
    }
    expect(next).toBe(to);
  }

  function parseRange(range: string | undefined): { start: number; end: number } {
    const m = /^bytes=(\d+)-(\d+)$/.exec(range ?? '');
    if (!m) throw new Error(`not a closed range: ${range}`);
    return { start: Number(m[1]), end: Number(m[2]) };
  }

  it('fills a cold 200 MB layer as 8 MB pieces (shorter at the end) over 4 connections, each byte fetched once, byte-identical', async () => {
    const relay = await lf.cacheOrg('parallel', 'per-connection', 20 * 1000 * 1000);
    const size = 200 * MiB;
    const { data, digest } = await lf.pushBlob('library/big', size);

    const got = await lf.get('parallel', 'library/big', digest);
    expect(got.status).toBe(200);
    expect(got.body.length).toBe(size);
    expect(got.body.equals(data)).toBe(true);
    await eventually(async () => (await storedBlob(lf.fx, digest)) !== null, 30_000);
    expect(await storedBlob(lf.fx, digest)).toEqual({ size, digest });

    const gets = blobGets(relay.requests(), digest);
    // The fill's own GET supplies the first piece and is cut there.
    const whole = gets.filter((r) => r.range === undefined);
    expect(whole).toHaveLength(1);
    expect(whole[0].bytes).toBeGreaterThanOrEqual(PIECE);
    expect(whole[0].bytes).toBeLessThan(PIECE + 4 * MiB);
    // The rest as pieces, disjoint, covering the blob exactly once: 8 MB each, the last
    // ones shorter (the end shared among the connections so they finish together).
    const pieces = gets
      .filter((r) => r.range !== undefined)
      .map((r) => ({ ...parseRange(r.range), status: r.status, bytes: r.bytes }))
      .sort((a, b) => a.start - b.start);
    expectCovering(pieces, PIECE, size);
    pieces.forEach((p) => expect(p).toEqual({ start: p.start, end: p.end, status: 206, bytes: p.end - p.start + 1 }));
    expect(pieces.filter((p) => p.end - p.start + 1 === PIECE).length).toBeGreaterThanOrEqual(size / PIECE - 4);
    expect(pieces.every((p, i) => p.end - p.start + 1 >= MiB || i === pieces.length - 1)).toBe(true);
    const relayed = gets.reduce((sum, r) => sum + r.bytes, 0);
    expect(relayed - size).toBeLessThan(4 * MiB);
    // The pieces ran side by side: the connections allowed, plus one next piece asked for
    // while the last bytes of another still arrive (and the relay may notice the cut
    // first connection a moment after the next piece started).
    expect(relay.maxConcurrentBodies).toBeGreaterThanOrEqual(3);
    expect(relay.maxConcurrentBodies).toBeLessThanOrEqual(4 + 1 + 1);
    expect(await metricValue(lf.fx, 'entrepot_upstream_range_requests_total', { org: 'parallel', purpose: 'piece' })).toBe(pieces.length);
    expect(await metricValue(lf.fx, 'entrepot_upstream_range_bytes_total', { org: 'parallel', purpose: 'piece' })).toBe(size - PIECE);
    expect(await metricValue(lf.fx, 'entrepot_cache_fill_pieces_in_flight', {})).toBe(0);
  });

  it('retries a piece that fails alone, from where it broke', async () => {
    const relay = await lf.cacheOrg('pieceretry', 'per-connection', 40 * 1000 * 1000);
    const size = 96 * MiB;
    const { data, digest } = await lf.pushBlob('library/retry', size);
    relay.cutOnce = { rangeStart: 5 * PIECE, afterBytes: 3 * MiB };

    const got = await lf.get('pieceretry', 'library/retry', digest);
    expect(got.status).toBe(200);
    expect(got.body.equals(data)).toBe(true);

    const gets = blobGets(relay.requests(), digest).filter((r) => r.range !== undefined);
    const ranges = gets.map((r) => r.range);
    // Piece 5 was cut once and asked again from its first missing byte; no other piece was asked twice.
    const retried = gets.filter((r) => parseRange(r.range).end === 6 * PIECE - 1);
    expect(retried).toHaveLength(2);
    // (A reset drops what was still in flight, so Entrepot may have received less than the relay wrote.)
    const resumedAt = parseRange(retried[1].range).start;
    expect(resumedAt).toBeGreaterThan(5 * PIECE);
    expect(resumedAt).toBeLessThanOrEqual(5 * PIECE + retried[0].bytes);
    expect(new Set(ranges).size).toBe(ranges.length);
    expectCovering(
      gets.filter((r) => r !== retried[1]).map((r) => parseRange(r.range)).sort((a, b) => a.start - b.start),
      PIECE,
      size,
    );
    await eventually(async () => (await storedBlob(lf.fx, digest)) !== null, 30_000);
  });

  it('falls back to one connection when the upstream ignores Range', async () => {
    const relay = await lf.cacheOrg('noranges', 'per-connection', 40 * 1000 * 1000);
    relay.ignoreRange = true;
    const size = 80 * MiB;
    const { data, digest } = await lf.pushBlob('library/noranges', size);

    const got = await lf.get('noranges', 'library/noranges', digest);
    expect(got.status).toBe(200);
    expect(got.body.equals(data)).toBe(true);
    await eventually(async () => (await storedBlob(lf.fx, digest)) !== null, 30_000);
    expect(await storedBlob(lf.fx, digest)).toEqual({ size, digest });

    const gets = blobGets(relay.requests(), digest);
    // The fill's own GET carried the whole blob; the pieces asked for were answered 200 and dropped.
    const whole = gets.filter((r) => r.range === undefined);
    expect(whole).toHaveLength(1);
    expect(whole[0].bytes).toBe(size);
    expect(gets.length).toBeLessThanOrEqual(4);
    expect(await metricValue(lf.fx, 'entrepot_upstream_range_ignored_total', { org: 'noranges' })).toBeGreaterThanOrEqual(1);
  });
});

describe('when a parallel fill opens more connections', () => {
  let lf: LazyFixture;

  // Pieces only below 20 MB/s: an unthrottled loopback upstream is far above that even on a busy machine.
  beforeAll(async () => {
    lf = await startLazyFixture({ fill_connections: 4, fill_piece_bytes: PIECE, fill_parallel_threshold_bytes: 16 * MiB, fill_parallel_below_bytes_per_second: 20 * 1000 * 1000 });
  });

  afterAll(() => lf.stop());

  async function coldGet(org: string, rate: number): Promise<{ whole: number; ranged: number }> {
    const relay = await lf.cacheOrg(org, 'per-connection', rate);
    const size = 48 * MiB;
    const { data, digest } = await lf.pushBlob(`library/${org}`, size);
    const got = await lf.get(org, `library/${org}`, digest);
    expect(got.status).toBe(200);
    expect(got.body.equals(data)).toBe(true);
    await eventually(async () => (await storedBlob(lf.fx, digest)) !== null, 30_000);
    const gets = relay.requests().filter((r) => r.method === 'GET' && r.path.endsWith(digest));
    return { whole: gets.filter((r) => r.range === undefined).length, ranged: gets.filter((r) => r.range !== undefined).length };
  }

  it('keeps one connection for an upstream faster than the threshold', async () => {
    expect(await coldGet('fast', 0)).toEqual({ whole: 1, ranged: 0 });
  });

  it('adds ranged pieces when the fill\'s own connection is slower than the threshold', async () => {
    const counted = await coldGet('slow', 5 * 1000 * 1000);
    expect(counted.whole).toBe(1);
    expect(counted.ranged).toBeGreaterThanOrEqual(3);
  });
});

describe('pieces of all parallel fills together', () => {
  let lf: LazyFixture;
  const BUDGET = 2 * PIECE;

  beforeAll(async () => {
    lf = await startLazyFixture({ fill_connections: 4, fill_piece_bytes: PIECE, fill_parallel_threshold_bytes: 16 * MiB, fill_parallel: 'always', fill_pieces_max_bytes: BUDGET });
  });

  afterAll(() => lf.stop());

  it('stay within fill_pieces_max_bytes ahead of their readers, and every fill still completes', async () => {
    const relay = await lf.cacheOrg('budget', 'per-connection', 40 * 1000 * 1000);
    const blobs = [await lf.pushBlob('library/one', 64 * MiB), await lf.pushBlob('library/two', 64 * MiB)];
    let peak = 0;
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        peak = Math.max(peak, await metricValue(lf.fx, 'entrepot_cache_fill_piece_bytes_ahead', {}));
        await new Promise((r) => setTimeout(r, 20));
      }
    })();
    const got = await Promise.all(blobs.map((b, i) => lf.get('budget', `library/${['one', 'two'][i]}`, b.digest)));
    sampling = false;
    await sampler;
    got.forEach((g, i) => {
      expect(g.status).toBe(200);
      expect(g.body.equals(blobs[i].data)).toBe(true);
    });
    for (const b of blobs) await eventually(async () => (await storedBlob(lf.fx, b.digest)) !== null, 30_000);
    // Pieces ran ahead, but never more than the budget; two fills alone could have held 2 x 8 pieces.
    expect(peak).toBeGreaterThan(0);
    expect(peak).toBeLessThanOrEqual(BUDGET);
    // Streaming at once: the budget's pieces and, for each fill, the piece its reader is on; unbounded,
    // each fill's 5 connections could hold 8 MiB pieces (40 MiB each). Counted in bytes, not connections:
    // near a blob's end pieces shrink, so the same budget admits more (smaller) pieces at once.
    expect(relay.maxConcurrentRangedBytes).toBeGreaterThan(0);
    expect(relay.maxConcurrentRangedBytes).toBeLessThanOrEqual(BUDGET + 2 * PIECE);
    const ranged = relay.requests().filter((r) => r.method === 'GET' && r.range !== undefined);
    expect(ranged.length).toBeGreaterThan(2);
    expect(await metricValue(lf.fx, 'entrepot_cache_fill_piece_bytes_ahead', {})).toBe(0);
  });
});
