import { z } from 'zod';
import type { Config } from '../config/config';

/**
 * `security_scanner` (Quay's names where Quay has them). Read from the YAML
 * document and the environment; the PSK is kept only here and in the Clair
 * client, never logged or returned.
 */
const sectionSchema = z.object({
  /** Clair v4's combined address (combo mode, or a load balancer routing both APIs). */
  v4_endpoint: z.url().optional(),
  /** Base64 pre-shared key Clair verifies (HS256 JWT, `iss: quay`). */
  v4_psk: z
    .string()
    .trim()
    .regex(/^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/, 'not valid base64')
    .min(1)
    .optional(),
  /** Separate indexer and matcher addresses, when Clair runs them apart; default `v4_endpoint`. */
  indexer_endpoint: z.url().optional(),
  matcher_endpoint: z.url().optional(),
  /** How Clair reaches Entrepot's `/v2` for layers; default `base_url`, else loopback and the listen port. */
  layer_base_url: z.url().optional(),
  /** How often stored reports are fetched again (new vulnerability data) and Clair's indexer state checked. */
  rescan_interval_seconds: z.coerce.number().int().min(1).default(6 * 3600),
  /** Lifetime of the pull-only token each layer URL carries. */
  layer_token_ttl_seconds: z.coerce.number().int().min(30).max(3600).default(600),
});

export interface ScannerSettings {
  indexerUrl: string;
  matcherUrl: string;
  /** Decoded PSK, or null when Clair runs without authentication. */
  psk: Buffer | null;
  layerBaseUrl: string | null;
  rescanIntervalMs: number;
  layerTokenTtlSeconds: number;
}

/** Off, on with settings, or asked for but unusable (the reason is reported at start-up and by `/health`). */
export type ScannerSetup = { state: 'off' } | { state: 'on'; settings: ScannerSettings } | { state: 'misconfigured'; error: string };

function fromEnv(env: Config['env']): Record<string, string> {
  const names: Array<[string, string]> = [
    ['SECURITY_SCANNER_V4_ENDPOINT', 'v4_endpoint'],
    ['SECURITY_SCANNER_V4_PSK', 'v4_psk'],
    ['SECURITY_SCANNER_V4_INDEXER_ENDPOINT', 'indexer_endpoint'],
    ['SECURITY_SCANNER_V4_MATCHER_ENDPOINT', 'matcher_endpoint'],
    ['SECURITY_SCANNER_LAYER_BASE_URL', 'layer_base_url'],
    ['SECURITY_SCANNER_RESCAN_INTERVAL_SECONDS', 'rescan_interval_seconds'],
  ];
  const out: Record<string, string> = {};
  for (const [variable, key] of names) {
    const value = env[variable];
    if (value !== undefined && value !== '') out[key] = value;
  }
  return out;
}

/** Reads the scanner's settings. Never throws: problems come back as `misconfigured` with every issue named. */
export function scannerSetup(config: Pick<Config, 'flags' | 'raw' | 'env'>): ScannerSetup {
  if (!config.flags.FEATURE_SECURITY_SCANNER) return { state: 'off' };
  const section = config.raw.security_scanner;
  if (section !== undefined && (typeof section !== 'object' || section === null || Array.isArray(section))) {
    return { state: 'misconfigured', error: 'security_scanner must be a mapping' };
  }
  const parsed = sectionSchema.safeParse({ ...(section as Record<string, unknown> | undefined), ...fromEnv(config.env) });
  if (!parsed.success) {
    // Messages name the field, never its value (the PSK is one of them).
    return { state: 'misconfigured', error: parsed.error.issues.map((i) => `security_scanner.${i.path.join('.')}: ${i.message}`).join('; ') };
  }
  const s = parsed.data;
  const indexer = s.indexer_endpoint ?? s.v4_endpoint;
  const matcher = s.matcher_endpoint ?? s.v4_endpoint;
  if (!indexer || !matcher) {
    return { state: 'misconfigured', error: 'FEATURE_SECURITY_SCANNER is on but security_scanner.v4_endpoint (SECURITY_SCANNER_V4_ENDPOINT) is not set' };
  }
  const psk = s.v4_psk === undefined ? null : Buffer.from(s.v4_psk, 'base64');
  return {
    state: 'on',
    settings: {
      indexerUrl: indexer.replace(/\/+$/, ''),
      matcherUrl: matcher.replace(/\/+$/, ''),
      psk,
      layerBaseUrl: s.layer_base_url?.replace(/\/+$/, '') ?? null,
      rescanIntervalMs: s.rescan_interval_seconds * 1000,
      layerTokenTtlSeconds: s.layer_token_ttl_seconds,
    },
  };
}
