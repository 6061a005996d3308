import type { Request } from 'express';
import type { AuthResult } from '../auth/authenticator';
import type { LookupContext } from '../plugin/contract';
import type { RegistryPath } from './routes/v2/registry-path';

/** Per-request state set by middleware; handlers read it through the accessors below. */
export interface RequestState {
  requestId: string;
  auth?: AuthResult;
  /** Set on /v2/<name>/... routes once the name is resolved and authorized. */
  lookup?: LookupContext;
  registryPath?: RegistryPath;
}

declare module 'express-serve-static-core' {
  interface Request {
    entrepot: RequestState;
  }
}

export function lookupContext(req: Request): LookupContext {
  const ctx = req.entrepot.lookup;
  if (!ctx) throw new Error('registry route used without the repository middleware');
  return ctx;
}

export function registryPath(req: Request): RegistryPath {
  const path = req.entrepot.registryPath;
  if (!path) throw new Error('registry route used without the repository middleware');
  return path;
}
