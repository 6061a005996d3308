/** A small client for Entrepot's `/api/v1`, used by the CLI. */

export interface ApiClientOptions {
  url: string;
  user?: string;
  password?: string;
  fetch?: typeof fetch;
}

/** A failed API call: the HTTP status and the server's `error_message`. */
export class ApiCallError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
    this.name = 'ApiCallError';
  }
}

export class ApiClient {
  private readonly base: string;
  private readonly authorization?: string;
  private readonly doFetch: typeof fetch;

  constructor(options: ApiClientOptions) {
    let parsed: URL;
    try {
      parsed = new URL(options.url);
    } catch {
      throw new ApiCallError(0, `--url: not a URL: ${options.url}`);
    }
    this.base = `${parsed.origin}${parsed.pathname.replace(/\/$/, '')}/api/v1`;
    if (options.user !== undefined) {
      this.authorization = `Basic ${Buffer.from(`${options.user}:${options.password ?? ''}`).toString('base64')}`;
    }
    this.doFetch = options.fetch ?? fetch;
  }

  /** Sends a request; resolves with the parsed JSON (or text), rejects with ApiCallError for non-2xx answers. */
  async call(method: string, path: string, body?: unknown): Promise<unknown> {
    const headers: Record<string, string> = { accept: 'application/json' };
    if (this.authorization) headers.authorization = this.authorization;
    if (body !== undefined) headers['content-type'] = 'application/json';
    let res: Response;
    try {
      res = await this.doFetch(`${this.base}${path}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
    } catch (err) {
      throw new ApiCallError(0, `cannot reach ${this.base}: ${(err as Error).message}`);
    }
    const text = await res.text();
    let parsed: unknown = text;
    if ((res.headers.get('content-type') ?? '').includes('json') && text) {
      try {
        parsed = JSON.parse(text);
      } catch {
        parsed = text;
      }
    }
    if (!res.ok) {
      const message = typeof parsed === 'object' && parsed !== null && 'error_message' in parsed ? String((parsed as { error_message: unknown }).error_message) : text.slice(0, 500);
      throw new ApiCallError(res.status, `${method} ${path}: ${res.status} ${message}`);
    }
    return parsed;
  }
}

/** `org/path/to/repo` → the URL path segment `org/path/to/repo` with each component encoded. */
export function repoPath(name: string): string {
  return name.split('/').map(encodeURIComponent).join('/');
}
