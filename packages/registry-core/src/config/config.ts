import { existsSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { hostname } from 'node:os';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { FeatureFlags, loadFeatureFlags } from './feature-flags';

const databaseSchema = z.discriminatedUnion('client', [
  z.object({ client: z.literal('sqlite'), filename: z.string().optional() }),
  z.object({
    client: z.literal('mysql'),
    host: z.string().default('127.0.0.1'),
    port: z.coerce.number().int().default(3306),
    user: z.string().default('root'),
    password: z.string().default(''),
    database: z.string().default('entrepot'),
    pool_max: z.coerce.number().int().positive().default(20),
  }),
]);

const storageSchema = z.discriminatedUnion('driver', [
  z.object({ driver: z.literal('fs') }),
  z.object({
    driver: z.literal('s3'),
    endpoint: z.string(),
    port: z.coerce.number().int().optional(),
    use_ssl: z.boolean().default(false),
    /** PEM file of certificates trusted for the endpoint besides the bundled root CAs (a private CA, a self-signed S3). */
    ca_file: z.string().optional(),
    access_key: z.string(),
    secret_key: z.string(),
    bucket: z.string(),
    region: z.string().default('us-east-1'),
    prefix: z.string().default(''),
    /** Redirect blob GETs to presigned URLs instead of streaming them through Entrepot. */
    redirect_downloads: z.boolean().default(false),
  }),
]);

const queueSchema = z.discriminatedUnion('driver', [
  z.object({ driver: z.literal('in-process') }),
  z.object({ driver: z.literal('bullmq'), redis_url: z.string().default('redis://127.0.0.1:6379'), prefix: z.string().default('entrepot') }),
]);

export const configSchema = z.object({
  host: z.string().default('0.0.0.0'),
  port: z.coerce.number().int().min(0).max(65535).default(5000),
  /** External URL clients use, e.g. https://entrepot.corp; derived from the request when unset. */
  base_url: z.string().url().optional(),
  data_dir: z.string().default('./data'),
  /** This instance's name in `Via` headers; upstream requests that come back carrying it are refused (loops). */
  instance_name: z.string().regex(/^[A-Za-z0-9._-]{1,64}$/).optional(),
  log_level: z.enum(['error', 'warn', 'info', 'debug']).default('info'),
  database: databaseSchema.default({ client: 'sqlite' }),
  storage: storageSchema.default({ driver: 'fs' }),
  queue: queueSchema.default({ driver: 'in-process' }),
  tls: z.object({ cert_file: z.string(), key_file: z.string() }).optional(),
  /** Key for encrypting secrets at rest (base64, 32 bytes); generated into data_dir when unset. */
  secret_key: z.string().optional(),
  auth: z
    .object({
      token_ttl_seconds: z.coerce.number().int().min(30).max(86400).default(300),
      /** Failed logins per account and address before a pause is enforced. */
      max_failed_logins: z.coerce.number().int().min(1).default(10),
      lockout_seconds: z.coerce.number().int().min(1).default(300),
      /** Password hashing cost; tests lower it. */
      password_hash_memory_kib: z.coerce.number().int().min(1024).default(19456),
    })
    .default({ token_ttl_seconds: 300, max_failed_logins: 10, lockout_seconds: 300, password_hash_memory_kib: 19456 }),
  gc: z
    .object({
      /** How long a blob stays after losing its last reference, so downloads in progress finish. */
      grace_seconds: z.coerce.number().int().min(0).default(300),
      /** How often garbage collection runs besides after evictions and flushes. */
      interval_seconds: z.coerce.number().int().min(10).default(3600),
    })
    .default({ grace_seconds: 300, interval_seconds: 3600 }),
  /** How long a shutdown waits for responses in flight (a layer on a slow link) before cutting them; below an orchestrator's kill grace (Kubernetes: 30 s). */
  shutdown_drain_seconds: z.coerce.number().int().min(0).default(25),
  /** How often batched per-tag pull statistics are written. */
  pull_stats_flush_ms: z.coerce.number().int().min(10).default(2000),
  bootstrap_admin: z.string().regex(/^[^:]+:.+$/, 'must be name:password').optional(),
  plugins: z.array(z.string()).default(['@entrepot/proxy-cache']),
  feature_flags_file: z.string().optional(),
  web_ui_dir: z.string().optional(),
});

export type ConfigFile = z.infer<typeof configSchema>;

export interface Config extends ConfigFile {
  instance_name: string;
  flags: FeatureFlags;
  /** The whole parsed YAML document; plugins validate their own sections. */
  raw: Record<string, unknown>;
  /** Environment the process started with; plugins read their overrides from it. */
  env: Readonly<Record<string, string | undefined>>;
}

export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConfigError';
  }
}

