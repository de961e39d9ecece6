/**
 * Reads a vLLM server's /metrics: per engine, KV-cache occupancy (vllm:kv_cache_usage_perc, or the
 * older vllm:gpu_cache_usage_perc), requests running and waiting, and the vllm:cache_config_info
 * labels (num_gpu_blocks, block_size, cache_dtype, ...), and the request and token counters
 * (VllmCounters). Only the sample lines of those families are kept while the body streams in
 * (prometheus-family-lines.ts) and parsed, line by line, with parse-prometheus-text-format; a
 * malformed line among them fails the whole scrape, as it would in Prometheus. The deadline
 * covers the answer, the download and the parsing, which yields to the event loop every few
 * milliseconds (event-loop-slices.ts): a hostile page can neither stall the agent nor outlive
 * its deadline. Every failure (timeout, refused, HTTP error, too large, not Prometheus text, no
 * vLLM metrics) is a typed reason, never a partial figure; nothing throws.
 */
import parsePrometheusTextFormat from 'parse-prometheus-text-format';

import type { FieldError } from '../sample/schema.js';
import { DeadlinePassedError, sliceCheckpoint } from './event-loop-slices.js';
import { FamilyLineFilter, FamilyLinesError } from './prometheus-family-lines.js';

/**
 * vLLM's cumulative counters of one engine, as exposed (with `_total`; the `_created` series
 * prometheus_client adds beside each is not read). Each is null where the page does not expose
 * it or its value is not a finite number of at least 0. Names per era:
 * - V1 (the default from vLLM 0.8) declares them without `_total` (early V1 with it), which
 *   prometheus_client adds: the same exposed names as V0's for tokens, requests and preemptions,
 *   with an `engine` label (not yet in ~0.8). Prefix cache: early V1
 *   `vllm:gpu_prefix_cache_{queries,hits}_total` (in blocks in ~0.8, later tokens), renamed
 *   `vllm:prefix_cache_{queries,hits}_total` (deprecated in 0.9.2); 0.10 exposes both, 0.11
 *   shows the old names only with --show-hidden-metrics-for-version=0.10, and loggers.py marks
 *   them for removal in 0.12. The current name wins where both are there.
 * - V0 (vllm/engine/metrics.py) declared them with `_total`: `vllm:prompt_tokens_total` and
 *   `vllm:generation_tokens_total` (from 0.3), `vllm:request_success_total{finished_reason}` and
 *   `vllm:num_preemptions_total` (by 0.5; a ~0.4 page has no preemption counter), no prefix-cache
 *   counters (only the gauges vllm:gpu_prefix_cache_hit_rate / cpu_..., not read here), and no
 *   `_created` series (it disabled them).
 */
export interface VllmCounters {
  /** vllm:prompt_tokens_total */
  promptTokens: number | null;
  /** vllm:generation_tokens_total */
  generationTokens: number | null;
  /** vllm:request_success_total summed over finished_reason (null if any reason's value is not a count). */
  requestsFinished: number | null;
  /** vllm:num_preemptions_total */
  preemptions: number | null;
  /** vllm:prefix_cache_queries_total, or the older vllm:gpu_prefix_cache_queries_total */
  prefixCacheQueries: number | null;
  /** vllm:prefix_cache_hits_total, or the older vllm:gpu_prefix_cache_hits_total */
  prefixCacheHits: number | null;
}

export interface VllmEngineMetrics {
  /** The `engine` label (V1; data parallel gives several), null for V0. */
  engine: string | null;
  modelName: string | null;
  kvCacheUsage: number | null;
  requestsRunning: number | null;
  requestsWaiting: number | null;
  numGpuBlocks: number | null;
  blockSize: number | null;
  cacheDtype: string | null;
  /** Every cache_config_info label as vLLM stringified it (the set changes between versions). */
  cacheConfig: Record<string, string> | null;
  counters: VllmCounters;
}

export type VllmMetricsResult = { ok: true; url: string; engines: VllmEngineMetrics[] } | { ok: false; url: string; error: FieldError };

/**
 * A body larger than this is not a vLLM /metrics page. A V1 page is about 50 KB per engine and
 * served model: ~15 histograms of 20-30 buckets (~130 bytes a line with the engine, le and
 * model_name labels) and prometheus_client's process metrics. Eight data-parallel engines make
 * ~400 KB; LoRA adapters add one vllm:lora_requests_info line, not pages (V1 labels by the
 * served model only). 4 MiB is ten times that: it bounds the download, as the scan is linear.
 */
