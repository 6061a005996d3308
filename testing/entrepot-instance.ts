import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '../packages/registry-core/src/config/config';
import { createLogger, type Logger } from '../packages/registry-core/src/logging/logger';
import type { PluginFactory } from '../packages/registry-core/src/plugin/contract';
import type { Clock } from '../packages/registry-core/src/services/clock';
import { createEntrepot, type Entrepot } from '../packages/registry-core/src/server';

export const ADMIN_USER = 'admin';
export const ADMIN_PASSWORD = 'admin-password-1';

export interface TestInstance {
  entrepot: Entrepot;
  url: string;
  host: string;
  port: number;
  dataDir: string;
  /** Basic auth header for the bootstrap admin. */
  adminAuth: string;
  /** JSON API call as the admin (or with `auth`), returning status and parsed body. */
  api(method: string, path: string, body?: unknown, auth?: string): Promise<{ status: number; body: unknown; headers: Headers }>;
  stop(): Promise<void>;
}

export interface TestInstanceOptions {
  env?: Record<string, string>;
  overrides?: Record<string, unknown>;
  plugins?: PluginFactory[];
  /** Reuse a data directory (restart tests). */
  dataDir?: string;
  port?: number;
  /** The instance's clock (a frozen one keeps everything it memoizes until told to forget). */
  clock?: Clock;
  /** Where the instance logs (default: silent unless ENTREPOT_TEST_LOGS=1). */
  logger?: Logger;
}

export function basicAuth(user: string, password: string): string {
  return `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;
}

/** Starts a real Entrepot in this process on a loopback port with its own data directory. */
export async function startEntrepot(options: TestInstanceOptions = {}): Promise<TestInstance> {
  const dataDir = options.dataDir ?? mkdtempSync(join(tmpdir(), 'entrepot-test-'));
  const config = loadConfig(
    { ENTREPOT_DATA_DIR: dataDir, ENTREPOT_BOOTSTRAP_ADMIN: `${ADMIN_USER}:${ADMIN_PASSWORD}`, ...options.env },
    { host: '127.0.0.1', port: options.port ?? 0, plugins: [], log_level: 'error', auth: { password_hash_memory_kib: 1024 }, ...options.overrides },
  );
  const entrepot = await createEntrepot(config, {
    logger: options.logger ?? createLogger({ level: 'error', silent: process.env.ENTREPOT_TEST_LOGS !== '1' }),
    pluginFactories: options.plugins ?? [],
    clock: options.clock,
    defaultMetrics: false,
  });
  const port = await entrepot.listen();
  const url = `http://127.0.0.1:${port}`;
  const adminAuth = basicAuth(ADMIN_USER, ADMIN_PASSWORD);
  return {
    entrepot,
    url,
    host: `127.0.0.1:${port}`,
    port,
    dataDir,
    adminAuth,
    async api(method, path, body, auth = adminAuth) {
      const res = await fetch(`${url}/api/v1${path}`, {
        method,
        headers: { authorization: auth, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
        body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
      });
      const text = await res.text();
      let parsed: unknown = text;
      try {
        parsed = text ? JSON.parse(text) : null;
      } catch {
        // non-JSON (CSV logs)
      }
      return { status: res.status, body: parsed, headers: res.headers };
    },
    async stop() {
      await entrepot.close();
      if (!options.dataDir) rmSync(dataDir, { recursive: true, force: true });
    },
  };
}
