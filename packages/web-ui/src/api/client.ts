/** HTTP transport to `/api/v1` with Basic credentials, and the error type every call rejects with. */

export interface Credentials {
  username: string;
  password: string;
}

/** A failed call: the HTTP status (0 when the server was unreachable) and the server's message. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
    /** Quay's `error_type`, e.g. `not_found`, `feature_disabled`. */
    readonly type: string | null = null,
  ) {
    super(message);
    this.name = 'ApiError';
  }

  /** The server has no such endpoint (a feature that this server version does not have yet). */
  get endpointMissing(): boolean {
    return this.status === 404 && (this.message.startsWith('no API endpoint') || this.type === 'feature_disabled');
  }
}

export type QueryValue = string | number | boolean | undefined;

export interface RequestOptions {
  query?: Record<string, QueryValue>;
  body?: unknown;
  /** Read the body as text (CSV) instead of JSON. */
  text?: boolean;
}

function encodeCredentials(creds: Credentials): string {
  const bytes = new TextEncoder().encode(`${creds.username}:${creds.password}`);
  let binary = '';
  for (const b of bytes) binary += String.fromCharCode(b);
  return `Basic ${btoa(binary)}`;
}

/** Encodes each component of a repository path, keeping its slashes. */
export function encodePath(name: string): string {
  return name.split('/').map(encodeURIComponent).join('/');
}

export class ApiClient {
  private readonly authorization: string;

  constructor(
    readonly credentials: Credentials,
    private readonly base = '/api/v1',
    /** Called on a 401 (credentials no longer valid). */
    private readonly onUnauthorized: () => void = () => undefined,
  ) {
    this.authorization = encodeCredentials(credentials);
  }

  /** Resolves with the parsed JSON (or text, or null for 204); rejects with ApiError for non-2xx answers. */
  async request(method: string, path: string, options: RequestOptions = {}): Promise<unknown> {
    const params = new URLSearchParams();
    for (const [key, value] of Object.entries(options.query ?? {})) {
      if (value !== undefined && value !== '') params.set(key, String(value));
    }
    const qs = params.toString();
    const headers: Record<string, string> = { authorization: this.authorization, accept: options.text ? 'text/csv, */*' : 'application/json' };
    if (options.body !== undefined) headers['content-type'] = 'application/json';
    let res: Response;
    try {
      res = await fetch(`${this.base}${path}${qs ? `?${qs}` : ''}`, {
        method,
        headers,
        body: options.body === undefined ? undefined : JSON.stringify(options.body),
        credentials: 'omit',
        cache: 'no-store',
      });
    } catch {
      throw new ApiError(0, 'The server cannot be reached. Check your connection and try again.');
    }
    const text = await res.text();
    const isJson = (res.headers.get('content-type') ?? '').includes('json');
    let parsed: unknown = text;
    if (isJson && text) {
      try {
        parsed = JSON.parse(text);
      } catch {
        parsed = text;
      }
    }
    if (!res.ok) {
      const envelope = typeof parsed === 'object' && parsed !== null ? (parsed as { error_message?: unknown; error_type?: unknown }) : {};
      const message = typeof envelope.error_message === 'string' ? envelope.error_message : `${res.status} ${res.statusText}`.trim();
      if (res.status === 401) this.onUnauthorized();
      throw new ApiError(res.status, message, typeof envelope.error_type === 'string' ? envelope.error_type : null);
    }
    if (res.status === 204 || text === '') return null;
    return options.text ? text : parsed;
  }
}

/** Signs in: checks the credentials against `GET /user/` without keeping them. */
export async function verifyCredentials(creds: Credentials, base = '/api/v1'): Promise<unknown> {
  return new ApiClient(creds, base).request('GET', '/user/');
}
