import { createLogger } from '../../src/logging/logger';

/**
 * Lines the console transport writes while `run` runs and one turn of the
 * event loop after it (winston pipes entries to its transports
 * asynchronously). The transport writes to `console._stderr`, which is
 * process.stderr outside Jest and Jest's own stream inside it.
 */
async function stderrLines(run: () => void): Promise<string[]> {
  const sink = ((console as unknown as { _stderr?: NodeJS.WritableStream })._stderr ?? process.stderr) as { write(chunk: unknown): boolean };
  const written: string[] = [];
  const spy = jest.spyOn(sink, 'write').mockImplementation((chunk: unknown) => {
    written.push(String(chunk));
    return true;
  });
  try {
    run();
    await new Promise((resolve) => setImmediate(resolve));
  } finally {
    spy.mockRestore();
  }
  return written.join('').split('\n').filter((line) => line.length > 0);
}

/** Metadata that fails the moment anything reads it. */
function untouchable(): Record<string, unknown> {
  return {
    get requestId(): string {
      throw new Error('metadata of a disabled level was read');
    },
  };
}

describe('createLogger', () => {
  test('entries at or above the level are written as JSON with a timestamp, secrets redacted', async () => {
    const logger = createLogger({ level: 'info' });
    const lines = await stderrLines(() => {
      logger.info('pulled', { repo: 'hub/library/app', password: 'hunter2' });
      logger.error('plain message');
    });
    expect(lines).toHaveLength(2);
    const first = JSON.parse(lines[0]) as Record<string, unknown>;
    expect(first).toMatchObject({ level: 'info', message: 'pulled', repo: 'hub/library/app', password: '[redacted]' });
    expect(typeof first.timestamp).toBe('string');
    expect(JSON.parse(lines[1])).toMatchObject({ level: 'error', message: 'plain message' });
  });

  test('entries below the level stop before winston: nothing is written and their metadata is never read', async () => {
    const logger = createLogger({ level: 'warn' });
    const lines = await stderrLines(() => {
      logger.debug('request', untouchable());
      logger.info('request', untouchable());
      logger.child({ component: 'fill' }).debug('chunk', untouchable());
    });
    expect(lines).toEqual([]);
  });

  test('child loggers keep the level and add their fields', async () => {
    const logger = createLogger({ level: 'debug' }).child({ component: 'fill' });
    const lines = await stderrLines(() => logger.debug('resuming', { at: 10 }));
    expect(lines).toHaveLength(1);
    expect(JSON.parse(lines[0])).toMatchObject({ level: 'debug', message: 'resuming', component: 'fill', at: 10 });
  });

  test('a silent logger writes nothing at any level', async () => {
    const logger = createLogger({ level: 'debug', silent: true });
    const lines = await stderrLines(() => {
      logger.error('boom', untouchable());
      logger.debug('request', untouchable());
    });
    expect(lines).toEqual([]);
  });
});
