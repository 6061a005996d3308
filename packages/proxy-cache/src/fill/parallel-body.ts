import { performance, type EventLoopUtilization } from 'node:perf_hooks';
import { Readable } from 'node:stream';
import { isRecyclingStream } from '@entrepot/registry-core';
import { lendRecycling } from '../upstream/body-stream';
import { PieceDownload, nearlyThere, type RangeOpener } from './piece-download';

export interface ParallelBodyOptions {
  /** The fill's ordinary GET (from `offset` to the end): it supplies the first piece, and the whole body if Range turns out ignored. */
  first: { stream: Readable; size: number; offset: number };
  /** How long the first GET took to answer: the next piece is asked for that long before the first piece ends. */
  firstAnsweredMs?: number;
  open: RangeOpener;
  pieceBytes: number;
  /** Connections at once, the first one included. */
  connections: number;
  isRetryable(err: unknown): boolean;
  maxPieceRetries?: number;
  onPieceBytes?(bytes: number): void;
  /** A piece download started (true) or ended (false). */
  onPieceActive?(active: boolean): void;
  /** The upstream answered a piece with the whole blob: the body goes on over the first connection alone. */
  onRangeIgnored?(): void;
  /**
   * Pieces start only once the first GET has delivered `bytes` (or its first
   * piece) at less than `belowBytesPerSecond`, while this process's event loop
   * was busy less than `busyAbove` of that time: a connection that outpaces
   * the fill, or fills the link, gains nothing from more, and pieces cost CPU
   * and memory. A slow pace measured by a saturated process is its own, not
   * the connection's (50 clients at once made a loopback GET look slow).
   */
  probe?: { bytes: number; belowBytesPerSecond: number; busyAbove: number };
  /** What the probe found: the first connection's pace, how busy the event loop was meanwhile, and whether pieces start. */
  onProbed?(bytesPerSecond: number, busy: number, pieces: boolean): void;
  /** Shared by the process's fills: pieces beyond the one the reader is on next start only while it has room. */
  budget?: { tryTake(bytes: number): boolean; give(bytes: number): void };
}

/**
 * The rest of a blob, in order, fetched as fixed-size pieces over several
 * connections: the first piece from the fill's own GET (cut once it has
 * delivered the piece, so no byte comes twice), the next ones with Range
 * requests, at most `connections` at once. A download that ends starts the
 * next piece at once; at most twice `connections` pieces wait in memory to be
 * read, so memory stays at a few pieces whatever the blob size and a slow
 * reader slows the downloads.
 * The fill hashes the bytes as they come out, in order, as for one stream.
 * Chunks pass through as they arrived, so when the first GET's body is in
 * reusable buffers this body is too (the pieces come over the same upstream
 * client, into the same buffers).
 */
export function parallelBody(options: ParallelBodyOptions): Readable {
  // Chunks as objects, like the upstream bodies: no concatenation when the fill's loop reads what is queued.
  const body = Readable.from(pieces(options), { highWaterMark: 16 });
  return isRecyclingStream(options.first.stream) ? lendRecycling(body, options.first.stream) : body;
}

