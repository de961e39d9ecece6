/**
 * `runCanary()`: the sequence-consistency check of an OpenAI-compatible serving engine (the
 * write-up's third case, "Scheduler-state mismatch: wrong output, no OOM, non-deterministic;
 * detection: sequence-level checksum comparison"). Each fixed prompt is decoded greedily alone,
 * one after the other (the reference), then again among concurrent requests of varied lengths
 * (the load), and each run under load is compared with its reference: checksums of the token
 * sequences, the first diverging position, the reference token's margin there, and what the
 * output did after it. The verdict and findings: verdict.ts; the near-tie threshold: near-tie.ts.
 */
import { readFile } from 'node:fs/promises';

import { GpuLayersError } from '../errors.js';
import { readBearerToken } from './bearer-token.js';
import { canaryResultSchema, CANARY_SCHEMA_VERSION, type CanaryPromptResult, type CanaryResult } from './canary-schema.js';
import { resolveCanaryOptions, type CanaryOptions } from './canary-options.js';
import { checksumOf, compareRun, marginAt } from './compare-runs.js';
import type { Completion } from './completion.js';
import { JsonTransport, urlText } from './json-post.js';
import { planLoad } from './load-plan.js';
import { runLoad } from './load-runner.js';
import { apiBase, OpenAiClient } from './openai-client.js';
import { CANARY_PROMPTS } from './prompt-set.js';
import { RequestBudget } from './request-budget.js';
import { judgeCanary, promptOutcome } from './verdict.js';

const LOOPBACK: ReadonlySet<string> = new Set(['localhost', '127.0.0.1', '[::1]', '::1']);
const PROMPT_PREVIEW_CHARS = 80;

