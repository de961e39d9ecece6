/**
 * Flag parsing on node:util's parseArgs (strict: an unknown flag is a usage error, never
 * silently ignored), and the parsers for values the verbs share.
 */
import { parseArgs, type ParseArgsConfig } from 'node:util';

import { UsageError } from './usage.js';

type Options = NonNullable<ParseArgsConfig['options']>;

export function parseFlags<T extends Options>(args: string[], options: T) {
  try {
    return parseArgs({ args, options, strict: true, allowPositionals: false }).values;
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
}

/** "250", "250ms" or "5s" -> milliseconds. */
export function parseDuration(value: string, flag: string): number {
  const match = /^(\d+(?:\.\d+)?)(ms|s)?$/.exec(value.trim());
  if (match === null) throw new UsageError(`${flag} expects a duration like 5000, 5000ms or 5s, not "${value}"`);
  const ms = Number(match[1]) * (match[2] === 's' ? 1000 : 1);
  if (!Number.isFinite(ms) || ms < 1 || ms > 3_600_000) throw new UsageError(`${flag} must be between 1 ms and 1 h`);
  return Math.round(ms);
}
