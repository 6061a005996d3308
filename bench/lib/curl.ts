/**
 * The data-plane client: curl (C, one process for many parallel transfers),
 * so the client costs the same for every contender and little CPU.
 */
import { spawn } from 'node:child_process';
import { now } from './util';

export interface Transfer {
  code: number;
  bytes: number;
  /** Seconds to the first response byte. */
  ttfb: number;
  /** Seconds for the whole transfer. */
  total: number;
}

export interface CurlResult {
  transfers: Transfer[];
  /** Wall time of the curl process in ms. */
  wallMs: number;
}

export interface CurlOptions {
  headers?: string[];
  /** Transfers in flight at once (default: all). */
  parallel?: number;
  method?: 'GET' | 'HEAD';
  /** Where the body goes (default /dev/null). */
  output?: string;
  timeoutMs?: number;
}

/** curl expands the `\\n` itself. */
const WRITE_OUT = '%{http_code} %{size_download} %{time_starttransfer} %{time_total}\\n';

/** GETs every URL (in parallel with -Z when more than one) and returns one Transfer per URL. */
export function curl(urls: string[], opts: CurlOptions = {}): Promise<CurlResult> {
  const args = ['-s', '--noproxy', '*', '-w', WRITE_OUT];
  if (opts.method === 'HEAD') args.push('-I');
  for (const h of opts.headers ?? []) args.push('-H', h);
  if (urls.length > 1) args.push('-Z', '--parallel-immediate', '--parallel-max', String(Math.min(300, opts.parallel ?? urls.length)));
  for (const u of urls) args.push(u, '-o', opts.output ?? '/dev/null');
  const started = now();
  return new Promise((resolve, reject) => {
    const child = spawn('/usr/bin/curl', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 600_000);
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      const wallMs = now() - started;
      const transfers: Transfer[] = out
        .trim()
        .split('\n')
        .filter((l) => /^\d{3} /.test(l))
        .map((l) => {
          const [c, b, t, total] = l.split(' ');
          return { code: Number(c), bytes: Number(b), ttfb: Number(t), total: Number(total) };
        });
      if (transfers.length !== urls.length) {
        reject(new Error(`curl exited ${code} with ${transfers.length}/${urls.length} transfers: ${err.trim()} ${out.slice(0, 500)}`));
        return;
      }
      resolve({ transfers, wallMs });
    });
  });
}

/** Throws unless every transfer answered 200 with the expected size. */
export function expectOk(result: CurlResult, sizes?: number[], what = 'transfer'): void {
  result.transfers.forEach((t, i) => {
    if (t.code !== 200) throw new Error(`${what}: HTTP ${t.code}`);
    if (sizes && sizes[i] !== undefined && t.bytes !== sizes[i]) throw new Error(`${what}: got ${t.bytes} bytes, expected ${sizes[i]}`);
  });
}
