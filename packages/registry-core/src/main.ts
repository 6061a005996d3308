#!/usr/bin/env node
import { ConfigError, loadConfig } from './config/config';
import { createLogger } from './logging/logger';
import { IdleCollection } from './runtime/idle-collection';
import { knobOn } from './runtime/knobs';
import { glibcHeapTrimmer } from './runtime/memory-trim';
import { missingNodeFlags } from './runtime/node-flags';
import { createEntrepot } from './server';

/** `npm start`: loads the config, starts Entrepot, and shuts down gracefully on SIGTERM/SIGINT. */
async function main(): Promise<void> {
  const config = loadConfig(process.env);
  const logger = createLogger({ level: config.log_level });
  const entrepot = await createEntrepot(config, { logger });
  const port = await entrepot.listen();
  const trimHeap = knobOn('MALLOC_TRIM') ? await glibcHeapTrimmer(logger) : null;
  const idleCollection = new IdleCollection(logger, { release: [() => entrepot.services.storage.buffers.shrink()], trimHeap: trimHeap ?? undefined });
  if (knobOn('IDLE_GC')) idleCollection.start();
  logger.info('Entrepot listening', { port, tls: Boolean(config.tls), database: config.database.client, storage: config.storage.driver, queue: config.queue.driver, heapTrim: trimHeap !== null, flags: config.flags });
  const missing = missingNodeFlags(process.execArgv);
  if (missing.length > 0) {
    logger.warn('started without the recommended Node flags: cold pulls spend much of their CPU on garbage collection (README, "Configuration")', { missing });
  }
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info('shutting down', { signal });
    idleCollection.stop();
    entrepot.close().then(
      () => process.exit(0),
      (err: unknown) => {
        logger.error('shutdown failed', { error: String(err) });
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
}

main().catch((err: unknown) => {
  if (err instanceof ConfigError) {
    process.stderr.write(`${err.message}\n`);
    process.exit(2);
  }
  process.stderr.write(`Entrepot failed to start: ${err instanceof Error ? err.stack : String(err)}\n`);
  process.exit(1);
});
