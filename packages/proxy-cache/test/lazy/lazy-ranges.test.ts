/**
 * Lazy pulling through the cache: Range requests for blobs not cached yet
 * (the pattern of eStargz / SOCI / Nydus snapshotters) answered from ranged
 * upstream GETs while the whole blob is filled once in the background, with
 * the upstream behind a relay that gives all its traffic 20 MB/s.
 */
import { metricValue, storedBlob } from '../faults/fault-fixture';
import { scatteredChunks, startLazyFixture, type LazyFixture, type RangeAnswer } from './lazy-fixture';
import { eventually } from '../../../../testing/tools';

const MiB = 1024 * 1024;
const RATE = 20 * 1000 * 1000;

describe('Range requests for blobs not cached yet', () => {
  let lf: LazyFixture;

  // One connection per fill here: the background fill shows as one whole GET.
  beforeAll(async () => {
    lf = await startLazyFixture({ fill_connections: 1 });
  });

  afterAll(() => lf.stop());

  function expectPart(got: RangeAnswer, data: Buffer, start: number, end: number): void {
    expect(got.status).toBe(206);
    expect(got.contentRange).toBe(`bytes ${start}-${end}/${data.length}`);
    expect(got.body.length).toBe(end - start + 1);
    expect(got.body.equals(data.subarray(start, end + 1))).toBe(true);
  }

  /** GETs of one blob that Distribution answered whole (200), from its access log. */
  async function wholeGets(digest: string): Promise<number> {
    const log = await lf.fx.upstream.settledRequests();
    return log.filter((r) => r.method === 'GET' && r.path.endsWith(digest) && r.status === 200).length;
  }

  it('answers the tail, a table of contents, a mid-blob range and 30 scattered chunks of a cold 200 MB layer before the layer has arrived; then from storage', async () => {
    const relay = await lf.cacheOrg('lazy', 'total', RATE);
    const size = 200 * MiB;
    const { data, digest } = await lf.pushBlob('library/big', size);
    // The upstream's own time to first byte for the tail, through the same relay, before anything else runs on it.
    const direct = await lf.getDirect(relay.url, 'library/big', digest, 'bytes=-10240');
    expectPart(direct, data, size - 10240, size - 1);
    relay.resetLog();
    lf.fx.upstream.resetLog();

    const tail = await lf.get('lazy', 'library/big', digest, 'bytes=-10240');
    expectPart(tail, data, size - 10240, size - 1);
    // A figure for the reader, not an assertion (the machine is shared).
    console.log(`tail of a cold 200 MiB blob, 10 KiB: direct ${direct.ttfbMs.toFixed(0)} ms to the first byte, through Entrepot ${tail.ttfbMs.toFixed(0)} ms`);
    const tocStart = size - 10240 - 700_000;
    expectPart(await lf.get('lazy', 'library/big', digest, `bytes=${tocStart}-${size - 10241}`), data, tocStart, size - 10241);
    const mid = { start: 100 * MiB + 333, end: 101 * MiB + 4444 };
    expectPart(await lf.get('lazy', 'library/big', digest, `bytes=${mid.start}-${mid.end}`), data, mid.start, mid.end);
    const chunks = scatteredChunks(size, 30);
    const answers = await Promise.all(chunks.map((c) => lf.get('lazy', 'library/big', digest, `bytes=${c.start}-${c.end}`)));
    answers.forEach((got, i) => expectPart(got, data, chunks[i].start, chunks[i].end));
    const lastAnswerAt = Math.max(tail.doneAt, ...answers.map((a) => a.doneAt));

    // The whole blob is filled once in the background, verified and stored.
    await eventually(async () => (await storedBlob(lf.fx, digest)) !== null, 60_000);
    expect(await storedBlob(lf.fx, digest)).toEqual({ size, digest });
    // Every range was answered while that fill was still running.
    const whole = relay.requests().filter((r) => r.method === 'GET' && r.path.endsWith(digest) && r.range === undefined);
    expect(whole).toHaveLength(1);
    expect(whole[0].endedAt).toBeGreaterThan(lastAnswerAt);
    expect(await wholeGets(digest)).toBe(1);
    // The lazy ranges as sent; on a loaded machine the fill may also resume from where it stopped (`bytes=N-`), which is not one of them.
    const lazyRanges = relay.requests().filter((r) => r.method === 'GET' && r.path.endsWith(digest) && r.range !== undefined && !/^bytes=\d+-$/.test(r.range));
    expect(lazyRanges.length).toBeGreaterThanOrEqual(3);
    expect(await metricValue(lf.fx, 'entrepot_cache_fills_started_by_range_total', { org: 'lazy' })).toBe(1);
    expect(await metricValue(lf.fx, 'entrepot_upstream_range_requests_total', { org: 'lazy', purpose: 'lazy' })).toBe(lazyRanges.length);
    expect(await metricValue(lf.fx, 'entrepot_upstream_range_bytes_total', { org: 'lazy', purpose: 'lazy' })).toBeGreaterThan(0);
    expect(await metricValue(lf.fx, 'entrepot_cache_requests_total', { org: 'lazy', kind: 'blob', result: 'miss' })).toBe(1);

    // Once stored, the same ranges come from storage: nothing more upstream.
    relay.resetLog();
    const again = await Promise.all(chunks.map((c) => lf.get('lazy', 'library/big', digest, `bytes=${c.start}-${c.end}`)));
    again.forEach((got, i) => expectPart(got, data, chunks[i].start, chunks[i].end));
    expect(relay.requests().filter((r) => r.path.includes('/blobs/'))).toHaveLength(0);
  });

  it('sends a herd of 50 tail requests (`bytes=-N`) on a cold blob upstream at once as one ranged GET, alongside the one fill', async () => {
    const relay = await lf.cacheOrg('herd', 'total', RATE);
    const size = 200 * MiB;
    const { data, digest } = await lf.pushBlob('library/herd', size);
    // The upstream's own time to first byte for the tail, through the same relay, before anything else runs on it.
    const direct = await lf.getDirect(relay.url, 'library/herd', digest, 'bytes=-10240');
    expectPart(direct, data, size - 10240, size - 1);
    relay.resetLog();
    lf.fx.upstream.resetLog();

    const answers = await Promise.all(Array.from({ length: 50 }, () => lf.get('herd', 'library/herd', digest, 'bytes=-10240')));
    answers.forEach((got) => expectPart(got, data, size - 10240, size - 1));
    const ttfb = answers.map((a) => a.ttfbMs).sort((a, b) => a - b);
    // Figures for the reader, not assertions (the machine is shared).
    console.log(`tail of a cold 200 MiB blob, 10 KiB: direct ${direct.ttfbMs.toFixed(0)} ms; through Entrepot, 50 at once: first ${ttfb[0].toFixed(0)} ms, median ${ttfb[25].toFixed(0)} ms, last ${ttfb[49].toFixed(0)} ms`);

    // The tail went upstream as the suffix range itself, not after the fill's headers.
    const gets = relay.requests().filter((r) => r.method === 'GET' && r.path.endsWith(digest));
    expect(gets.filter((r) => r.range !== undefined).map((r) => r.range)).toEqual(['bytes=-10240']);
    // The fill starts once the tail's request is answered, so its GET may reach the upstream after the answers.
    await eventually(async () => (await storedBlob(lf.fx, digest)) !== null, 60_000);
    expect(relay.requests().filter((r) => r.method === 'GET' && r.path.endsWith(digest) && r.range === undefined)).toHaveLength(1);
    // Beside the one tail GET, only the fill: its whole-body GET, and on a loaded machine perhaps a resume from where it stopped.
    const after = relay.requests().filter((r) => r.method === 'GET' && r.path.endsWith(digest) && r.range !== undefined);
    expect(after.filter((r) => !/^bytes=\d+-$/.test(r.range!)).map((r) => r.range)).toEqual(['bytes=-10240']);
    expect(await wholeGets(digest)).toBe(1);
  });

  it('answers a cold blob\'s tail and a chunk from their own upstream requests while the fill\'s whole GET has not been answered', async () => {
    const relay = await lf.cacheOrg('beside', 'total', RATE);
    const size = 32 * MiB;
    const { data, digest } = await lf.pushBlob('library/beside', size);
    relay.holdWholeBlobs = true;

    expectPart(await lf.get('beside', 'library/beside', digest, 'bytes=-10240'), data, size - 10240, size - 1);
    const chunk = { start: 20 * MiB, end: 20 * MiB + 65535 };
    expectPart(await lf.get('beside', 'library/beside', digest, `bytes=${chunk.start}-${chunk.end}`), data, chunk.start, chunk.end);
    // The fill asked for the whole blob, and both answers came while that request was still held.
    const whole = relay.requests().filter((r) => r.method === 'GET' && r.path.endsWith(digest) && r.range === undefined);
    expect(whole).toHaveLength(1);
    expect(whole[0].status).toBe(0);
    expect(await metricValue(lf.fx, 'entrepot_cache_requests_total', { org: 'beside', kind: 'blob', result: 'miss' })).toBe(1);

    relay.releaseWholeBlobs();
    await eventually(async () => (await storedBlob(lf.fx, digest)) !== null, 30_000);
    expect(await storedBlob(lf.fx, digest)).toEqual({ size, digest });
  });

  it('answers a range just ahead of a slow fill from its own upstream request rather than waiting for the fill', async () => {
    const relay = await lf.cacheOrg('slowfill', 'total', 2 * 1000 * 1000);
    const size = 8 * MiB;
    const { data, digest } = await lf.pushBlob('library/slowfill', size);
    const whole = lf.get('slowfill', 'library/slowfill', digest);
    await eventually(async () => relay.delivered >= 2 * MiB, 10_000);
    // 1 MiB ahead of the fill: half a second away at 2 MB/s, against a few milliseconds for a ranged GET.
    const start = relay.delivered + MiB;
    expectPart(await lf.get('slowfill', 'library/slowfill', digest, `bytes=${start}-${start + 65535}`), data, start, start + 65535);
    const ranged = relay.requests().filter((r) => r.path.endsWith(digest) && r.range !== undefined);
    expect(ranged.map((r) => r.range)).toEqual([`bytes=${start}-${start + 65535}`]);
    const got = await whole;
    expect(got.status).toBe(200);
    expect(got.body.equals(data)).toBe(true);
    await eventually(async () => (await storedBlob(lf.fx, digest)) !== null, 20_000);
  });

  it('gives a position far into a range still arriving its own upstream request, and shares the range with one at its head', async () => {
    const relay = await lf.cacheOrg('farinto', 'total', 2 * 1000 * 1000);
    relay.holdWholeBlobs = true;
    const size = 16 * MiB;
    const { data, digest } = await lf.pushBlob('library/farinto', size);
    const first = lf.get('farinto', 'library/farinto', digest, `bytes=${4 * MiB}-${8 * MiB - 1}`);
    await eventually(async () => relay.delivered > 0, 10_000);
    // 2 MiB into that range: a second away at 2 MB/s. Its first byte: the range's own, a moment away.
    const far = 6 * MiB;
    const [farAnswer, headAnswer] = await Promise.all([
      lf.get('farinto', 'library/farinto', digest, `bytes=${far}-${far + 65535}`),
      lf.get('farinto', 'library/farinto', digest, `bytes=${4 * MiB}-${4 * MiB + 65535}`),
    ]);
    expectPart(farAnswer, data, far, far + 65535);
    expectPart(headAnswer, data, 4 * MiB, 4 * MiB + 65535);
    expectPart(await first, data, 4 * MiB, 8 * MiB - 1);
    const ranged = relay.requests().filter((r) => r.path.endsWith(digest) && r.range !== undefined).map((r) => r.range);
    expect(ranged.sort()).toEqual([`bytes=${4 * MiB}-${8 * MiB - 1}`, `bytes=${far}-${far + 65535}`]);
    relay.throttle(0);
    relay.releaseWholeBlobs();
    await eventually(async () => (await storedBlob(lf.fx, digest)) !== null, 30_000);
  });

  it('waits for a fill that has not answered yet when the upstream ignored a range', async () => {
    const relay = await lf.cacheOrg('ignoresheld', 'total', 100 * 1000 * 1000);
    relay.ignoreRange = true;
    relay.holdWholeBlobs = true;
    const size = 16 * MiB;
    const { data, digest } = await lf.pushBlob('library/ignoresheld', size);

    // A plain GET starts the fill, whose upstream GET is held; then a range comes.
    const whole = lf.get('ignoresheld', 'library/ignoresheld', digest);
    await eventually(async () => relay.requests().some((r) => r.path.endsWith(digest) && r.range === undefined), 10_000);
    const answer = lf.get('ignoresheld', 'library/ignoresheld', digest, 'bytes=8000000-8099999');
    // The range went upstream and came back whole, so it was dropped for the fill, which has not answered.
    await eventually(async () => relay.requests().some((r) => r.path.endsWith(digest) && r.range !== undefined && r.endedAt > 0), 10_000);
    relay.releaseWholeBlobs();
    expectPart(await answer, data, 8_000_000, 8_099_999);
    const got = await whole;
    expect(got.status).toBe(200);
    expect(got.body.equals(data)).toBe(true);
    await eventually(async () => (await storedBlob(lf.fx, digest)) !== null, 20_000);
  });

  it('with fill_on_range never, answers ranges from the upstream without downloading or storing the blob', async () => {
    const relay = await lf.cacheOrg('lazynever', 'total', RATE, { fill_on_range: 'never' });
    const size = 16 * MiB;
    const { data, digest } = await lf.pushBlob('library/never', size);

    expectPart(await lf.get('lazynever', 'library/never', digest, 'bytes=-4096'), data, size - 4096, size - 1);
    expectPart(await lf.get('lazynever', 'library/never', digest, 'bytes=5000000-5999999'), data, 5_000_000, 5_999_999);
    // A range inside one already fetched reads the kept bytes.
    expectPart(await lf.get('lazynever', 'library/never', digest, 'bytes=5100000-5199999'), data, 5_100_000, 5_199_999);

    const blobGets = relay.requests().filter((r) => r.method === 'GET' && r.path.endsWith(digest));
    expect(blobGets.map((r) => r.range)).toEqual(['bytes=-4096', 'bytes=5000000-5999999']);
    expect(await storedBlob(lf.fx, digest)).toBeNull();
    expect(await metricValue(lf.fx, 'entrepot_cache_fills_started_by_range_total', { org: 'lazynever' })).toBe(0);

    // A whole GET still fills and stores the blob.
    const whole = await lf.get('lazynever', 'library/never', digest);
    expect(whole.status).toBe(200);
    expect(whole.body.equals(data)).toBe(true);
    await eventually(async () => (await storedBlob(lf.fx, digest)) !== null, 10_000);
  });

  it('answers correct 206s from an upstream that ignores Range, filling from its whole body', async () => {
    const relay = await lf.cacheOrg('ignores', 'total', 100 * 1000 * 1000);
    relay.ignoreRange = true;
    const size = 24 * MiB;
    const { data, digest } = await lf.pushBlob('library/ignores', size);

    const [tail, mid] = await Promise.all([
      lf.get('ignores', 'library/ignores', digest, 'bytes=-10240'),
      lf.get('ignores', 'library/ignores', digest, 'bytes=12000000-12999999'),
    ]);
    expectPart(tail, data, size - 10240, size - 1);
    expectPart(mid, data, 12_000_000, 12_999_999);
    await eventually(async () => (await storedBlob(lf.fx, digest)) !== null, 20_000);
    expect(await storedBlob(lf.fx, digest)).toEqual({ size, digest });
    expect(await metricValue(lf.fx, 'entrepot_upstream_range_ignored_total', { org: 'ignores' })).toBeGreaterThanOrEqual(1);

    // Without a fill (fill_on_range never), the requested part is cut out of the whole body.
    const never = await lf.cacheOrg('ignoresnever', 'total', 100 * 1000 * 1000, { fill_on_range: 'never' });
    never.ignoreRange = true;
    const other = await lf.pushBlob('library/ignores2', 8 * MiB);
    expectPart(await lf.get('ignoresnever', 'library/ignores2', other.digest, 'bytes=3000000-3500000'), other.data, 3_000_000, 3_500_000);
    expectPart(await lf.get('ignoresnever', 'library/ignores2', other.digest, 'bytes=-100'), other.data, 8 * MiB - 100, 8 * MiB - 1);
    expect(await storedBlob(lf.fx, other.digest)).toBeNull();
  });
});
