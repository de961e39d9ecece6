/**
 * Flag parsing on node:util's parseArgs (strict: an unknown flag is a usage error, never
 * silently ignored), and the parsers for values the verbs share.
 */
import { parseArgs, type ParseArgsConfig } from 'node:util';

import { MIN_WATCH_INTERVAL_MS } from '../monitor/sampling-floor.js';
import { UsageError } from './usage.js';

type Options = NonNullable<ParseArgsConfig['options']>;

/**
 * "--timeout -5" as "--timeout=-5": parseArgs takes a value that starts with a dash for a flag
 * ("argument is ambiguous"); joined, the value reaches the flag's own parser, which says what
 * the flag expects.
 */
function joinNegativeValues(args: readonly string[], options: Options): string[] {
  const joined: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    if (arg === '--') {
      joined.push(...args.slice(i));
      break;
    }
    const next = args[i + 1];
    let name: string | undefined;
    if (/^--[^=]+$/.test(arg)) name = arg.slice(2);
    else if (/^-[^-]$/.test(arg)) name = Object.keys(options).find((key) => options[key]!.short === arg.slice(1));
    if (name !== undefined && Object.hasOwn(options, name) && options[name]!.type === 'string' && next !== undefined && /^-\.?\d/.test(next)) {
      joined.push(`--${name}=${next}`);
      i++;
    } else {
      joined.push(arg);
    }
  }
  return joined;
}

export function parseFlags<T extends Options>(args: string[], options: T) {
  try {
    return parseArgs({ args: joinNegativeValues(args, options), options, strict: true, allowPositionals: false }).values;
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
}

/** The same, for verbs that take files as positional arguments. */
export function parseFlagsAndFiles<T extends Options>(args: string[], options: T) {
  try {
    const parsed = parseArgs({ args: joinNegativeValues(args, options), options, strict: true, allowPositionals: true });
    return { flags: parsed.values, files: parsed.positionals };
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
}

const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

function spanText(ms: number): string {
  for (const unit of ['d', 'h', 'm', 's'] as const) if (ms % UNIT_MS[unit]! === 0) return `${ms / UNIT_MS[unit]!}${unit === 'm' ? ' min' : ` ${unit}`}`;
  return `${ms} ms`;
}

/**
 * "250", "250ms", "5s", "15m", "2h" or "1d" -> milliseconds, within [minMs, maxMs]. A bare number
 * is in `bareUnit` (milliseconds unless said otherwise: `--interval` says seconds).
 */
export function parseDuration(value: string, flag: string, bounds: { minMs: number; maxMs: number } = { minMs: 1, maxMs: 3_600_000 }, bareUnit: 'ms' | 's' = 'ms'): number {
  const match = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)?$/.exec(value.trim());
  if (match === null) throw new UsageError(`${flag} expects a duration like 500ms, 5s, 15m or 2h (a bare number is ${bareUnit === 's' ? 'seconds' : 'milliseconds'}), not "${value}"`);
  const ms = Math.round(Number(match[1]) * UNIT_MS[match[2] ?? bareUnit]!);
  if (!Number.isFinite(ms) || ms < bounds.minMs || ms > bounds.maxMs) throw new UsageError(`${flag} must be between ${spanText(bounds.minMs)} and ${spanText(bounds.maxMs)}, not "${value}"`);
  return ms;
}

const SIZE_UNITS: Record<string, number> = { '': 1, k: 1e3, kb: 1e3, kib: 1024, m: 1e6, mb: 1e6, mib: 1024 ** 2, g: 1e9, gb: 1e9, gib: 1024 ** 3 };

/** "500000", "100MB", "64MiB" or "1G" -> bytes. */
export function parseSize(value: string, flag: string): number {
  const match = /^(\d+(?:\.\d+)?)\s*([a-z]*)$/i.exec(value.trim());
  const unit = match === null ? undefined : SIZE_UNITS[match[2]!.toLowerCase()];
  if (match === null || unit === undefined) throw new UsageError(`${flag} expects a size like 100MB, 64MiB or 1G, not "${value}"`);
  const bytes = Math.round(Number(match[1]) * unit);
  if (bytes < 4096) throw new UsageError(`${flag} must be at least 4 KiB, not "${value}"`);
  return bytes;
}

/** A positive whole number. */
export function parseCount(value: string, flag: string): number {
  if (!/^\d+$/.test(value.trim()) || Number(value) < 1) throw new UsageError(`${flag} expects a whole number of at least 1, not "${value}"`);
  return Number(value);
}

/**
 * A sampling interval (`watch`, `record`, `serve`): a bare number is seconds, as `nvidia-smi -l 2`
 * and `watch -n 2` read it ("2" is 2 s; "500ms", "5s", "1m" as written); at least 250 ms, NVML's
 * process list holds a lock.
 */
export function parseInterval(value: string, flag: string): number {
  return parseDuration(value, flag, { minMs: MIN_WATCH_INTERVAL_MS, maxMs: 86_400_000 }, 's');
}

/**
 * An http(s) URL (`--vllm`): refused as a usage error before anything is sampled, so a typo is
 * not a silently empty layer. "127.0.0.1:8000" without its scheme is refused too (the URL parser
 * would read "127.0.0.1:" as the scheme).
 */
export function parseHttpUrl(value: string, flag: string): string {
  let url: URL | null = null;
  try {
    url = new URL(value.trim());
  } catch {
    // said below
  }
  if (url === null || (url.protocol !== 'http:' && url.protocol !== 'https:') || url.hostname === '') {
    throw new UsageError(`${flag} expects an http(s) URL like http://127.0.0.1:8000, not "${value}"`);
  }
  return value.trim();
}
