// Writes the /api/v1 OpenAPI document of the built core and proxy-cache plugin to
// src/api/openapi.json, the source of the UI's generated client types. Run
// `npx tsc -b` first; the OpenAPI test fails until the copy matches the server.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import configModule from '../../registry-core/dist/config/config.js';
import loggerModule from '../../registry-core/dist/logging/logger.js';
import serverModule from '../../registry-core/dist/server.js';
import proxyCache from '../../proxy-cache/dist/index.js';

const { loadConfig } = configModule;
const { createLogger } = loggerModule;
const { createEntrepot } = serverModule;
const { createPlugin } = proxyCache;

async function main() {
  const dataDir = mkdtempSync(join(tmpdir(), 'entrepot-openapi-'));
  try {
    const config = loadConfig({ ENTREPOT_DATA_DIR: dataDir }, { host: '127.0.0.1', port: 0, plugins: [], log_level: 'error' });
    const entrepot = await createEntrepot(config, { logger: createLogger({ level: 'error', silent: true }), pluginFactories: [createPlugin], defaultMetrics: false });
    const target = join(import.meta.dirname, '../src/api/openapi.json');
    writeFileSync(target, `${JSON.stringify(entrepot.api.document(), null, 2)}\n`);
    await entrepot.close();
    console.log(`wrote ${target}`);
  } finally {
    rmSync(dataDir, { recursive: true, force: true });
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
