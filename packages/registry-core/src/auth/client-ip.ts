import type { Request } from 'express';

/** The client address as express computed it (honours `trust proxy` when configured). */
export function clientIp(req: Request): string {
  return req.ip ?? req.socket.remoteAddress ?? '';
}