async function* pieces(options: ParallelBodyOptions): AsyncGenerator<Buffer> {
  const { first, pieceBytes } = options;
  const size = first.size;
  const ahead: PieceDownload[] = [];
  let nextStart = first.offset + pieceBytes;
  let downloading = 0;
  /** Downloads whose next piece was already asked for: at most one at a time, so connections + 1 at most. */
  let overlapping = 0;
  let firstOpen = true;
  /** The fill's own GET holds one connection until the first piece has (nearly) arrived. */
  let firstHolds = true;
  let stopped = false;
  /** Pieces holding bytes of the shared budget, until the reader has taken them (or they are cancelled). */
  const budget = options.budget;
  const budgeted = new Set<PieceDownload>();
  const giveBack = (piece: PieceDownload): void => {
    if (budgeted.delete(piece)) budget?.give(piece.length);
  };
  const launch = (): void => {
    const connections = firstHolds ? options.connections - 1 : options.connections;
    while (!stopped && downloading < connections && ahead.length < 2 * options.connections && nextStart < size) {
      const length = pieceLength(size - nextStart, pieceBytes, options.connections);
      // The piece the reader is on next never waits for the budget, so every fill goes on.
      const readNext = !firstOpen && ahead.length === 0;
      const fromBudget = !readNext && budget !== undefined;
      if (fromBudget && !budget.tryTake(length)) break;
      downloading++;
      let released = false;
      const piece = new PieceDownload({
        start: nextStart,
        end: nextStart + length - 1,
        open: options.open,
        isRetryable: options.isRetryable,
        maxRetries: options.maxPieceRetries ?? 3,
        onActive: options.onPieceActive,
        onBytes: options.onPieceBytes,
        // The next piece is asked for while this one's last bytes arrive: no idle round trip between pieces.
        onNearlyDone: () => {
          if (overlapping > 0) return;
          released = true;
          overlapping++;
          downloading--;
          if (!stopped) launch();
        },
        onSettled: (complete) => {
          if (released) overlapping--;
          else downloading--;
          released = true;
          // A piece refused or failed is dealt with when it is read, not repeated further on.
          if (complete) launch();
        },
      });
      if (fromBudget) budgeted.add(piece);
      ahead.push(piece);
      nextStart += length;
    }
  };
  const cancelAhead = (reason: Error): void => {
    stopped = true;
    for (const piece of ahead.splice(0)) {
      piece.cancel(reason);
      giveBack(piece);
    }
  };
  try {
    const probe = options.probe;
    let probing = probe !== undefined;
    let probed = 0;
    if (!probing) launch();
    // The first piece: the first `pieceBytes` bytes of the ordinary body.
    const firstPiece = Math.min(pieceBytes, size - first.offset);
    let left = firstPiece;
    const body = first.stream[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
    let firstAt = -1;
    let loopAtFirst: EventLoopUtilization | undefined;
    while (left > 0) {
      const next = await body.next();
      if (next.done) return;
      const chunk = next.value;
      if (firstAt < 0) {
        firstAt = performance.now();
        loopAtFirst = performance.eventLoopUtilization();
      } else probed += chunk.length;
      if (probe && probing && (probed >= probe.bytes || chunk.length >= left)) {
        probing = false;
        // Bytes after the first chunk over the time since it came: the connection's pace, not its first answer.
        const rate = probed / Math.max(1e-6, (performance.now() - firstAt) / 1000);
        const busy = loopAtFirst ? performance.eventLoopUtilization(loopAtFirst).utilization : 0;
        const slow = rate < probe.belowBytesPerSecond && busy < probe.busyAbove;
        options.onProbed?.(rate, busy, slow);
        if (!slow) {
          yield chunk;
          for (let more = await body.next(); !more.done; more = await body.next()) yield more.value;
          return;
        }
        launch();
      }
      // Early only once a piece showed that the upstream honours Range (else the first GET carries everything).
      if (firstHolds && overlapping === 0 && ahead[0]?.answeredRanged === true && nearlyThere(left - chunk.length, firstPiece, firstPiece - left + chunk.length, performance.now() - firstAt, options.firstAnsweredMs ?? 0)) {
        firstHolds = false;
        overlapping++;
        launch();
      }
      if (chunk.length <= left) {
        left -= chunk.length;
        yield chunk;
        continue;
      }
      // The connection goes on past the piece: keep the rest only if Range turns out ignored.
      yield chunk.subarray(0, left);
      // A copy: the first part may be handed back for reuse before the rest is known to be needed.
      const rest = Buffer.from(chunk.subarray(left));
      left = 0;
      if (!(await honoured(ahead[0]))) {
        options.onRangeIgnored?.();
        cancelAhead(new Error('upstream ignores Range'));
        yield rest;
        for (let more = await body.next(); !more.done; more = await body.next()) yield more.value;
        return;
      }
    }
    if (ahead.length > 0 && !(await honoured(ahead[0]))) {
      options.onRangeIgnored?.();
      cancelAhead(new Error('upstream ignores Range'));
      for (let more = await body.next(); !more.done; more = await body.next()) yield more.value;
      return;
    }
    first.stream.destroy();
    firstOpen = false;
    if (firstHolds) firstHolds = false;
    else overlapping--;
    launch();
    while (ahead.length > 0) {
      const piece = ahead[0];
      yield* piece.take();
      ahead.shift();
      giveBack(piece);
      launch();
    }
  } finally {
    if (firstOpen) first.stream.destroy();
    cancelAhead(new Error('fill body closed'));
  }
}

/** Smallest piece worth a request of its own. */
const MIN_PIECE_BYTES = 1024 * 1024;

/**
 * The next piece's length: `pieceBytes`, except near the end, where what is
 * left is shared among the connections so they finish together instead of one
 * carrying the last whole piece alone.
 */
function pieceLength(left: number, pieceBytes: number, connections: number): number {
  if (left <= MIN_PIECE_BYTES) return left;
  return Math.min(left, pieceBytes, Math.max(MIN_PIECE_BYTES, Math.ceil(left / connections)));
}

/** Whether the piece's upstream answered 206; a piece that failed outright counts as honoured (its error surfaces when read). */
async function honoured(piece: PieceDownload | undefined): Promise<boolean> {
  if (!piece) return true;
  return piece.honoured.catch(() => true);
}