export const MAX_BODY_BYTES = 4 * 1024 * 1024;

/**
 * The longest line of a family read: vllm:cache_config_info, about 25 labels (~1 KB), or any
 * line with a model_name that is a path (PATH_MAX is 4096). Longer is not vLLM's.
 */
export const MAX_LINE_CHARS = 16 * 1024;

/**
 * All the lines read, together: each engine and model exposes ~15 of them (~3 KB with its
 * cache_config_info), so this is room for hundreds of engines.
 */
export const MAX_KEPT_CHARS = 1024 * 1024;

/** A chunk of the body is scanned in pieces of this many characters, each a slice of work. */
const SCAN_PIECE_CHARS = 16 * 1024;

/** A parser's complaint quotes the line; a long one is cut to this in the reason. */
const QUOTED_CHARS = 200;

/** Accepts a server base URL ("http://127.0.0.1:8000") or the /metrics URL itself. */
export function metricsUrl(endpoint: string): string {
  const url = new URL(endpoint);
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new TypeError(`not an http(s) URL: ${endpoint}`);
  if (url.pathname === '/' || url.pathname === '') url.pathname = '/metrics';
  return url.toString();
}

function failure(url: string, code: string, message: string): VllmMetricsResult {
  return { ok: false, url, error: { code, nvmlReturn: null, message } };
}

function number(value: string | undefined): number | null {
  // Number('') is 0: a sample line with no value must not read as a figure of 0.
  if (value === undefined || value.trim() === '') return null;
  const parsed = Number(value);
  return Number.isFinite(parsed) ? parsed : null;
}

/** A counter's value: finite and at least 0 (-0 read as 0), else null. */
function counterValue(value: string | undefined): number | null {
  const parsed = number(value);
  return parsed !== null && parsed >= 0 ? parsed + 0 : null;
}

/**
 * The exposed names of each counter, older first: where a version exposes both, the current one
 * (last) wins. parse-prometheus-text-format names a family by its first line, so a counter is
 * found under its `_total` name whether the page declares the family with `_total`
 * (prometheus_client's text format) or without it (then the `_total` samples form a family of
 * their own).
 */
const COUNTERS: readonly (readonly [Exclude<keyof VllmCounters, 'requestsFinished'>, readonly string[]])[] = [
  ['promptTokens', ['vllm:prompt_tokens_total']],
  ['generationTokens', ['vllm:generation_tokens_total']],
  ['preemptions', ['vllm:num_preemptions_total']],
  ['prefixCacheQueries', ['vllm:gpu_prefix_cache_queries_total', 'vllm:prefix_cache_queries_total']],
  ['prefixCacheHits', ['vllm:gpu_prefix_cache_hits_total', 'vllm:prefix_cache_hits_total']],
];

/** Every family name the reader looks at: the only sample lines kept from a page. */
const FAMILIES_READ: ReadonlySet<string> = new Set([
  'vllm:num_requests_running',
  'vllm:num_requests_waiting',
  'vllm:gpu_cache_usage_perc',
  'vllm:kv_cache_usage_perc',
  'vllm:cache_config_info',
  'vllm:request_success_total',
  ...COUNTERS.flatMap(([, names]) => names),
]);

/** A count label; null unless whole and below 2^53 ("None", "16.0", 400 digits). */
function integerLabel(labels: Record<string, string> | null, key: string): number | null {
  const value = labels?.[key];
  return value !== undefined && /^\d+$/.test(value) && Number.isSafeInteger(Number(value)) ? Number(value) : null;
}

type Sample = ReturnType<typeof parsePrometheusTextFormat>[number]['metrics'][number];

/** The samples of each family read, as the parser would give them for the kept lines. */
class KeptSamples {
  readonly byName = new Map<string, Sample[]>();
  #lastName: string | null = null;

