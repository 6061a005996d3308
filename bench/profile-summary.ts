/**
 * `node bench/dist/bench/profile-summary.js FILE.cpuprofile [TOP]`: the hottest
 * functions of a `node --cpu-prof` profile, by self time and by total
 * (inclusive) time, with file:line relative to the repository.
 */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
}
interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  children?: number[];
}
interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
  startTime: number;
  endTime: number;
}

const ROOT = resolve(__dirname, '../../..');

function key(f: CallFrame): string {
  const url = f.url.replace(/^file:\/\//, '').replace(`${ROOT}/`, '');
  return `${f.functionName || '(anonymous)'} ${url ? `${url}:${f.lineNumber + 1}` : ''}`.trim();
}

export function summarize(profile: CpuProfile, top = 25): string {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const selfUs = new Map<number, number>();
  profile.samples.forEach((id, i) => selfUs.set(id, (selfUs.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0)));
  const self = new Map<string, number>();
  const total = new Map<string, number>();
  let all = 0;
  for (const [id, us] of selfUs) {
    all += us;
    const node = byId.get(id);
    if (!node) continue;
    const k = key(node.callFrame);
    self.set(k, (self.get(k) ?? 0) + us);
    // Inclusive: every distinct function on the stack gets the sample once.
    const seen = new Set<string>();
    for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
      const f = byId.get(cur);
      if (!f) break;
      const fk = key(f.callFrame);
      if (seen.has(fk)) continue;
      seen.add(fk);
      total.set(fk, (total.get(fk) ?? 0) + us);
    }
  }
  const pct = (us: number): string => `${((100 * us) / all).toFixed(1).padStart(5)} %`;
  const rows = (m: Map<string, number>, skip: RegExp): string[] =>
    [...m]
      .filter(([k]) => !skip.test(k))
      .sort((a, b) => b[1] - a[1])
      .slice(0, top)
      .map(([k, us]) => `${pct(us)}  ${(us / 1000).toFixed(0).padStart(7)} ms  ${k}`);
  const idle = self.get('(idle)') ?? 0;
  return [
    `profile: ${((profile.endTime - profile.startTime) / 1e6).toFixed(1)} s wall, ${(all / 1e6).toFixed(1)} s sampled, idle ${pct(idle)}, GC ${pct(self.get('(garbage collector)') ?? 0)}, program ${pct(self.get('(program)') ?? 0)}`,
    '',
    `top ${top} by self time:`,
    ...rows(self, /^\((idle|root)\)/),
    '',
    `top ${top} by total time (excluding the runtime roots):`,
    ...rows(total, /^\((idle|root|program|garbage collector)\)|^processTicksAndRejections|^listOnTimeout|^processTimers/),
  ].join('\n');
}

if (require.main === module) {
  const [file, top] = process.argv.slice(2);
  if (!file) {
    process.stderr.write('usage: profile-summary FILE.cpuprofile [TOP]\n');
    process.exit(2);
  }
  process.stdout.write(summarize(JSON.parse(readFileSync(file, 'utf8')) as CpuProfile, top ? Number(top) : 25) + '\n');
}
