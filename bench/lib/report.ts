/** Collects measurements per scenario and renders markdown tables of medians with ratios. */
import { LABELS, SHORT, type ContenderId } from './contenders';
import { fmt, median } from './util';

export interface Metric {
  scenario: string;
  name: string;
  unit: string;
  better: 'lower' | 'higher' | 'info';
  /** Which contender is the limit for this metric (nginx for warm serving, direct for cold pulls). */
  limit?: ContenderId;
  /** Target, in words, for the table. */
  target?: string;
  values: Partial<Record<ContenderId, number[]>>;
}

export const ORDER: ContenderId[] = ['direct', 'nginx', 'node-relay', 'node-relay-hash', 'node-relay-bare', 'distribution', 'distribution-s3', 'entrepot-baseline', 'entrepot', 'entrepot-scaleout-baseline', 'entrepot-scaleout', 'entrepot-scanner'];

export class Results {
  readonly metrics: Metric[] = [];
  readonly notes: Record<string, string[]> = {};
  /** Tables a scenario renders itself (rows that are not contenders, such as replica counts). */
  readonly tables: Record<string, string> = {};

  metric(scenario: string, name: string, unit: string, better: Metric['better'], extra: { limit?: ContenderId; target?: string } = {}): Metric {
    let m = this.metrics.find((x) => x.scenario === scenario && x.name === name);
    if (!m) {
      m = { scenario, name, unit, better, values: {}, ...extra };
      this.metrics.push(m);
    }
    return m;
  }

  add(scenario: string, name: string, unit: string, better: Metric['better'], contender: ContenderId, value: number, extra: { limit?: ContenderId; target?: string } = {}): void {
    const m = this.metric(scenario, name, unit, better, extra);
    (m.values[contender] ??= []).push(value);
  }

  note(scenario: string, text: string): void {
    (this.notes[scenario] ??= []).push(text);
  }

  table(scenario: string, markdown: string): void {
    this.tables[scenario] = markdown;
  }

  scenarios(): string[] {
    return [...new Set([...this.metrics.map((m) => m.scenario), ...Object.keys(this.tables), ...Object.keys(this.notes)])];
  }

  /** One markdown table per scenario: medians (n runs), then Entrepot/Distribution and Entrepot/limit. */
  markdown(): string {
    const out: string[] = [];
    for (const scenario of this.scenarios()) {
      const metrics = this.metrics.filter((m) => m.scenario === scenario);
      out.push(`### ${scenario}`, '');
      if (metrics.length > 0) {
        const present = ORDER.filter((c) => metrics.some((m) => (m.values[c]?.length ?? 0) > 0));
        const entrepots = present.filter((c) => c.startsWith('entrepot'));
        const header = ['metric', ...present.map((c) => LABELS[c])];
        // Scale-out is also compared with Distribution on S3, its like-for-like setup, when that ran.
        const onS3 = present.includes('distribution-s3') ? present.filter((c) => c.startsWith('entrepot-scaleout')) : [];
        for (const e of entrepots) header.push(`${SHORT[e]}/Dist`, `${SHORT[e]}/limit`);
        for (const e of onS3) header.push(`${SHORT[e]}/Dist-S3`);
        header.push('target', 'n');
        out.push(`| ${header.join(' | ')} |`, `|${header.map(() => '---').join('|')}|`);
        for (const m of metrics) {
          const med = (c: ContenderId): number => median(m.values[c] ?? []);
          const row = [`${m.name} (${m.unit})`, ...present.map((c) => fmt(med(c)))];
          for (const e of entrepots) {
            const d = med('distribution');
            const l = m.limit ? med(m.limit) : NaN;
            row.push(fmt(med(e) / d), m.limit ? `${fmt(med(e) / l)} (${m.limit})` : '–');
          }
          for (const e of onS3) row.push(fmt(med(e) / med('distribution-s3')));
          const n = Math.max(0, ...present.map((c) => m.values[c]?.length ?? 0));
          row.push(m.target ?? '', String(n));
          out.push(`| ${row.join(' | ')} |`);
        }
        out.push('');
      }
      if (this.tables[scenario]) out.push(this.tables[scenario]);
      for (const n of this.notes[scenario] ?? []) out.push(`- ${n}`);
      if (this.notes[scenario]?.length) out.push('');
    }
    return out.join('\n');
  }

  toJSON(): unknown {
    return { metrics: this.metrics, notes: this.notes, tables: this.tables };
  }
}