async function readCa(file: string): Promise<string> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    throw new GpuLayersError('CANARY_CA_FILE_UNREADABLE', `cannot read the CA file ${file}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);
  }
  if (!text.includes('-----BEGIN CERTIFICATE-----')) throw new GpuLayersError('CANARY_CA_FILE_UNREADABLE', `${file} holds no PEM certificate (-----BEGIN CERTIFICATE-----)`);
  return text;
}

/** Every string in `value`, redacted. */
function redactStrings<T>(value: T, redact: (text: string) => string): T {
  if (typeof value === 'string') return redact(value) as T;
  if (Array.isArray(value)) return value.map((item) => redactStrings(item, redact)) as T;
  if (value !== null && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([key, item]) => [key, redactStrings(item, redact)])) as T;
  }
  return value;
}

/** Alternatives per position the references came with (0: no logprobs). */
function logprobsReturned(references: readonly Completion[]): number {
  let most = 0;
  for (const completion of references) for (const position of completion.positions ?? []) most = Math.max(most, position.top?.length ?? 0);
  return most;
}

function preview(text: string): string {
  const flat = text.replace(/\s+/g, ' ').trim();
  return flat.length > PROMPT_PREVIEW_CHARS ? `${flat.slice(0, PROMPT_PREVIEW_CHARS - 1)}…` : flat;
}

export async function runCanary(options: CanaryOptions): Promise<CanaryResult> {
  const o = resolveCanaryOptions(options);
  const base = apiBase(o.url);
  const token = readBearerToken(o.env);
  const extraCa = o.caFile === null ? null : await readCa(o.caFile);
  const prompts = CANARY_PROMPTS.slice(0, o.promptCount);
  const plan = planLoad(prompts.length, {
    concurrency: o.concurrency,
    runsPerPrompt: o.runsPerPrompt,
    fillerPromptWords: o.fillerPromptWords,
    fillerMaxTokens: o.fillerMaxTokens,
    requestBudget: o.requestBudget,
  });
  const budget = new RequestBudget(o.requestBudget);
  const transport = new JsonTransport({ timeoutMs: o.requestTimeoutMs, maxResponseBytes: o.maxResponseBytes, token, extraCa, maxSockets: o.concurrency });
  const client = new OpenAiClient({ base, model: o.model, logprobs: o.logprobs, seed: o.seed, transport, budget });
  const warnings: string[] = [];
  if (token !== null && base.protocol === 'http:' && !LOOPBACK.has(base.hostname)) warnings.push(`the bearer token was sent over plain http to ${base.host}; use https`);
  const startedAt = new Date();
  const probeRequest = (promptIndex: number) => ({ prompt: prompts[promptIndex]!.prompt, maxTokens: o.maxTokens });

  try {
    const references: Completion[] = [];
    for (let i = 0; i < prompts.length; i++) {
      references.push(await client.complete(probeRequest(i), o.signal));
      o.onProgress?.({ phase: 'reference', done: i + 1, total: prompts.length, requestsSent: budget.used });
    }
    const load = await runLoad({
      load: plan.load,
      concurrency: o.concurrency,
      durationMs: o.durationMs,
      budget,
      probeRequest,
      complete: (request, signal) => client.complete(request, signal),
      signal: o.signal,
      onProbeDone: (done) => o.onProgress?.({ phase: 'load', done, total: plan.probes, requestsSent: budget.used }),
    });
    const finishedAt = new Date();

    const judgement = { nearTieMarginNats: o.nearTieMarginNats, batchInvariant: o.batchInvariant };
    const promptResults: CanaryPromptResult[] = prompts.map((prompt, index) => {
      const reference = references[index]!;
      const runs = load.probes
        .filter((probe) => probe.promptIndex === index)
        .sort((a, b) => a.run - b.run)
        .map((probe) => ({ run: probe.run, ...compareRun(reference, probe.completion, judgement) }));
      return {
        id: prompt.id,
        prompt: preview(prompt.prompt),
        reference: { checksum: checksumOf(reference), tokens: reference.positions?.length ?? null, finishReason: reference.finishReason },
        runs,
        outcome: promptOutcome(runs),
      };
    });
    const endpoint = urlText(base);
    const { counts, verdict, findings } = judgeCanary(promptResults, {
      endpoint,
      model: o.model,
      startedAt: startedAt.toISOString(),
      finishedAt: finishedAt.toISOString(),
      nearTieMarginNats: o.nearTieMarginNats,
      batchInvariant: o.batchInvariant,
    });

    const logprobs = logprobsReturned(references);
    warnings.push(...client.warnings);
    if (o.logprobs > 0 && client.logprobs > 0 && logprobs === 0) warnings.push('the server returned no logprobs although they were asked for: margins are unknown, so divergences cannot be told from numeric noise');
    if (logprobs === 1) warnings.push('the server returned one alternative per position: there is no runner-up, so margins are unknown (ask for --logprobs 2 or more)');
    const notGreedy = references.reduce((n, c) => n + (c.positions ?? []).filter((p) => (marginAt(p)?.marginNats ?? 0) < -0.01).length, 0);
    if (notGreedy > 0) warnings.push(`${notGreedy} reference token(s) were not the most likely one: the server does not decode greedily at temperature 0, so sequences can differ without any fault`);
    if (load.probes.length === 0) warnings.push('no prompt ran under load (the duration or the budget ran out first): nothing was compared');
    if (load.fillerFailures > 0) warnings.push(`${load.fillerFailures} of the other requests failed (${load.firstFillerError ?? 'unknown'}); the load was lighter than planned`);

    const result: CanaryResult = {
      schemaVersion: CANARY_SCHEMA_VERSION,
      endpoint,
      model: o.model,
      api: client.api,
      logprobs,
      nearTieMarginNats: o.nearTieMarginNats,
      batchInvariant: o.batchInvariant,
      startedAt: startedAt.toISOString(),
      finishedAt: finishedAt.toISOString(),
      load: {
        concurrency: o.concurrency,
        runsPerPrompt: o.runsPerPrompt,
        durationMs: o.durationMs,
        elapsedMs: load.elapsedMs,
        requestBudget: o.requestBudget,
        requestsSent: budget.used,
        probesPlanned: plan.probes,
        probesRun: load.probes.length,
        fillersPlanned: plan.fillers,
        fillersRun: load.fillersRun,
        fillerFailures: load.fillerFailures,
        firstFillerError: load.firstFillerError,
        maxInFlight: load.maxInFlight,
        stoppedBy: load.stoppedBy,
      },
      prompts: promptResults,
      counts,
      verdict,
      findings,
      warnings,
    };
    // What the server sent is in the result (continuations, messages): no token may leave with it.
    return canaryResultSchema.parse(token === null ? result : redactStrings(result, (text) => token.redact(text)));
  } finally {
    transport.close();
  }
}
