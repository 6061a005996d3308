/** The API reference: the server's own OpenAPI document (`/api/v1/openapi.json`), rendered by tag. */
import type { OpenApiDocument, Operation, Schema } from '../api/openapi-document';
import type { AppContext } from '../app/context';
import { h, mount, type Child } from '../ui/dom';
import { pageHeader } from './layout';

const refName = (ref: string): string => ref.split('/').pop() ?? ref;

/** A one-line description of a schema's type and limits: `string ≤ 255`, `"lru" | "lfu"`, `Quota[]`. */
export function typeText(schema: Schema | undefined): string {
  if (!schema) return 'any';
  if (schema.$ref) return refName(schema.$ref);
  if (schema.enum) return schema.enum.map((v) => JSON.stringify(v)).join(' | ');
  if (schema.const !== undefined) return JSON.stringify(schema.const);
  const union = schema.anyOf ?? schema.oneOf;
  if (union) return union.map(typeText).join(' | ');
  if (schema.type === 'array' || (Array.isArray(schema.type) && schema.type.includes('array'))) return `${typeText(schema.items)}[]`;
  const base = Array.isArray(schema.type) ? schema.type.join(' | ') : (schema.type ?? 'object');
  const limits = [
    schema.format,
    schema.minimum !== undefined ? `≥ ${schema.minimum}` : null,
    schema.maximum !== undefined ? `≤ ${schema.maximum}` : null,
    schema.maxLength !== undefined ? `≤ ${schema.maxLength} chars` : null,
  ].filter((l): l is string => typeof l === 'string');
  return limits.length > 0 ? `${base} (${limits.join(', ')})` : base;
}

function resolve(doc: OpenApiDocument, schema: Schema | undefined): Schema | undefined {
  return schema?.$ref ? doc.components?.schemas?.[refName(schema.$ref)] : schema;
}

function fieldsTable(doc: OpenApiDocument, schema: Schema | undefined, testId?: string): Child {
  const resolved = resolve(doc, schema);
  if (!resolved?.properties) return h('p', null, h('code', null, typeText(schema)));
  const required = new Set(resolved.required ?? []);
  return h(
    'table',
    { class: 'table api-fields', ...(testId ? { 'data-testid': testId } : {}) },
    h('thead', null, h('tr', null, h('th', null, 'field'), h('th', null, 'type'), h('th', null, ''))),
    h(
      'tbody',
      null,
      Object.entries(resolved.properties).map(([name, prop]) =>
        h('tr', null, h('td', null, h('code', null, name), required.has(name) ? null : h('span', { class: 'muted' }, ' optional')), h('td', null, typeText(prop)), h('td', { class: 'muted' }, prop.description ?? '')),
      ),
    ),
  );
}

function operationCard(doc: OpenApiDocument, path: string, method: string, op: Operation): HTMLElement {
  const params = op.parameters ?? [];
  const body = op.requestBody?.content['application/json']?.schema;
  return h(
    'details',
    { class: 'card api-op', 'data-testid': `api-op-${op.operationId ?? `${method} ${path}`}` },
    h('summary', null, h('span', { class: `badge api-method api-${method}` }, method.toUpperCase()), h('code', null, `/api/v1${path}`), h('span', { class: 'muted' }, ` ${op.summary ?? ''}`)),
    op.description ? h('p', null, op.description) : null,
    params.length > 0
      ? [
          h('h4', null, 'Parameters'),
          h('ul', null, params.map((p) => h('li', null, h('code', null, p.name), ` (${p.in}${p.required ? ', required' : ''}): ${typeText(p.schema)}`, p.schema?.description ? ` — ${p.schema.description}` : ''))),
        ]
      : null,
    body ? [h('h4', null, 'Body', body.$ref ? h('span', { class: 'muted' }, ` ${refName(body.$ref)}`) : null), fieldsTable(doc, body)] : null,
    h('h4', null, 'Responses'),
    h(
      'ul',
      null,
      Object.entries(op.responses).map(([status, r]) => {
        const schema = r.content ? Object.values(r.content)[0]?.schema : undefined;
        return h('li', null, h('strong', null, status), ` ${r.description}`, schema ? [' — ', h('code', null, typeText(schema))] : null);
      }),
    ),
  );
}

/** Groups the document's operations by their first tag, in document order. */
export function operationsByTag(doc: OpenApiDocument): Map<string, Array<{ path: string; method: string; op: Operation }>> {
  const groups = new Map<string, Array<{ path: string; method: string; op: Operation }>>();
  for (const [path, item] of Object.entries(doc.paths)) {
    for (const [method, op] of Object.entries(item)) {
      const tag = op.tags?.[0] ?? 'other';
      groups.set(tag, [...(groups.get(tag) ?? []), { path, method, op }]);
    }
  }
  return groups;
}

export async function renderApiReferencePage(ctx: AppContext, main: HTMLElement): Promise<void> {
  const doc = await ctx.api.openApiDocument();
  const groups = operationsByTag(doc);
  mount(
    main,
    pageHeader([], 'API reference', h('a', { class: 'btn btn-secondary', href: '/api/v1/openapi.json', download: 'entrepot-openapi.json' }, 'OpenAPI document')),
    h('p', { class: 'muted' }, doc.info.description ?? '', ` Version ${doc.info.version}.`),
    [...groups].map(([tag, ops]) => h('section', { class: 'api-tag', 'data-testid': `api-tag-${tag}` }, h('h2', null, tag), ops.map((o) => operationCard(doc, o.path, o.method, o.op)))),
  );
}
