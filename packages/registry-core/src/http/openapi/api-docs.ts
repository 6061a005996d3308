import { OpenAPIRegistry, OpenApiGeneratorV31 } from '@asteasolutions/zod-to-openapi';
import { z } from 'zod';

export type HttpMethod = 'get' | 'put' | 'post' | 'delete' | 'patch';

export interface ApiResponseDoc {
  description: string;
  /** The JSON body; omitted for empty answers (204). */
  schema?: z.ZodType;
  /** Defaults to `application/json`. */
  contentType?: string;
}

/** One `/api/v1` operation, described with the zod schemas its handler validates with. */
export interface ApiOperation {
  method: HttpMethod;
  /** Below `/api/v1`, Express style (`/organization/:org/quota/:id`) or OpenAPI style (`/repository/{repository}/logs`). */
  path: string;
  /** Quay's operation id where Quay has the operation (`getOrganization`), else a new one in its style. */
  operationId: string;
  summary: string;
  tag: string;
  /** Who may call it, in words ("organization administrators"). */
  access: string;
  /** Descriptions of path parameters; every `:name` or `{name}` gets a string parameter. */
  params?: Record<string, string>;
  query?: z.ZodObject;
  body?: z.ZodType;
  responses: Record<number, ApiResponseDoc>;
  /** The feature flag that must be on, if any. */
  feature?: string;
}

/** What route groups (core and plugins) use to describe their operations. */
export interface ApiDocs {
  operation(op: ApiOperation): void;
}

/** A path template in OpenAPI form: `:org` and `*rest` become `{org}` and `{rest}`. */
export function openApiPath(path: string): string {
  return path.replace(/[:*]([A-Za-z_][A-Za-z0-9_]*)/g, '{$1}');
}

/** Quay's error body, as the one error handler writes it. */
const API_ERROR_SCHEMA = {
  type: 'object',
  description: "Quay's error shape; `detail.field` names the offending parameter or body field",
  properties: {
    error_message: { type: 'string' },
    error_type: { type: 'string' },
    status: { type: 'integer' },
    detail: { type: 'object', additionalProperties: true },
  },
  required: ['error_message', 'error_type', 'status'],
} as const;

/** Answers every operation may give, described once as components. */
const ERRORS: Record<number, { name: string; description: string }> = {
  400: { name: 'InvalidRequest', description: 'invalid request: a body field or parameter is wrong (`detail.field` names it)' },
  401: { name: 'Unauthorized', description: 'credentials missing or wrong' },
  403: { name: 'Denied', description: 'authenticated but not allowed' },
  404: { name: 'NotFound', description: 'no such organization, repository or item, or the feature is disabled' },
};

/** Collects operations and builds the OpenAPI 3.1 document of `/api/v1`. */
export class ApiDocsRegistry implements ApiDocs {
  private readonly registry = new OpenAPIRegistry();
  private readonly described: Array<{ method: HttpMethod; path: string }> = [];

  constructor(private readonly version: string) {
    this.registry.registerComponent('securitySchemes', 'basic', { type: 'http', scheme: 'basic', description: 'user `name:password`, or robot `<org>+<name>:<token>`' });
    this.registry.registerComponent('securitySchemes', 'bearer', { type: 'http', scheme: 'bearer', description: 'a token from `GET /v2/auth`' });
    this.registry.registerComponent('schemas', 'ApiError', { ...API_ERROR_SCHEMA, properties: { ...API_ERROR_SCHEMA.properties }, required: [...API_ERROR_SCHEMA.required] });
    for (const { name, description } of Object.values(ERRORS)) {
      this.registry.registerComponent('responses', name, { description, content: { 'application/json': { schema: { $ref: '#/components/schemas/ApiError' } } } });
    }
  }

  operation(op: ApiOperation): void {
    const path = openApiPath(op.path);
    this.described.push({ method: op.method, path });
    const names = [...path.matchAll(/\{([^}]+)\}/g)].map((m) => m[1]);
    const params = names.length === 0 ? undefined : z.object(Object.fromEntries(names.map((n) => [n, z.string().meta({ description: op.params?.[n] ?? n })])));
    const responses: Record<string, { description: string; content?: Record<string, { schema: z.ZodType }> } | { $ref: string }> = {};
    for (const [status, response] of Object.entries(op.responses)) {
      responses[status] = { description: response.description, ...(response.schema ? { content: { [response.contentType ?? 'application/json']: { schema: response.schema } } } : {}) };
    }
    for (const [status, { name }] of Object.entries(ERRORS)) responses[status] ??= { $ref: `#/components/responses/${name}` };
    this.registry.registerPath({
      method: op.method,
      path,
      operationId: op.operationId,
      summary: op.summary,
      description: `Who: ${op.access}.${op.feature ? ` Needs ${op.feature}.` : ''}`,
      tags: [op.tag],
      security: [{ basic: [] }, { bearer: [] }, {}],
      request: {
        ...(params ? { params } : {}),
        ...(op.query ? { query: op.query } : {}),
        ...(op.body ? { body: { content: { 'application/json': { schema: op.body } }, required: true } } : {}),
      },
      responses,
    });
  }

  /** Method and OpenAPI path of every described operation. */
  operations(): Array<{ method: HttpMethod; path: string }> {
    return [...this.described];
  }

  document(): Record<string, unknown> {
    const generator = new OpenApiGeneratorV31(this.registry.definitions);
    return generator.generateDocument({
      openapi: '3.1.0',
      info: {
        title: 'Entrepot API',
        version: this.version,
        description: "Entrepot's REST API (`/api/v1`), shaped like Quay's where Quay has the concept. Generated from the schemas that validate requests.",
      },
      servers: [{ url: '/api/v1' }],
    }) as unknown as Record<string, unknown>;
  }
}
