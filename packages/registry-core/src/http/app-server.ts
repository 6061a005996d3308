import { IncomingMessage, ServerResponse, createServer as createHttpServer, type Server } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { Socket } from 'node:net';
import type { Express } from 'express';

export interface TlsFiles {
  cert: Buffer;
  key: Buffer;
}

/**
 * An HTTP(S) server for the Express app whose request and response objects are
 * created with the app's prototypes. Express otherwise re-parents every request
 * and response with `Object.setPrototypeOf` as it enters the app, which leaves
 * V8 unable to optimise any later property access on them: measured on a
 * manifest GET, that costs about a third of the request's CPU. When the
 * prototype is already the app's, Express's call changes nothing.
 */
export function createAppServer(app: Express, tls?: TlsFiles): Server {
  if (process.env.KNOB_APP_PROTOTYPES === 'off') return tls ? createHttpsServer(tls, app) : createHttpServer(app);
  const classes = { IncomingMessage: appRequestClass(app), ServerResponse: appResponseClass(app) };
  return tls ? createHttpsServer({ ...tls, ...classes }, app) : createHttpServer(classes, app);
}

function appRequestClass(app: Express): typeof IncomingMessage {
  // A function constructor, not a class: the prototype must be the app's own object.
  function AppRequest(this: IncomingMessage, socket: Socket): void {
    IncomingMessage.call(this, socket);
  }
  AppRequest.prototype = app.request;
  return AppRequest as unknown as typeof IncomingMessage;
}

function appResponseClass(app: Express): typeof ServerResponse {
  function AppResponse(this: ServerResponse, req: IncomingMessage, options?: object): void {
    (ServerResponse as unknown as (this: ServerResponse, req: IncomingMessage, options?: object) => void).call(this, req, options);
  }
  AppResponse.prototype = app.response;
  return AppResponse as unknown as typeof ServerResponse;
}
