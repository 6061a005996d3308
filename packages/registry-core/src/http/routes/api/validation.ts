import type { z } from 'zod';
import { RegistryError } from '../../../errors/registry-error';

/** Validates a JSON body; throws INVALID_REQUEST (400) naming the first bad field. */
export function parseBody<T extends z.ZodType>(schema: T, body: unknown): z.infer<T> {
  const result = schema.safeParse(body ?? {});
  if (result.success) return result.data;
  const issue = result.error.issues[0];
  const field = issue.path.join('.') || '(body)';
  throw new RegistryError('INVALID_REQUEST', `${field}: ${issue.message}`, { detail: { field, issues: result.error.issues.map((i) => ({ field: i.path.join('.'), message: i.message })) } });
}