function databaseFromUrl(url: string): z.input<typeof databaseSchema> {
  const parsed = new URL(url);
  if (parsed.protocol !== 'mysql:') throw new ConfigError(`ENTREPOT_DATABASE_URL: unsupported scheme ${parsed.protocol}`);
  return {
    client: 'mysql',
    host: parsed.hostname,
    port: Number(parsed.port || 3306),
    user: decodeURIComponent(parsed.username || 'root'),
    password: decodeURIComponent(parsed.password),
    database: parsed.pathname.replace(/^\//, '') || 'entrepot',
  };
}

/** Applies the documented environment variables over the file's values. */
function applyEnv(doc: Record<string, unknown>, env: Record<string, string | undefined>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...doc };
  if (env.PORT) out.port = env.PORT;
  if (env.ENTREPOT_HOST) out.host = env.ENTREPOT_HOST;
  if (env.ENTREPOT_DATA_DIR) out.data_dir = env.ENTREPOT_DATA_DIR;
  if (env.ENTREPOT_BASE_URL) out.base_url = env.ENTREPOT_BASE_URL;
  if (env.ENTREPOT_LOG_LEVEL) out.log_level = env.ENTREPOT_LOG_LEVEL;
  if (env.ENTREPOT_SECRET_KEY) out.secret_key = env.ENTREPOT_SECRET_KEY;
  if (env.ENTREPOT_BOOTSTRAP_ADMIN) out.bootstrap_admin = env.ENTREPOT_BOOTSTRAP_ADMIN;
  if (env.ENTREPOT_DATABASE_URL) out.database = databaseFromUrl(env.ENTREPOT_DATABASE_URL);
  if (env.ENTREPOT_REDIS_URL) out.queue = { driver: 'bullmq', redis_url: env.ENTREPOT_REDIS_URL };
  if (env.ENTREPOT_S3_ENDPOINT) {
    out.storage = {
      driver: 's3',
      endpoint: env.ENTREPOT_S3_ENDPOINT,
      port: env.ENTREPOT_S3_PORT,
      use_ssl: env.ENTREPOT_S3_USE_SSL === 'true',
      ca_file: env.ENTREPOT_S3_CA_FILE,
      access_key: env.ENTREPOT_S3_ACCESS_KEY ?? '',
      secret_key: env.ENTREPOT_S3_SECRET_KEY ?? '',
      bucket: env.ENTREPOT_S3_BUCKET ?? 'entrepot',
      region: env.ENTREPOT_S3_REGION ?? 'us-east-1',
    };
  }
  return out;
}

function formatIssues(error: z.ZodError): string {
  return error.issues.map((issue) => `  ${issue.path.join('.') || '(root)'}: ${issue.message}`).join('\n');
}

/**
 * Reads ENTREPOT_CONFIG (YAML) if set, applies environment overrides and
 * validates everything once. Throws ConfigError with every problem listed.
 */
export function loadConfig(env: Record<string, string | undefined> = process.env, overrides: Record<string, unknown> = {}): Config {
  let doc: Record<string, unknown> = {};
  if (env.ENTREPOT_CONFIG) {
    const path = resolve(env.ENTREPOT_CONFIG);
    if (!existsSync(path)) throw new ConfigError(`ENTREPOT_CONFIG: ${path} does not exist`);
    let parsed: unknown;
    try {
      parsed = parseYaml(readFileSync(path, 'utf8'));
    } catch (err) {
      throw new ConfigError(`${path}: not valid YAML: ${(err as Error).message}`);
    }
    if (parsed !== null && (typeof parsed !== 'object' || Array.isArray(parsed))) {
      throw new ConfigError(`${path}: the top level must be a mapping`);
    }
    doc = (parsed as Record<string, unknown> | null) ?? {};
  }
  const merged = { ...applyEnv(doc, env), ...overrides };
  const result = configSchema.safeParse(merged);
  if (!result.success) throw new ConfigError(`invalid configuration:\n${formatIssues(result.error)}`);
  const config = result.data;
  const flags = loadFeatureFlags(env, config.feature_flags_file);
  if (config.database.client === 'mysql' && !config.secret_key) {
    throw new ConfigError('secret_key (or ENTREPOT_SECRET_KEY) is required with a shared database, so every replica decrypts the same secrets');
  }
  return { ...config, instance_name: config.instance_name ?? `entrepot-${hostname()}`.slice(0, 64), data_dir: resolve(config.data_dir), flags, raw: merged, env: { ...env } };
}
