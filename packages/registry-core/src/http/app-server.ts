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
 * until the deadline cut them mid-body. While draining, every response not yet
 * begun closes its connection, and a connection idle between responses is
 * closed (the balancer retries a request refused that way on another replica,
 * as nothing was sent).
 */
export function createAppServer(app: Express, tls?: TlsFiles): AppServer {
  const server = createServerFor(app, tls);
  const inFlight = new Set<ServerResponse>();
  let draining = false;
  server.prependListener('request', (_req: IncomingMessage, res: ServerResponse) => {
    if (draining) {
      res.shouldKeepAlive = false;
      return;
    }
    inFlight.add(res);
    res.once('close', () => inFlight.delete(res));
  });
  return {
    server,
    async drain(deadlineMs) {
      draining = true;
      for (const res of inFlight) if (!res.headersSent) res.shouldKeepAlive = false;
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
