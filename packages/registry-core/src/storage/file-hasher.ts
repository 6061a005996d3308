import { Worker } from 'node:worker_threads';
import { RegistryError } from '../errors/registry-error';
import { hashNameOf, type Digest } from '../oci/digest';

/** The digest of a file that is still being written, computed as its bytes land. */
export interface GrowingFileHash {
  /** The file's first `end` bytes are written and will not change: hash them. */
  advance(end: number): void;
  /** `algorithm:hex` of the file's first `end` bytes; rejects when they could not be read. */
  digest(end: number): Promise<Digest>;
  /** Nothing more will be asked (the download failed); releases the file. */
  abandon(): void;
}

export interface FileHasher {
  hashGrowingFile(path: string, algorithm: string): GrowingFileHash;
}

type Request =
  | { type: 'open'; id: number; path: string; hashName: string }
  | { type: 'advance'; id: number; end: number }
  | { type: 'digest'; id: number; end: number }
  | { type: 'abandon'; id: number };

type Reply = { id: number; hex: string } | { id: number; error: string };

interface PendingDigest {
  algorithm: string;
  resolve(digest: Digest): void;
  reject(err: Error): void;
}

/**
 * Hashes files on one worker thread, so SHA-256 of every byte a cache fill
 * receives takes a second core instead of the event loop (it was over a
 * quarter of the event loop's time in cold fills). The worker reads the bytes
 * back from the page cache right after they are written; the digest is then
 * of what is stored, not of what was received. The worker starts on first use,
 * never keeps the process alive, and is replaced if it dies.
 */
export class WorkerFileHasher implements FileHasher {
  private worker: Worker | null = null;
  private nextId = 1;
  private readonly waiting = new Map<number, PendingDigest>();

  hashGrowingFile(path: string, algorithm: string): GrowingFileHash {
    const hashName = hashNameOf(algorithm);
    const id = this.nextId++;
    this.post({ type: 'open', id, path, hashName });
    let finished = false;
    return {
      advance: (end) => {
        if (!finished) this.post({ type: 'advance', id, end });
      },
      digest: (end) => {
        finished = true;
        return new Promise<Digest>((resolve, reject) => {
          this.waiting.set(id, { algorithm, resolve, reject });
          this.post({ type: 'digest', id, end });
        });
      },
      abandon: () => {
        if (finished) return;
        finished = true;
        this.post({ type: 'abandon', id });
      },
    };
  }

  /** Stops the worker; digests still awaited fail. */
  async close(): Promise<void> {
    const worker = this.worker;
    this.worker = null;
    this.failWaiting('file hasher closed');
    if (worker) await worker.terminate();
  }

  private post(request: Request): void {
    this.running().postMessage(request);
  }

  private running(): Worker {
    if (this.worker) return this.worker;
    const worker = new Worker(`(${hashWorkerMain.toString()})();`, { eval: true, name: 'entrepot-file-hasher' });
    worker.unref();
    worker.on('message', (reply: Reply) => this.settle(reply));
    const lost = (reason: string): void => {
      if (this.worker !== worker) return;
      this.worker = null;
      this.failWaiting(reason);
    };
    worker.on('error', (err) => lost(`file hasher failed: ${err.message}`));
    worker.on('exit', (code) => lost(`file hasher exited with code ${code}`));
    this.worker = worker;
    return worker;
  }

  private settle(reply: Reply): void {
    const pending = this.waiting.get(reply.id);
    if (!pending) return;
    this.waiting.delete(reply.id);
    if ('hex' in reply) pending.resolve(`${pending.algorithm}:${reply.hex}` as Digest);
    else pending.reject(new RegistryError('INTERNAL', `hashing a stored file failed: ${reply.error}`));
  }

  private failWaiting(reason: string): void {
    const waiting = [...this.waiting.values()];
    this.waiting.clear();
    for (const pending of waiting) pending.reject(new RegistryError('INTERNAL', reason));
  }
}

/**
 * The worker's program. It runs from its source text in a fresh isolate, so it
 * must not refer to anything outside its own body. Requests arrive in order;
 * each session reads its file by position with one reused 1 MiB buffer.
 */
function hashWorkerMain(): void {
  /* eslint-disable @typescript-eslint/no-require-imports -- a worker started from source text has only `require` */
  const { parentPort } = require('node:worker_threads') as typeof import('node:worker_threads');
  const { openSync, readSync, closeSync } = require('node:fs') as typeof import('node:fs');
  const { createHash } = require('node:crypto') as typeof import('node:crypto');
  /* eslint-enable @typescript-eslint/no-require-imports */
  type Session = { fd: number; hash: import('node:crypto').Hash; hashed: number; error: string | null };
  const sessions = new Map<number, Session>();
  const buffer = Buffer.allocUnsafe(1024 * 1024);

  const hashUpTo = (session: Session, end: number): void => {
    if (session.error !== null) return;
    try {
      while (session.hashed < end) {
        const read = readSync(session.fd, buffer, 0, Math.min(buffer.length, end - session.hashed), session.hashed);
        if (read === 0) throw new Error(`file ends at ${session.hashed} bytes, ${end} expected`);
        session.hash.update(buffer.subarray(0, read));
        session.hashed += read;
      }
    } catch (err) {
      session.error = err instanceof Error ? err.message : String(err);
    }
  };
  const release = (id: number): void => {
    const session = sessions.get(id);
    sessions.delete(id);
    if (session && session.fd >= 0) closeSync(session.fd);
  };

  parentPort?.on('message', (request: Request) => {
    switch (request.type) {
      case 'open': {
        const session: Session = { fd: -1, hash: createHash(request.hashName), hashed: 0, error: null };
        try {
          session.fd = openSync(request.path, 'r');
        } catch (err) {
          session.error = err instanceof Error ? err.message : String(err);
        }
        sessions.set(request.id, session);
        return;
      }
      case 'advance': {
        const session = sessions.get(request.id);
        if (session) hashUpTo(session, request.end);
        return;
      }
      case 'digest': {
        const session = sessions.get(request.id);
        if (!session) {
          parentPort?.postMessage({ id: request.id, error: 'unknown hashing session' });
          return;
        }
        hashUpTo(session, request.end);
        if (session.error === null && session.hashed !== request.end) session.error = `hashed ${session.hashed} bytes, ${request.end} expected`;
        parentPort?.postMessage(session.error === null ? { id: request.id, hex: session.hash.digest('hex') } : { id: request.id, error: session.error });
        release(request.id);
        return;
      }
      case 'abandon':
        release(request.id);
        return;
    }
  });
}
