import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { Express } from 'express';
import { appPrototypeClasses } from '../runtime/app-prototypes';
import { knobOn } from '../runtime/knobs';

export interface TlsFiles {
  cert: Buffer;
  key: Buffer;
}

/** The listening server of the Express app, and its graceful stop. */
export interface AppServer {
  readonly server: Server;
  /**
   * Stops accepting connections and resolves once every response in flight has
   * ended, cutting what remains after `deadlineMs`.
   */
  drain(deadlineMs: number): Promise<void>;
}

/**
 * An HTTP(S) server for the Express app whose request and response objects are
 * created with the app's prototypes (runtime/app-prototypes.ts).
 *
 * Node leaves a keep-alive connection open after `close()` and keeps serving
 * requests on it, so a load balancer's pooled connections would carry new pulls
 * until the deadline cut them mid-body. While draining, every response that
 * begins closes its connection, and a connection idle between responses (one
 * whose response in flight has ended, too) is closed within 100 ms; the
 * balancer retries a request refused that way on another replica, as nothing
 * was sent. Nothing is tracked per request before the drain: keeping each
 * response in a set until it closed cost about a fifth of the CPU of a cached
 * manifest request.
 */
export function createAppServer(app: Express, tls?: TlsFiles): AppServer {
  const server = createServerFor(app, tls);
  return {
    server,
    async drain(deadlineMs) {
      server.prependListener('request', (_req: IncomingMessage, res: ServerResponse) => {
        res.shouldKeepAlive = false;
      });
      const closed = new Promise<void>((done) => server.close(() => done()));
      const idle = setInterval(() => server.closeIdleConnections(), 100);
      const cut = setTimeout(() => server.closeAllConnections(), deadlineMs);
      try {
        await closed;
      } finally {
        clearInterval(idle);
        clearTimeout(cut);
      }
    },
  };
}

function createServerFor(app: Express, tls?: TlsFiles): Server {
  if (!knobOn('APP_PROTOTYPES')) return tls ? createHttpsServer(tls, app) : createHttpServer(app);
  const classes = appPrototypeClasses(app);
  return tls ? createHttpsServer({ ...tls, ...classes }, app) : createHttpServer(classes, app);
}
