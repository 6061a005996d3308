import type { NextFunction, Request, RequestHandler, Response } from 'express';

/** Sends a handler's rejection to the error handler instead of leaving it unhandled. */
export function asyncHandler(handler: (req: Request, res: Response, next: NextFunction) => Promise<unknown>): RequestHandler {
  return (req, res, next) => {
    handler(req, res, next).catch(next);
  };
}
