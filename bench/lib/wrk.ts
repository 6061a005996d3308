/** Runs wrk against one URL (or a list of paths) and parses its summary. */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { run } from '../../testing/tools';

export interface WrkResult {
  rps: number;
  /** Milliseconds. */
  p50: number;
  p99: number;
  requests: number;
  /** Responses that were not 2xx/3xx. */
  errors: number;
  socketErrors: number;
}

export interface WrkOptions {
  method?: 'GET' | 'HEAD';
  headers?: string[];
  connections: number;
  durationS: number;
  threads?: number;
  /** File of request paths, one a line; each request picks one at random. */
  pathsFile?: string;
  /** Directory for the generated Lua script. */
  scratchDir: string;
}

function toMs(value: string): number {
  const m = /^([\d.]+)(us|ms|s|m)$/.exec(value.trim());
  if (!m) return NaN;
  const n = Number(m[1]);
  return m[2] === 'us' ? n / 1000 : m[2] === 'ms' ? n : m[2] === 's' ? n * 1000 : n * 60_000;
}

export function parseWrk(out: string): WrkResult {
  const pct = (p: string): number => {
    const m = new RegExp(`^\\s*${p}%\\s+(\\S+)`, 'm').exec(out);
    return m ? toMs(m[1]) : NaN;
  };
  const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1] ?? NaN);
  const requests = Number(/(\d+) requests in/.exec(out)?.[1] ?? NaN);
  const errors = Number(/Non-2xx or 3xx responses: (\d+)/.exec(out)?.[1] ?? 0);
  const sock = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out);
  const socketErrors = sock ? sock.slice(1).reduce((a, b) => a + Number(b), 0) : 0;
  return { rps, p50: pct('50'), p99: pct('99'), requests, errors, socketErrors };
}

let scripts = 0;

export async function wrk(url: string, opts: WrkOptions): Promise<WrkResult> {
  const lua: string[] = [];
  if (opts.method === 'HEAD') lua.push('wrk.method = "HEAD"');
  if (opts.pathsFile) {
    lua.push(
      'local paths = {}',
      `for line in io.lines("${opts.pathsFile}") do paths[#paths + 1] = line end`,
      'math.randomseed(os.time())',
      'request = function() return wrk.format(nil, paths[math.random(#paths)]) end',
    );
  }
  const args = ['-t', String(opts.threads ?? 1), '-c', String(opts.connections), '-d', `${opts.durationS}s`, '--latency', '--timeout', '10s'];
  for (const h of opts.headers ?? []) args.push('-H', h);
  if (lua.length > 0) {
    const script = join(opts.scratchDir, `wrk-${process.pid}-${scripts++}.lua`);
    writeFileSync(script, lua.join('\n') + '\n');
    args.push('-s', script);
  }
  args.push(url);
  const res = await run('/usr/bin/wrk', args, { timeoutMs: (opts.durationS + 60) * 1000 });
  return parseWrk(res.stdout.toString('utf8'));
}

/**
 * HEAD requests go through `hey` (Debian package): wrk 4.1 waits for a body
 * after a HEAD response that carries Content-Length, and so completes none.
 */
export async function hey(url: string, opts: { method: 'GET' | 'HEAD'; headers?: string[]; connections: number; durationS: number }): Promise<WrkResult> {
  const args = ['-z', `${opts.durationS}s`, '-c', String(opts.connections), '-m', opts.method, '-cpus', '1', '-t', '10'];
  for (const h of opts.headers ?? []) args.push('-H', h);
  args.push(url);
  const res = await run('/usr/bin/hey', args, { timeoutMs: (opts.durationS + 60) * 1000 });
  return parseHey(res.stdout.toString('utf8'));
}

export function parseHey(out: string): WrkResult {
  const pct = (p: string): number => {
    const m = new RegExp(`^\\s*${p}%+ in ([\\d.]+) secs`, 'm').exec(out);
    return m ? Number(m[1]) * 1000 : NaN;
  };
  const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1] ?? NaN);
  let ok = 0;
  let other = 0;
  for (const m of out.matchAll(/\[(\d{3})\]\s+(\d+) responses/g)) {
    if (m[1].startsWith('2') || m[1].startsWith('3')) ok += Number(m[2]);
    else other += Number(m[2]);
  }
  const errorLines = /Error distribution:([\s\S]*)$/.exec(out)?.[1] ?? '';
  let socketErrors = 0;
  for (const m of errorLines.matchAll(/\[(\d+)\]/g)) socketErrors += Number(m[1]);
  return { rps, p50: pct('50'), p99: pct('99'), requests: ok + other, errors: other, socketErrors };
}
