/**
 * A stacked bar chart (inline SVG) with the same figures in a table beside it:
 * the chart is one image with a summary as its accessible name, the table is
 * what screen readers and keyboard users read.
 */
import { h } from './dom';

export interface ChartSeries {
  label: string;
  /** CSS class of the bars and the legend swatch (colour). */
  className: string;
  values: readonly number[];
}

export interface ChartSpec {
  title: string;
  /** Accessible summary of the whole chart, e.g. totals. */
  summary: string;
  /** One label per bucket (the table's first column). */
  buckets: readonly string[];
  series: readonly ChartSeries[];
  format: (value: number) => string;
  testId: string;
}

const WIDTH = 560;
const HEIGHT = 160;
const SVG = 'http://www.w3.org/2000/svg';

function svg(tag: string, attrs: Record<string, string | number>): SVGElement {
  const el = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attrs)) el.setAttribute(name, String(value));
  return el;
}

function chartImage(spec: ChartSpec): SVGElement {
  const root = svg('svg', { viewBox: `0 0 ${WIDTH} ${HEIGHT}`, class: 'chart', role: 'img', 'aria-label': `${spec.title}: ${spec.summary}` });
  const totals = spec.buckets.map((_, i) => spec.series.reduce((sum, s) => sum + (s.values[i] ?? 0), 0));
  const max = Math.max(1, ...totals);
  const slot = WIDTH / Math.max(1, spec.buckets.length);
  const barWidth = Math.max(2, slot * 0.7);
  root.appendChild(svg('line', { x1: 0, y1: HEIGHT - 0.5, x2: WIDTH, y2: HEIGHT - 0.5, class: 'chart-axis' }));
  spec.buckets.forEach((_, i) => {
    let y = HEIGHT;
    for (const s of spec.series) {
      const value = s.values[i] ?? 0;
      if (value <= 0) continue;
      const height = Math.max(1, (value / max) * (HEIGHT - 8));
      y -= height;
      root.appendChild(svg('rect', { x: i * slot + (slot - barWidth) / 2, y, width: barWidth, height, class: `chart-bar ${s.className}` }));
    }
  });
  return root;
}

export function barChart(spec: ChartSpec): HTMLElement {
  const legend = h(
    'ul',
    { class: 'chart-legend' },
    spec.series.map((s) => h('li', null, h('span', { class: `swatch ${s.className}`, 'aria-hidden': 'true' }), s.label)),
  );
  const table = h(
    'div',
    { class: 'chart-table', tabindex: 0, role: 'region', 'aria-label': `${spec.title} (table)` },
    h(
      'table',
      { class: 'table table-compact', 'data-testid': `${spec.testId}-table` },
      h('caption', { class: 'visually-hidden' }, spec.title),
      h('thead', null, h('tr', null, h('th', { scope: 'col' }, 'From'), spec.series.map((s) => h('th', { scope: 'col', class: 'num' }, s.label)))),
      h(
        'tbody',
        null,
        spec.buckets.map((bucket, i) => h('tr', null, h('th', { scope: 'row', class: 'nowrap' }, bucket), spec.series.map((s) => h('td', { class: 'num' }, spec.format(s.values[i] ?? 0))))),
      ),
    ),
  );
  return h(
    'figure',
    { class: 'card chart-card', 'data-testid': spec.testId },
    h('figcaption', { class: 'card-title' }, spec.title),
    h('div', { class: 'chart-pair' }, h('div', { class: 'chart-box' }, chartImage(spec), legend), table),
  );
}
