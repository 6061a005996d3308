/** Small helpers shared by the benchmark scenarios: timing, statistics, logging. */
import { performance } from 'node:perf_hooks';

export function now(): number {
  return performance.now();
}

export function median(values: number[]): number {
  const v = values.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (v.length === 0) return NaN;
  const mid = Math.floor(v.length / 2);
  return v.length % 2 ? v[mid] : (v[mid - 1] + v[mid]) / 2;
}

export const MiB = 1024 * 1024;

const started = Date.now();

/** Progress line on stderr, so stdout keeps only the result tables. */
export function log(message: string): void {
  const s = ((Date.now() - started) / 1000).toFixed(0).padStart(5);
  process.stderr.write(`[bench ${s}s] ${message}\n`);
}

/** Formats a number with a sensible number of significant digits. */
export function fmt(value: number | undefined): string {
  if (value === undefined || !Number.isFinite(value)) return '–';
  const a = Math.abs(value);
  if (a >= 1000) return value.toFixed(0);
  if (a >= 100) return value.toFixed(1);
  if (a >= 10) return value.toFixed(2);
  if (a >= 1) return value.toFixed(2);
  return value.toFixed(3);
}

export function rotate<T>(items: T[], by: number): T[] {
  if (items.length === 0) return items;
  const k = ((by % items.length) + items.length) % items.length;
  return [...items.slice(k), ...items.slice(0, k)];
}

/** Runs `fn` over `items` with at most `limit` in flight. */
export async function mapLimit<T, R>(items: T[], limit: number, fn: (item: T, index: number) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array<R>(items.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    for (;;) {
      const i = next++;
      if (i >= items.length) return;
      out[i] = await fn(items[i], i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, () => worker()));
  return out;
}
