/** A plain data table. */
import { h, type Child } from './dom';

export interface Column<T> {
  title: string;
  cell: (row: T) => Child;
  /** CSS class for the column's cells (e.g. `num` for right-aligned numbers). */
  className?: string;
}

export function dataTable<T>(columns: readonly Column<T>[], rows: readonly T[], options: { testId?: string; rowKey?: (row: T) => string } = {}): HTMLDivElement {
  return h(
    'div',
    { class: 'table-wrap' },
    h(
      'table',
      { class: 'table', 'data-testid': options.testId },
      h('thead', null, h('tr', null, columns.map((c) => h('th', { class: c.className, scope: 'col' }, c.title)))),
      h(
        'tbody',
        null,
        rows.map((row) => h('tr', { 'data-key': options.rowKey?.(row) }, columns.map((c) => h('td', { class: c.className }, c.cell(row))))),
      ),
    ),
  );
}
