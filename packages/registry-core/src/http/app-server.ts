import { createServer as createHttpServer, type Server } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { Express } from 'express';
import { appPrototypeClasses } from '../runtime/app-prototypes';
import { knobOn } from '../runtime/knobs';

export interface TlsFiles {
  cert: Buffer;
  key: Buffer;
}

/**
 * An HTTP(S) server for the Express app whose request and response objects are
 * created with the app's prototypes (runtime/app-prototypes.ts).
 */
export function createAppServer(app: Express, tls?: TlsFiles): Server {
  if (!knobOn('APP_PROTOTYPES')) return tls ? createHttpsServer(tls, app) : createHttpServer(app);
  const classes = appPrototypeClasses(app);
  return tls ? createHttpsServer({ ...tls, ...classes }, app) : createHttpServer(classes, app);
}