  /** Parses one kept line; throws the parser's error for a malformed one. */
  add(line: string): void {
    for (const family of parsePrometheusTextFormat(`${line}\n`)) {
      // A name seen again after another family starts over, as the parser keeps the last run.
      let samples = this.byName.get(family.name);
      if (family.name !== this.#lastName || samples === undefined) this.byName.set(family.name, (samples = []));
      this.#lastName = family.name;
      for (const sample of family.metrics) {
        const last = samples.at(-1);
        // Consecutive lines of the same series are one sample (the later value wins), as in the parser.
        if (last !== undefined && sameLabels(last.labels, sample.labels)) Object.assign(last, { ...sample, labels: last.labels });
        else samples.push(sample);
      }
    }
  }
}

function sameLabels(a: Record<string, string> | undefined, b: Record<string, string> | undefined): boolean {
  if (a === undefined || b === undefined) return a === b;
  const keys = Object.keys(a);
  return keys.length === Object.keys(b).length && keys.every((key) => Object.hasOwn(b, key) && a[key] === b[key]);
}

function limitFailure(url: string, error: FamilyLinesError): VllmMetricsResult {
  return failure(url, 'VLLM_METRICS_TOO_LARGE', `${url}: ${error.message}`);
}

function invalidLine(url: string, error: unknown): VllmMetricsResult {
  const message = (error as Error).message;
  return failure(url, 'VLLM_METRICS_INVALID', `${url} is not valid Prometheus text: ${message.length > QUOTED_CHARS ? `${message.slice(0, QUOTED_CHARS)}...` : message}`);
}

/** What the scan alone tells: an empty body, or an HTML page. */
function verdictOfScan(url: string, filter: FamilyLineFilter): VllmMetricsResult | null {
  if (filter.firstVisible === null) return failure(url, 'VLLM_METRICS_EMPTY', `${url} returned an empty body`);
  // Not Prometheus text at all: an HTML page would otherwise pass as "no metrics".
  if (filter.firstVisible === '<') {
    return failure(url, 'VLLM_METRICS_INVALID', `${url} returned an HTML page, not Prometheus text (is this the vLLM server's port?)`);
  }
  return null;
}

/** Pure: the engines in a /metrics text, or a reason when it holds none. */
export function readVllmMetricsText(url: string, text: string): VllmMetricsResult {
  const filter = new FamilyLineFilter(FAMILIES_READ, { maxLineChars: MAX_LINE_CHARS, maxKeptChars: MAX_KEPT_CHARS });
  try {
    filter.push(text);
  } catch (error) {
    if (error instanceof FamilyLinesError) return limitFailure(url, error);
    throw error;
  }
  const verdict = verdictOfScan(url, filter);
  if (verdict !== null) return verdict;
  const samples = new KeptSamples();
  try {
    for (const line of filter.kept) samples.add(line);
  } catch (error) {
    return invalidLine(url, error);
  }
  return enginesOf(url, samples.byName, filter.otherFamilies);
}

/** Pure: the engines of the samples read, or a reason when there are none. */
function enginesOf(url: string, byName: ReadonlyMap<string, Sample[]>, otherFamilies: number): VllmMetricsResult {
  const engines = new Map<string, VllmEngineMetrics>();
  // Metrics are grouped by the `engine` label; V0 has none, so all its metrics are one engine.
  const engineOf = (labels: Record<string, string> | undefined): VllmEngineMetrics => {
    const key = labels?.engine ?? '';
    let engine = engines.get(key);
    if (engine === undefined) {
      engine = {
        engine: labels?.engine ?? null,
        modelName: null,
        kvCacheUsage: null,
        requestsRunning: null,
        requestsWaiting: null,
        numGpuBlocks: null,
        blockSize: null,
        cacheDtype: null,
        cacheConfig: null,
        counters: { promptTokens: null, generationTokens: null, requestsFinished: null, preemptions: null, prefixCacheQueries: null, prefixCacheHits: null },
      };
      engines.set(key, engine);
    }
    if (labels?.model_name !== undefined) engine.modelName = labels.model_name;
    return engine;
  };
  const gauge = (name: string, set: (engine: VllmEngineMetrics, value: number | null) => void): void => {
    for (const sample of byName.get(name) ?? []) set(engineOf(sample.labels), number(sample.value));
  };
  gauge('vllm:num_requests_running', (e, v) => (e.requestsRunning = v));
  gauge('vllm:num_requests_waiting', (e, v) => (e.requestsWaiting = v));
  // The older name first, so the current one wins where a version exposes both.
  gauge('vllm:gpu_cache_usage_perc', (e, v) => (e.kvCacheUsage = v));
  gauge('vllm:kv_cache_usage_perc', (e, v) => (e.kvCacheUsage = v));
  for (const sample of byName.get('vllm:cache_config_info') ?? []) {
    const labels = sample.labels ?? {};
    const engine = engineOf(labels);
    engine.cacheConfig = labels;
    engine.numGpuBlocks = integerLabel(labels, 'num_gpu_blocks');
    engine.blockSize = integerLabel(labels, 'block_size');
    engine.cacheDtype = labels.cache_dtype ?? null;
  }
  for (const [field, names] of COUNTERS) {
    for (const name of names) {
      for (const sample of byName.get(name) ?? []) engineOf(sample.labels).counters[field] = counterValue(sample.value);
    }
  }
  // One sample per finished_reason (stop, length, abort, error, ...): the engine's sum.
  const finished = new Map<VllmEngineMetrics, number | null>();
  for (const sample of byName.get('vllm:request_success_total') ?? []) {
    const engine = engineOf(sample.labels);
    const value = counterValue(sample.value);
    const sum = finished.has(engine) ? finished.get(engine)! : 0;
    finished.set(engine, sum === null || value === null ? null : sum + value);
  }
  for (const [engine, sum] of finished) engine.counters.requestsFinished = sum;
  for (const engine of engines.values()) {
    if (engine.kvCacheUsage !== null && (engine.kvCacheUsage < 0 || engine.kvCacheUsage > 1)) engine.kvCacheUsage = null;
  }
  if (engines.size === 0) {
    return failure(url, 'VLLM_METRICS_NOT_FOUND', `${url} answered, but with no vllm: metrics gpu-layers reads (${otherFamilies} other metric families)`);
  }
  return { ok: true, url, engines: [...engines.values()] };
}

class BodyTooLargeError extends Error {
  constructor() {
    super(`more than ${MAX_BODY_BYTES} bytes`);
    this.name = 'BodyTooLargeError';
  }
}

/** Streams the body through the filter, a slice at a time, within the body cap. */
async function scanBody(response: Response, filter: FamilyLineFilter, checkpoint: () => Promise<void>): Promise<void> {
  const reader = response.body?.getReader();
  if (reader === undefined) return;
  const decoder = new TextDecoder('utf-8');
  let size = 0;
  let done = false;
  try {
    for (;;) {
      const next = await reader.read();
      if (next.done) break;
      size += next.value.byteLength;
      if (size > MAX_BODY_BYTES) throw new BodyTooLargeError();
      const text = decoder.decode(next.value, { stream: true });
      for (let at = 0; at < text.length; at += SCAN_PIECE_CHARS) {
        await checkpoint();
        filter.push(text.slice(at, at + SCAN_PIECE_CHARS));
      }
    }
    filter.push(decoder.decode());
    done = true;
  } finally {
    // Stop the download (and free the connection) when the scan ends early.
    if (!done) await reader.cancel().catch(() => undefined);
  }
}

/**
 * Fetches and reads the /metrics of a vLLM server; `timeoutMs` covers the answer, the download
 * and the parsing.
 */
export async function fetchVllmMetrics(endpoint: string, timeoutMs: number): Promise<VllmMetricsResult> {
  let url: string;
  try {
    url = metricsUrl(endpoint);
  } catch {
    return failure(endpoint, 'VLLM_URL_INVALID', `not a URL: ${endpoint}`);
  }
  const deadline = AbortSignal.timeout(timeoutMs);
  const checkpoint = sliceCheckpoint(deadline);
  try {
    const response = await fetch(url, { signal: deadline, redirect: 'follow' });
    if (!response.ok) {
      await response.body?.cancel();
      return failure(url, 'VLLM_HTTP_ERROR', `${url} answered HTTP ${response.status} ${response.statusText}`);
    }
    const filter = new FamilyLineFilter(FAMILIES_READ, { maxLineChars: MAX_LINE_CHARS, maxKeptChars: MAX_KEPT_CHARS });
    await scanBody(response, filter, checkpoint);
    const verdict = verdictOfScan(url, filter);
    if (verdict !== null) return verdict;
    const samples = new KeptSamples();
    for (const line of filter.kept) {
      await checkpoint();
      try {
        samples.add(line);
      } catch (error) {
        return invalidLine(url, error);
      }
    }
    return enginesOf(url, samples.byName, filter.otherFamilies);
  } catch (error) {
    const name = (error as Error).name;
    if (error instanceof DeadlinePassedError || name === 'TimeoutError' || name === 'AbortError') {
      return failure(url, 'VLLM_TIMEOUT', `${url} did not answer within ${timeoutMs} ms (the deadline covers the answer, the download and reading it)`);
    }
    if (error instanceof BodyTooLargeError || error instanceof FamilyLinesError) return failure(url, 'VLLM_METRICS_TOO_LARGE', `${url}: ${error.message}`);
    const cause = (error as { cause?: { code?: string; message?: string } }).cause;
    return failure(url, 'VLLM_UNREACHABLE', `cannot reach ${url}: ${cause?.code ?? cause?.message ?? (error as Error).message}`);
  }
}
