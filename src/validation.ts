/**
 * Runs a zod/mini schema with English messages. zod/mini ships without a locale (to stay small)
 * and gpu-layers must not configure zod globally for the host application, so the English error
 * map is passed per parse.
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
