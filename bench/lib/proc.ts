/** Resident memory of a server process, read from /proc (Linux). */
import { readFileSync, readdirSync, writeFileSync } from 'node:fs';

export interface MemoryReading {
  /** VmRSS in bytes. */
  rss: number;
  /** VmHWM (peak RSS since start or the last reset) in bytes. */
  hwm: number;
}

export function readMemory(pid: number): MemoryReading | undefined {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const field = (name: string): number => {
      const m = new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(status);
      return m ? Number(m[1]) * 1024 : NaN;
    };
    return { rss: field('VmRSS'), hwm: field('VmHWM') };
  } catch {
    return undefined;
  }
}

/** Resident bytes of a process by kind of mapping, from /proc/PID/smaps. */
export interface ResidentByKind {
  /** `[heap]`: glibc's main malloc arena (grown with brk). */
  brkHeap: number;
  /** Anonymous mappings: V8's heap pages, malloc's mmapped chunks and thread arenas, stacks of threads. */
  anonymous: number;
  /** Mapped files (the executable, shared libraries). */
  files: number;
}

export function residentByKind(pid: number): ResidentByKind | undefined {
  let smaps: string;
  try {
    smaps = readFileSync(`/proc/${pid}/smaps`, 'utf8');
  } catch {
    return undefined;
  }
  const total: ResidentByKind = { brkHeap: 0, anonymous: 0, files: 0 };
  let kind: keyof ResidentByKind = 'anonymous';
  for (const line of smaps.split('\n')) {
    const mapping = /^[0-9a-f]+-[0-9a-f]+ \S+ \S+ \S+ \S+\s*(.*)$/.exec(line);
    if (mapping) {
      const name = mapping[1];
      kind = name === '[heap]' ? 'brkHeap' : name === '' || name.startsWith('[') ? 'anonymous' : 'files';
      continue;
    }
    const rss = /^Rss:\s+(\d+) kB/.exec(line);
    if (rss) total[kind] += Number(rss[1]) * 1024;
  }
  return total;
}

/** Resets VmHWM to the current RSS (`echo 5 > /proc/PID/clear_refs`); false when not permitted. */
export function resetPeak(pid: number): boolean {
  try {
    writeFileSync(`/proc/${pid}/clear_refs`, '5');
    return true;
  } catch {
    return false;
  }
}

/**
 * CPU time the whole machine has spent busy (all cores; user, system and
 * interrupt time, not idle, I/O wait or time stolen by a hypervisor), in seconds.
 */
export function machineBusySeconds(): number {
  const [cpu] = readFileSync('/proc/stat', 'utf8').split('\n');
  const [user, nice, system, , , irq, softirq] = cpu.trim().split(/\s+/).slice(1).map(Number);
  // USER_HZ is 100 on Linux.
  return (user + nice + system + irq + softirq) / 100;
}

/**
 * Waits until the machine has been nearly idle (under a tenth of one core busy)
 * for 250 ms, so work a contender left running after its turn (an upload to
 * S3, a job queue) is not counted against the next one. Gives up after `maxMs`.
 */
export async function waitForQuietMachine(maxMs = 20_000): Promise<void> {
  const started = Date.now();
  const windowMs = 250;
  for (;;) {
    const before = machineBusySeconds();
    await new Promise((r) => setTimeout(r, windowMs));
    const busyCores = (machineBusySeconds() - before) / (windowMs / 1000);
    if (busyCores < 0.1 || Date.now() - started >= maxMs) return;
  }
}

/** The first process whose command line contains every one of `needles`. */
export function findPid(...needles: string[]): number | undefined {
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const cmd = readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0').join(' ');
      if (needles.every((n) => cmd.includes(n))) return Number(entry);
    } catch {
      // gone
    }
  }
  return undefined;
}

/** Samples VmRSS every `intervalMs` and keeps the maximum (a cross-check of VmHWM). */
export class RssSampler {
  private max = 0;
  private readonly timer: NodeJS.Timeout;

  constructor(
    private readonly pid: number,
    intervalMs = 100,
  ) {
    this.sample();
    this.timer = setInterval(() => this.sample(), intervalMs);
  }

  private sample(): void {
    const m = readMemory(this.pid);
    if (m && m.rss > this.max) this.max = m.rss;
  }

  /** Stops sampling; returns the peak seen in bytes, max'ed with VmHWM. */
  stop(): number {
    clearInterval(this.timer);
    this.sample();
    const m = readMemory(this.pid);
    return Math.max(this.max, m?.hwm ?? 0);
  }
}
