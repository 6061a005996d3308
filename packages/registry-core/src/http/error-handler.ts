import type { ErrorRequestHandler, Request } from 'express';
import { isRegistryError, RegistryError } from '../errors/registry-error';
import type { Logger } from '../logging/logger';

function isRegistryPath(req: Request): boolean {
  return req.path === '/v2' || req.path.startsWith('/v2/');
}

/** Errors thrown by body parsers and express itself, mapped to client errors. */
function fromFrameworkError(err: unknown): RegistryError | null {
  const e = err as { type?: string; status?: number; statusCode?: number; message?: string };
  if (e?.type === 'entity.parse.failed') return new RegistryError('INVALID_REQUEST', 'request body is not valid JSON');
  if (e?.type === 'entity.too.large') return new RegistryError('TOO_LARGE', 'request body too large');
  if (e?.type === 'request.aborted') return new RegistryError('INVALID_REQUEST', 'request aborted by the client');
  const status = e?.status ?? e?.statusCode;
  if (typeof status === 'number' && status >= 400 && status < 500) {
    return new RegistryError('INVALID_REQUEST', e.message ?? 'bad request', { status });
  }
  if (err instanceof URIError) return new RegistryError('INVALID_REQUEST', 'malformed URL encoding');
  return null;
}

/** Connection failures of a backend (database, Redis, S3) that a retry may outlive. */
const BACKEND_DOWN_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'PROTOCOL_CONNECTION_LOST', 'ER_SERVER_SHUTDOWN', 'ER_CON_COUNT_ERROR']);

/**
 * A backend that is down or restarting (the database refusing or dropping
 * connections, the pool unable to get one) is a temporary condition, not a
 * bug: 503 with Retry-After, logged in one line rather than with a stack.
 */
function backendUnavailable(err: unknown): RegistryError | null {
  const e = err as { code?: unknown; name?: unknown; fatal?: unknown } | null;
  // mysql2 marks errors of a connection that is gone as fatal (some carry no code,
  // e.g. a transaction's ROLLBACK on a connection the restarting server closed).
  const down = (typeof e?.code === 'string' && BACKEND_DOWN_CODES.has(e.code)) || e?.name === 'KnexTimeoutError' || e?.fatal === true;
  if (!down) return null;
  return new RegistryError('UNAVAILABLE', 'a backend service is unavailable; try again shortly', { headers: { 'Retry-After': '1' } });
}

/**
 * The one place errors become HTTP responses: the OCI `{"errors":[...]}` envelope
 * on /v2, Quay's `{error_message, error_type, status}` shape on /api/v1.
 * Unexpected errors are logged in full and reach clients as a generic message.
 */
export function errorHandler(logger: Logger): ErrorRequestHandler {
  return (err, req, res, _next) => {
    let error = isRegistryError(err) ? err : fromFrameworkError(err);
    if (!error) {
      error = backendUnavailable(err);
      if (error) logger.warn('backend unavailable', { requestId: res.locals.requestId, path: req.path, error: String(err) });
    }
    if (!error) {
      logger.error('unhandled error', { requestId: res.locals.requestId, path: req.path, error: err instanceof Error ? err.stack : String(err) });
      error = new RegistryError('INTERNAL', 'internal error; see the server log', { status: 500 });
    }
    if (res.headersSent) {
      // The body already started: all we can do is cut the connection so the client sees a failure.
      res.destroy(err instanceof Error ? err : undefined);
      return;
    }
    for (const [name, value] of Object.entries(error.headers)) res.setHeader(name, value);
    res.status(error.status);
    if (req.method === 'HEAD') {
      res.end();
      return;
    }
    if (isRegistryPath(req)) {
      res.json({ errors: [{ code: error.code, message: error.message, detail: error.detail ?? null }] });
    } else {
      res.json({ error_message: error.message, error_type: error.code.toLowerCase(), status: error.status, detail: error.detail ?? null });
    }
  };
}
