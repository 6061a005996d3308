import { IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { Express } from 'express';

/**
 * Request and response classes whose instances are born with the Express
 * app's prototypes, for Node's HTTP server options. Express otherwise
 * re-parents every request and response with `Object.setPrototypeOf` as it
 * enters the app, which leaves V8 unable to optimise any later property access
 * on them. When the prototype is already the app's, Express's call changes
 * nothing.
 */
export function appPrototypeClasses(app: Express): { IncomingMessage: typeof IncomingMessage; ServerResponse: typeof ServerResponse } {
  return { IncomingMessage: appRequestClass(app), ServerResponse: appResponseClass(app) };
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
