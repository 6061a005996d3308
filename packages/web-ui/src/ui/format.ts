/** Human-readable sizes, times and durations. */

const UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];

export function formatBytes(bytes: number | null | undefined): string {
  if (bytes === null || bytes === undefined || !Number.isFinite(bytes)) return '—';
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < UNITS.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return unit === 0 ? `${value} B` : `${value.toFixed(value >= 100 ? 0 : 1)} ${UNITS[unit]}`;
}

/** Parses "10 GiB", "500MB", "1.5 g" or a plain byte count; null when unreadable. */
export function parseBytes(text: string): number | null {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([kmgtp]?)(i?b?)\s*$/i.exec(text);
  if (!m) return null;
  const power = ['', 'k', 'm', 'g', 't', 'p'].indexOf(m[2].toLowerCase());
  const base = m[3].toLowerCase().startsWith('i') || m[2] !== '' ? 1024 : 1;
  const value = Number(m[1]) * base ** power;
  return Number.isFinite(value) ? Math.round(value) : null;
}

/** A Date from Quay's RFC 2822 strings, ISO strings, or epoch seconds. */
export function toDate(value: string | number | null | undefined): Date | null {
  if (value === null || value === undefined || value === '') return null;
  const date = typeof value === 'number' ? new Date(value * 1000) : new Date(value.replace(/-0000$/, 'GMT'));
  return Number.isNaN(date.getTime()) ? null : date;
}

export function formatTime(value: string | number | null | undefined): string {
  const date = toDate(value);
  if (!date) return '—';
  return date.toLocaleString(undefined, { year: 'numeric', month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit', second: '2-digit' });
}

/** "3 minutes ago", "in 2 days"; falls back to the absolute time beyond a month. */
export function formatRelative(value: string | number | null | undefined, now = Date.now()): string {
  const date = toDate(value);
  if (!date) return 'never';
  const seconds = Math.round((date.getTime() - now) / 1000);
  const abs = Math.abs(seconds);
  const rtf = new Intl.RelativeTimeFormat(undefined, { numeric: 'auto' });
  if (abs < 60) return rtf.format(seconds, 'second');
  if (abs < 3600) return rtf.format(Math.round(seconds / 60), 'minute');
  if (abs < 86400) return rtf.format(Math.round(seconds / 3600), 'hour');
  if (abs < 30 * 86400) return rtf.format(Math.round(seconds / 86400), 'day');
  return formatTime(value);
}

/** 86400 → "1 day", 90 → "1 min 30 s". */
export function formatDuration(totalSeconds: number | null | undefined): string {
  if (totalSeconds === null || totalSeconds === undefined) return '—';
  if (totalSeconds === 0) return '0 s';
  const parts: string[] = [];
  let rest = totalSeconds;
  for (const [size, unit] of [[86400, 'd'], [3600, 'h'], [60, 'min'], [1, 's']] as const) {
    const n = Math.floor(rest / size);
    if (n > 0) parts.push(`${n} ${unit}`);
    rest -= n * size;
  }
  return parts.slice(0, 2).join(' ');
}

/** `sha256:0123456789abcdef…` → `sha256:0123456789ab`. */
export function shortDigest(digest: string | null | undefined): string {
  if (!digest) return '—';
  const i = digest.indexOf(':');
  return i < 0 ? digest.slice(0, 12) : digest.slice(0, i + 13);
}
