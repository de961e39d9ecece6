/**
 * Runs a zod/mini schema with English messages. zod/mini ships without a locale (to stay small)
 * and gpu-layers must not configure zod globally for the host application, so the English error
 * map is passed per parse. The quiet variant is for files anyone could have written: its message
 * names only the schema's own keys (a record's keys in a failure's path come from the file).
 */
import * as z from 'zod/mini';
import { en } from 'zod/locales';

const english = en().localeError;

export type Validated<T> = { ok: true; data: T } | { ok: false; message: string };

export function validate<T>(schema: z.ZodMiniType<T>, value: unknown): Validated<T> {
  const result = schema.safeParse(value, { error: english });
  if (result.success) return { ok: true, data: result.data };
  return { ok: false, message: z.prettifyError(result.error) };
}

/** Like validate(), but path segments that are not in `schemaKeys` (nor indexes) show as `…`. */
export function validateQuietly<T>(schema: z.ZodMiniType<T>, value: unknown, schemaKeys: ReadonlySet<string>): Validated<T> {
  const result = schema.safeParse(value, { error: english });
  if (result.success) return { ok: true, data: result.data };
  const issues = result.error.issues.slice(0, 3).map((issue) => {
    const at = issue.path.map((key) => (typeof key === 'number' ? `[${key}]` : typeof key === 'string' && schemaKeys.has(key) ? `.${key}` : '.…')).join('');
    return at === '' ? issue.message : `${issue.message} at ${at.replace(/^\./, '')}`;
  });
  const more = result.error.issues.length - issues.length;
  return { ok: false, message: issues.join('; ') + (more > 0 ? ` (and ${more} more)` : '') };
}
