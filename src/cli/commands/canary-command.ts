/**
 * `gpu-layers canary --openai URL --model NAME`: is a serving engine's greedy output under load
 * the output it gives alone? Readable or --json; exits 1 when a scheduler-state-mismatch finding
 * is at or above --fail-on (default critical), 2 on a usage error, 4 when the endpoint cannot be
 * used (unreachable, timeouts, HTML, 5xx, wrong JSON, ...). The bearer token comes from
 * GPU_LAYERS_CANARY_TOKEN only.
 */
import type { CanaryOptions } from '../../canary/canary-options.js';
import { CANARY_PROMPTS } from '../../canary/prompt-set.js';
import { runCanary } from '../../canary/run-canary.js';
import { SEVERITIES, type Severity } from '../../diagnosis/finding-schema.js';
import { isGpuLayersError } from '../../errors.js';
import { useColor, type CliIo } from '../cli-io.js';
import { EXIT_CODE_OF, EXIT_FINDING, EXIT_OK } from '../exit-codes.js';
import { parseCount, parseDuration, parseFlags, parseSize } from '../parse-flags.js';
import { renderCanary } from '../render/canary-text.js';
import { makeStyle } from '../render/style.js';
import { CANARY_HELP, UsageError } from '../usage.js';
import { parseSeverity } from './diagnose-command.js';

/** "8-1000" (or one number) -> [8, 1000]. */
function parseRange(value: string, flag: string): [number, number] {
  const match = /^\s*(\d+)\s*(?:(?:-|\.\.)\s*(\d+))?\s*$/.exec(value);
  if (match === null) throw new UsageError(`${flag} expects a range like 8-256 (or one number), not "${value}"`);
  const min = Number(match[1]);
  const max = match[2] === undefined ? min : Number(match[2]);
  if (min < 1 || max < min) throw new UsageError(`${flag} expects MIN-MAX with 1 <= MIN <= MAX, not "${value}"`);
  return [min, max];
}

function parseWhole(value: string, flag: string): number {
  if (!/^\d+$/.test(value.trim())) throw new UsageError(`${flag} expects a whole number, not "${value}"`);
  return Number(value);
}

function parsePromptCount(value: string): number {
  const n = parseCount(value, '--prompts');
  if (n > CANARY_PROMPTS.length) throw new UsageError(`--prompts must be between 1 and ${CANARY_PROMPTS.length} (the fixed prompts), not "${value}"`);
  return n;
}

function parseNats(value: string, flag: string): number {
  const n = Number(value);
  if (!/^\d+(\.\d+)?$/.test(value.trim()) || !(n > 0)) throw new UsageError(`${flag} expects a margin in nats above 0, like 0.5, not "${value}"`);
  return n;
}

export async function canaryCommand(args: string[], io: CliIo): Promise<number> {
  const flags = parseFlags(args, {
    openai: { type: 'string' },
    model: { type: 'string' },
    concurrency: { type: 'string' },
    runs: { type: 'string' },
    prompts: { type: 'string' },
    'max-tokens': { type: 'string' },
    'prompt-words': { type: 'string' },
    'output-tokens': { type: 'string' },
    duration: { type: 'string' },
    budget: { type: 'string' },
    timeout: { type: 'string' },
    logprobs: { type: 'string' },
    'near-tie': { type: 'string' },
    'batch-invariant': { type: 'boolean' },
    'ca-file': { type: 'string' },
    'max-response-size': { type: 'string' },
    json: { type: 'boolean' },
    'fail-on': { type: 'string' },
    help: { type: 'boolean', short: 'h' },
  });
  if (flags.help === true) {
    io.stdout.write(CANARY_HELP);
    return EXIT_OK;
  }
  if (flags.openai === undefined) throw new UsageError('canary needs --openai URL (the OpenAI-compatible server, e.g. http://127.0.0.1:8000/v1)');
  if (flags.model === undefined) throw new UsageError('canary needs --model NAME (the served model, as GET /v1/models lists it)');
  const failOn: Severity = flags['fail-on'] === undefined ? 'critical' : parseSeverity(flags['fail-on']);
  const options: CanaryOptions = {
    url: flags.openai,
    model: flags.model,
    concurrency: flags.concurrency === undefined ? undefined : parseCount(flags.concurrency, '--concurrency'),
    runsPerPrompt: flags.runs === undefined ? undefined : parseCount(flags.runs, '--runs'),
    promptCount: flags.prompts === undefined ? undefined : parsePromptCount(flags.prompts),
    maxTokens: flags['max-tokens'] === undefined ? undefined : parseCount(flags['max-tokens'], '--max-tokens'),
    fillerPromptWords: flags['prompt-words'] === undefined ? undefined : parseRange(flags['prompt-words'], '--prompt-words'),
    fillerMaxTokens: flags['output-tokens'] === undefined ? undefined : parseRange(flags['output-tokens'], '--output-tokens'),
    durationMs: flags.duration === undefined ? undefined : parseDuration(flags.duration, '--duration', { minMs: 100, maxMs: 86_400_000 }),
    requestBudget: flags.budget === undefined ? undefined : parseCount(flags.budget, '--budget'),
    requestTimeoutMs: flags.timeout === undefined ? undefined : parseDuration(flags.timeout, '--timeout', { minMs: 50, maxMs: 3_600_000 }),
    logprobs: flags.logprobs === undefined ? undefined : parseWhole(flags.logprobs, '--logprobs'),
    nearTieMarginNats: flags['near-tie'] === undefined ? undefined : parseNats(flags['near-tie'], '--near-tie'),
    batchInvariant: flags['batch-invariant'] === true,
    caFile: flags['ca-file'] ?? null,
    maxResponseBytes: flags['max-response-size'] === undefined ? undefined : parseSize(flags['max-response-size'], '--max-response-size'),
    env: io.env,
    onProgress: io.stderr.isTTY === true && flags.json !== true
      ? (p) => io.stderr.write(`\r${p.phase === 'reference' ? 'alone' : 'under load'}: ${p.done}/${p.total} (${p.requestsSent} requests sent)\u001b[K`)
      : undefined,
  };

  let result;
  try {
    result = await runCanary(options);
  } catch (error) {
    if (io.stderr.isTTY === true) io.stderr.write('\r\u001b[K');
    // The canary's errors carry what to do; main() would print the message alone.
    if (!isGpuLayersError(error) || error.category === 'gpu') throw error;
    io.stderr.write(`gpu-layers canary: ${error.message} [${error.code}]\n`);
    for (const hint of error.hints) io.stderr.write(`  ${hint}\n`);
    if (error.category === 'usage') io.stderr.write('Run `gpu-layers canary --help` for usage.\n');
    return EXIT_CODE_OF[error.category];
  }
  if (io.stderr.isTTY === true && flags.json !== true) io.stderr.write('\r\u001b[K');

  if (flags.json === true) io.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
  else io.stdout.write(renderCanary(result, makeStyle(useColor(io)), io.stdout.columns || 100));
  if (result.findings.some((f) => SEVERITIES.indexOf(f.severity) >= SEVERITIES.indexOf(failOn))) return EXIT_FINDING;
  return EXIT_OK;
}
