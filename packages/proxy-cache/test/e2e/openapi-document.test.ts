/**
 * The OpenAPI document of /api/v1: generated from the zod schemas that validate
 * requests, valid OpenAPI 3.1, describing exactly the routes Express serves, and
 * the same as the copy the web UI generates its client types from.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { compileErrors, validate } from '@readme/openapi-parser';
import { startEntrepot, type TestInstance } from '../../../../testing/entrepot-instance';
import { createPlugin } from '../../src/index';

const WEB_UI_COPY = join(__dirname, '../../../web-ui/src/api/openapi.json');

describe('the /api/v1 OpenAPI document', () => {
  let inst: TestInstance;
  let document: Record<string, unknown>;

  beforeAll(async () => {
    inst = await startEntrepot({ plugins: [createPlugin] });
    const res = await fetch(`${inst.url}/api/v1/openapi.json`);
    expect(res.status).toBe(200);
    document = (await res.json()) as Record<string, unknown>;
  });

  afterAll(() => inst?.stop());

  it('is served to anyone at /api/v1/openapi.json and at Quay\'s /api/v1/discovery', async () => {
    expect(document).toMatchObject({ openapi: '3.1.0', info: { title: 'Entrepot API' } });
    const discovery = await fetch(`${inst.url}/api/v1/discovery`);
    expect(discovery.status).toBe(200);
    expect(await discovery.json()).toEqual(document);
  });

  it('validates as OpenAPI 3.1', async () => {
    const result = await validate(structuredClone(document) as Parameters<typeof validate>[0]);
    expect(result.valid ? 'valid' : compileErrors(result)).toBe('valid');
  });

  it('describes every route Express serves, and nothing else', () => {
    const key = (method: string, path: string) => `${method.toUpperCase()} ${path}`;
    const described = new Set(inst.entrepot.api.describedOperations().map((o) => key(o.method, o.path)));
    const served = inst.entrepot.api.servedRoutes();
    expect(served.length).toBeGreaterThan(40);
    const undescribed = served
      .filter((r) => (r.method === 'all' ? ![...described].some((d) => d.endsWith(` ${r.path}`)) : !described.has(key(r.method, r.path))))
      .map((r) => `${key(r.method, r.path)} is served but has no OpenAPI description: call docs.operation({...}) with its zod schemas where the route is registered`);
    expect(undescribed).toEqual([]);
    const servedKeys = new Set(served.map((r) => key(r.method, r.path)));
    const stale = [...described].filter((d) => !servedKeys.has(d)).map((d) => `${d} is described but not served`);
    expect(stale).toEqual([]);
    // The document holds every described operation.
    const paths = document.paths as Record<string, Record<string, unknown>>;
    for (const op of inst.entrepot.api.describedOperations()) expect(paths[op.path]?.[op.method]).toBeDefined();
  });

  it('uses the request schemas the handlers validate with', () => {
    const paths = document.paths as Record<string, Record<string, { requestBody?: { content: Record<string, { schema: unknown }> } }>>;
    const schemas = (document.components as { schemas: Record<string, { properties?: Record<string, unknown>; additionalProperties?: boolean }> }).schemas;
    expect(paths['/organization/{org}/proxycache'].post.requestBody?.content['application/json'].schema).toEqual({ $ref: '#/components/schemas/ProxyCacheInput' });
    expect(Object.keys(schemas.ProxyCacheInput.properties ?? {})).toEqual(expect.arrayContaining(['upstream_registry', 'org_name', 'stale_if_error_s']));
    expect(schemas.ProxyCacheInput.additionalProperties).toBe(false);
    const robot = paths['/organization/{org}/robots/{short}'].put.requestBody?.content['application/json'].schema as { properties: { description: { maxLength: number } } };
    expect(robot.properties.description.maxLength).toBe(255);
  });

  it("is the copy the web UI's client types are generated from (npm run api:generate -w @entrepot/web-ui)", () => {
    const copy: unknown = JSON.parse(readFileSync(WEB_UI_COPY, 'utf8'));
    expect(copy).toEqual(document);
  });
});
