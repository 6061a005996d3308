import { existsSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';

export type FeatureFlags = Readonly<Record<string, boolean>>;

/** Where the repository's feature-flags.json sits relative to this compiled file. */
const BUNDLED_FLAGS = resolve(__dirname, '../../../../feature-flags.json');

function parseBoolean(name: string, value: string): boolean {
  if (/^(true|1|yes|on)$/i.test(value)) return true;
  if (/^(false|0|no|off)$/i.test(value)) return false;
  throw new Error(`${name}: expected true or false, got "${value}"`);
}

/**
 * Flags from feature-flags.json, each overridable by an environment variable of
 * the same name (`FEATURE_PROXY_CACHE=false`). Unknown FEATURE_* variables are kept too.
 */
export function loadFeatureFlags(env: Record<string, string | undefined>, file?: string): FeatureFlags {
  const path = file ? resolve(file) : existsSync(resolve('feature-flags.json')) ? resolve('feature-flags.json') : BUNDLED_FLAGS;
  const flags: Record<string, boolean> = {};
  if (existsSync(path)) {
    const doc = JSON.parse(readFileSync(path, 'utf8')) as Record<string, unknown>;
    for (const [name, value] of Object.entries(doc)) {
      if (typeof value !== 'boolean') throw new Error(`${path}: ${name} must be true or false`);
      flags[name] = value;
    }
  }
  for (const [name, value] of Object.entries(env)) {
    if (name.startsWith('FEATURE_') && value !== undefined) flags[name] = parseBoolean(name, value);
  }
  return flags;
}
