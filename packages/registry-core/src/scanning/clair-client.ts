import jwt from 'jsonwebtoken';
import type { ScannerSettings } from './scanner-config';

/** Clair's API as Entrepot uses it; field names as Clair (claircore) writes them. */
export interface ClairLayer {
  hash: string;
  uri: string;
  headers: Record<string, string[]>;
}

export interface ClairIndexReport {
  manifest_hash: string;
  state: string;
  success: boolean;
  err: string;
}

export interface ClairPackage {
  id: string;
  name: string;
  version: string;
  kind?: string;
  source?: ClairPackage;
  normalized_version?: unknown;
  arch?: string;
}

export interface ClairDistribution {
  id: string;
  did: string;
  name: string;
  version: string;
  version_id?: string;
  pretty_name?: string;
}

export interface ClairEnvironment {
  package_db: string;
  introduced_in: string;
  distribution_id: string;
}

export interface ClairVulnerability {
  id: string;
  updater: string;
  name: string;
  description: string;
  links: string;
  severity: string;
  normalized_severity: string;
  fixed_in_version: string;
  package?: { name: string } | null;
  distribution?: ClairDistribution | null;
  repository?: { name?: string; uri?: string } | null;
}

export interface ClairVulnerabilityReport {
  manifest_hash: string;
  packages: Record<string, ClairPackage> | null;
  distributions: Record<string, ClairDistribution> | null;
  environments: Record<string, ClairEnvironment[]> | null;
  vulnerabilities: Record<string, ClairVulnerability> | null;
  package_vulnerabilities: Record<string, string[]> | null;
}

/** Clair could not be reached (connection refused, reset, timed out): the work is retried, the manifest stays queued. */
export class ScannerUnreachableError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'ScannerUnreachableError';
  }
}

/** Clair answered with an error: counted towards marking the scan failed. */
export class ScannerResponseError extends Error {
  constructor(
    message: string,
    readonly status: number,
  ) {
    super(message);
    this.name = 'ScannerResponseError';
  }
}

const REQUEST_TIMEOUT_MS = 30_000;
/** Indexing downloads and unpacks every layer inside Clair's POST. */
const INDEX_TIMEOUT_MS = 15 * 60_000;
/** Longest Clair error text kept (it is stored and shown). */
const MAX_ERROR_TEXT = 500;

/**
 * Talks to Clair v4 (indexer and matcher APIs) with a fresh PSK-signed JWT on
 * every request (HS256, `iss: quay`, as Quay does). Throws
 * ScannerUnreachableError when Clair cannot be reached and
 * ScannerResponseError for any other failure.
 */
export class ClairClient {
  constructor(private readonly settings: Pick<ScannerSettings, 'indexerUrl' | 'matcherUrl' | 'psk'>) {}

  private authorization(): Record<string, string> {
    if (!this.settings.psk) return {};
    const token = jwt.sign({}, this.settings.psk, { algorithm: 'HS256', issuer: 'quay', expiresIn: 300, notBefore: -5 });
    return { Authorization: `Bearer ${token}` };
  }

  private async request(method: string, url: string, body: unknown, timeoutMs: number): Promise<{ status: number; etag: string | null; json: unknown }> {
    let response: Response;
    try {
      response = await fetch(url, {
        method,
        headers: { Accept: 'application/json', ...(body === undefined ? {} : { 'Content-Type': 'application/json' }), ...this.authorization() },
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: AbortSignal.timeout(timeoutMs),
      });
    } catch (err) {
      const cause = (err as { cause?: { code?: string; message?: string } }).cause;
      const reason = cause?.code ?? cause?.message ?? (err as Error).message;
      throw new ScannerUnreachableError(`Clair at ${new URL(url).origin} is unreachable (${reason})`, { cause: err });
    }
    const text = await response.text().catch(() => '');
    let json: unknown = null;
    try {
      json = text ? JSON.parse(text) : null;
    } catch {
      json = null;
    }
    if (response.status === 502 || response.status === 503 || response.status === 504) {
      throw new ScannerUnreachableError(`Clair at ${new URL(url).origin} is unavailable (HTTP ${response.status})`);
    }
    return { status: response.status, etag: response.headers.get('etag'), json };
  }

  private static failure(what: string, status: number, json: unknown): ScannerResponseError {
    const message = typeof json === 'object' && json !== null && 'message' in json ? String((json as { message: unknown }).message) : '';
    return new ScannerResponseError(`Clair ${what} failed: HTTP ${status}${message ? `: ${message.slice(0, MAX_ERROR_TEXT)}` : ''}`, status);
  }

  /** The indexer's state: changes when Clair's scanners change, meaning stored manifests should be indexed again. */
  async indexState(): Promise<string> {
    const { status, json } = await this.request('GET', `${this.settings.indexerUrl}/indexer/api/v1/index_state`, undefined, REQUEST_TIMEOUT_MS);
    const state = (json as { state?: unknown } | null)?.state;
    if (status !== 200 || typeof state !== 'string') throw ClairClient.failure('index_state', status, json);
    return state;
  }

  /**
   * Indexes a manifest (Clair fetches each layer from its `uri`). Returns the
   * report and the indexer state it was made under; throws ScannerResponseError
   * when Clair could not index it.
   */
  async index(manifestDigest: string, layers: ClairLayer[]): Promise<{ report: ClairIndexReport; state: string | null }> {
    const { status, etag, json } = await this.request('POST', `${this.settings.indexerUrl}/indexer/api/v1/index_report`, { hash: manifestDigest, layers }, INDEX_TIMEOUT_MS);
    if (status !== 201 && status !== 200) throw ClairClient.failure('indexing', status, json);
    const report = json as ClairIndexReport;
    if (!report || report.success === false || report.state === 'IndexError') {
      throw new ScannerResponseError(`Clair could not index the manifest: ${String(report?.err ?? 'no reason given').slice(0, MAX_ERROR_TEXT)}`, status);
    }
    return { report, state: etag ? etag.replace(/^(W\/)?"|"$/g, '') : null };
  }

  /** The vulnerability report of an indexed manifest, or null when Clair has not indexed it. */
  async vulnerabilityReport(manifestDigest: string): Promise<ClairVulnerabilityReport | null> {
    const { status, json } = await this.request('GET', `${this.settings.matcherUrl}/matcher/api/v1/vulnerability_report/${manifestDigest}`, undefined, REQUEST_TIMEOUT_MS);
    if (status === 404) return null;
    if (status !== 200 || typeof json !== 'object' || json === null) throw ClairClient.failure('vulnerability report', status, json);
    return json as ClairVulnerabilityReport;
  }
}
