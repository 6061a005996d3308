import { z } from 'zod';
import { invalidField, RegistryError } from '../../../errors/registry-error';

/** Organization and user names share one namespace (Quay): an OCI path component without dots, 2–255 characters. */
export const NAMESPACE_NAME = /^(?=.{2,255}$)[a-z0-9]+(?:(?:_|__|-+)[a-z0-9]+)*$/;
export const NAMESPACE_NAME_HINT = 'lowercase letters and digits, separated by _ or -, 2 to 255 characters';
/** Robot short names (the part after `org+`). */
export const ROBOT_SHORT_NAME = /^[a-z][a-z0-9_]{1,254}$/;
export const ROBOT_SHORT_NAME_HINT = 'a lowercase letter, then lowercase letters, digits and _, 2 to 255 characters';

export const repoRole = z.enum(['read', 'write', 'admin']);
export const visibility = z.enum(['public', 'private']);

/** The first issue of a failed parse, as `field` and message. */
function firstIssue(error: z.ZodError, prefix: string): { field: string; message: string } {
  const issue = error.issues[0];
  const keys = issue.code === 'unrecognized_keys' ? issue.keys : [];
  const path = [...issue.path.map(String), ...(keys.length > 0 ? [keys[0]] : [])];
  const field = path.join('.') || prefix;
  const message = keys.length > 0 ? 'unknown field' : issue.message;
  return { field, message };
}

function parseWith<T extends z.ZodType>(schema: T, value: unknown, prefix: string): z.infer<T> {
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  const { field, message } = firstIssue(result.error, prefix);
  throw new RegistryError('INVALID_REQUEST', `${field}: ${message}`, {
    detail: {
      field,
      issues: result.error.issues.map((i) => ({ field: i.path.join('.') || prefix, message: i.message })),
    },
  });
}

/** Validates a JSON body; throws INVALID_REQUEST (400) naming the first bad field. */
export function parseBody<T extends z.ZodType>(schema: T, body: unknown): z.infer<T> {
  return parseWith(schema, body ?? {}, '(body)');
}

/** Validates query parameters (strings, or arrays when repeated); throws INVALID_REQUEST naming the parameter. */
export function parseQuery<T extends z.ZodType>(schema: T, query: unknown): z.infer<T> {
  return parseWith(schema, query ?? {}, '(query)');
}

/** A query flag: `true`/`1` or `false`/`0`. */
export const queryFlag = z
  .enum(['true', 'false', '1', '0'])
  .optional()
  .transform((v) => v === 'true' || v === '1');

/** A positive integer given as a query string. */
export function queryInt(min: number, max: number, fallback: number) {
  return z
    .string()
    .regex(/^\d{1,9}$/, 'must be a whole number')
    .default(String(fallback))
    .transform(Number)
    .pipe(z.number().int().min(min).max(max));
}

/** A path parameter that must match `pattern`; throws INVALID_REQUEST naming `field`. */
export function pathParam(value: unknown, field: string, pattern: RegExp, hint: string): string {
  if (typeof value !== 'string' || !pattern.test(value)) throw invalidField(field, hint);
  return value;
}
