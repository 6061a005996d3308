import { Readable } from 'node:stream';
import { PieceDownload, type RangeOpener } from './piece-download';

export interface ParallelBodyOptions {
  /** The fill's ordinary GET (from `offset` to the end): it supplies the first piece, and the whole body if Range turns out ignored. */
  first: { stream: Readable; size: number; offset: number };
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
 */
export function parallelBody(options: ParallelBodyOptions): Readable {
  return Readable.from(pieces(options), { objectMode: false, highWaterMark: 1024 * 1024 });
}

async function* pieces(options: ParallelBodyOptions): AsyncGenerator<Buffer> {
  const { first, pieceBytes } = options;
  const size = first.size;
  const ahead: PieceDownload[] = [];
  let nextStart = first.offset + pieceBytes;
  let downloading = 0;
  let firstOpen = true;
  let stopped = false;
  const launch = (): void => {
    // The fill's own GET holds one connection until the first piece is read.
    const connections = firstOpen ? options.connections - 1 : options.connections;
    while (!stopped && downloading < connections && ahead.length < 2 * options.connections && nextStart < size) {
      downloading++;
      ahead.push(
        new PieceDownload({
          start: nextStart,
          end: Math.min(size, nextStart + pieceBytes) - 1,
          open: options.open,
          isRetryable: options.isRetryable,
          maxRetries: options.maxPieceRetries ?? 3,
          onActive: options.onPieceActive,
          onBytes: options.onPieceBytes,
          onSettled: (complete) => {
            downloading--;
            // A piece refused or failed is dealt with when it is read, not repeated further on.
            if (complete) launch();
          },
        }),
      );
      nextStart += pieceBytes;
    }
  };
  const cancelAhead = (reason: Error): void => {
    stopped = true;
    for (const piece of ahead.splice(0)) piece.cancel(reason);
  };
  try {
    launch();
    // The first piece: the first `pieceBytes` bytes of the ordinary body.
    let left = Math.min(pieceBytes, size - first.offset);
    const body = first.stream[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
    while (left > 0) {
      const next = await body.next();
      if (next.done) return;
      const chunk = next.value;
      if (chunk.length <= left) {
        left -= chunk.length;
        yield chunk;
        continue;
      }
      // The connection goes on past the piece: keep the rest only if Range turns out ignored.
      yield chunk.subarray(0, left);
      const rest = chunk.subarray(left);
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
    launch();
    while (ahead.length > 0) {
      const piece = ahead[0];
      yield* piece.take();
      ahead.shift();
      launch();
    }
  } finally {
    if (firstOpen) first.stream.destroy();
    cancelAhead(new Error('fill body closed'));
  }
}

/** Whether the piece's upstream answered 206; a piece that failed outright counts as honoured (its error surfaces when read). */
async function honoured(piece: PieceDownload | undefined): Promise<boolean> {
  if (!piece) return true;
  return piece.honoured.catch(() => true);
}
