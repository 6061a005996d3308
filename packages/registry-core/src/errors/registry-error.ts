/**
 * The one error type of Entrepot. Every failure a client may see is a
 * RegistryError carrying an OCI-style string code; `http/error-handler.ts`
 * maps codes to HTTP status and the response envelope in one place.
 */
export const ERROR_STATUS = {
  // OCI distribution-spec codes
  BLOB_UNKNOWN: 404,
  BLOB_UPLOAD_INVALID: 400,
  BLOB_UPLOAD_UNKNOWN: 404,
  DIGEST_INVALID: 400,
  MANIFEST_BLOB_UNKNOWN: 404,
  MANIFEST_INVALID: 400,
  MANIFEST_UNKNOWN: 404,
  NAME_INVALID: 400,
  NAME_UNKNOWN: 404,
  SIZE_INVALID: 400,
  UNAUTHORIZED: 401,
  DENIED: 403,
  UNSUPPORTED: 415,
  TOOMANYREQUESTS: 429,
  // Entrepot additions used by both /v2 and /api/v1
  RANGE_INVALID: 416,
  TOO_LARGE: 413,
  UNAVAILABLE: 503,
  INVALID_REQUEST: 400,
  NOT_FOUND: 404,
  CONFLICT: 409,
  METHOD_NOT_ALLOWED: 405,
  FEATURE_DISABLED: 404,
  INTERNAL: 500,
} as const;

export type ErrorCode = keyof typeof ERROR_STATUS;

export interface RegistryErrorOptions {
  /** Overrides the status implied by the code (e.g. MANIFEST_INVALID as 413). */
  status?: number;
  detail?: unknown;
  /** Extra response headers, e.g. Retry-After or WWW-Authenticate. */
  headers?: Record<string, string>;
  cause?: unknown;
}

export class RegistryError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  readonly detail: unknown;
  readonly headers: Record<string, string>;

  constructor(code: ErrorCode, message: string, options: RegistryErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'RegistryError';
    this.code = code;
    this.status = options.status ?? ERROR_STATUS[code];
    this.detail = options.detail;
    this.headers = options.headers ?? {};
  }
}

export function isRegistryError(err: unknown): err is RegistryError {
  return err instanceof RegistryError;
}

/** Shorthand for the common 400 on a bad API field. */
export function invalidField(field: string, message: string): RegistryError {
  return new RegistryError('INVALID_REQUEST', `${field}: ${message}`, { detail: { field } });
}
