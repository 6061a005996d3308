import winston from 'winston';

/** The logging surface the code depends on; winston provides it. */
export interface Logger {
  error(message: string, meta?: Record<string, unknown>): void;
  warn(message: string, meta?: Record<string, unknown>): void;
  info(message: string, meta?: Record<string, unknown>): void;
  debug(message: string, meta?: Record<string, unknown>): void;
  child(meta: Record<string, unknown>): Logger;
}

/** Field names whose values are never written to logs. */
const SECRET_KEYS = /pass(word)?|secret|token|authorization|cookie|private_?key/i;

const redact = winston.format((info) => {
  for (const key of Object.keys(info)) {
    if (SECRET_KEYS.test(key) && typeof info[key] === 'string') info[key] = '[redacted]';
  }
  return info;
});

export function createLogger(options: { level?: string; silent?: boolean } = {}): Logger {
  const logger = winston.createLogger({
    level: options.level ?? 'info',
    silent: options.silent ?? false,
    format: winston.format.combine(redact(), winston.format.timestamp(), winston.format.json()),
    transports: [new winston.transports.Console({ stderrLevels: ['error', 'warn', 'info', 'debug'] })],
  });
  return levelGated(logger);
}

/**
 * winston formats every entry (timestamp, JSON) before its transports drop the
 * ones below their level, so a debug line per request cost a few percent of
 * the manifest path at the default level. Entries of a disabled level stop here.
 */
function levelGated(logger: winston.Logger): Logger {
  const at =
    (level: 'error' | 'warn' | 'info' | 'debug') =>
    (message: string, meta?: Record<string, unknown>): void => {
      if (logger.silent || !logger.isLevelEnabled(level)) return;
      if (meta === undefined) logger[level](message);
      else logger[level](message, meta);
    };
  return { error: at('error'), warn: at('warn'), info: at('info'), debug: at('debug'), child: (meta) => levelGated(logger.child(meta)) };
}
