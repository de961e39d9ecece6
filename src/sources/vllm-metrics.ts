/**
 * Reads a vLLM server's /metrics: per engine, KV-cache occupancy (vllm:kv_cache_usage_perc, or the
 * older vllm:gpu_cache_usage_perc), requests running and waiting, and the vllm:cache_config_info
 * labels (num_gpu_blocks, block_size, cache_dtype, ...), and the request and token counters
 * (VllmCounters). The text is parsed with
 * parse-prometheus-text-format; a malformed line fails the whole scrape, as it would in
 * Prometheus. Every failure (timeout, refused, HTTP error, not Prometheus text, no vLLM metrics)
 * is a typed reason; nothing throws.
 */
import parsePrometheusTextFormat from 'parse-prometheus-text-format';

import type { FieldError } from '../sample/schema.js';

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

/** A body larger than this is not a /metrics page worth reading. */
const MAX_BODY_BYTES = 32 * 1024 * 1024;

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
  if (value === undefined) return null;
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

/** A count label; null unless whole and below 2^53 ("None", "16.0", 400 digits). */
function integerLabel(labels: Record<string, string> | null, key: string): number | null {
  const value = labels?.[key];
  return value !== undefined && /^\d+$/.test(value) && Number.isSafeInteger(Number(value)) ? Number(value) : null;
}

/** Pure: the engines in a /metrics text, or a reason when it holds none. */
export function readVllmMetricsText(url: string, text: string): VllmMetricsResult {
  if (text.trim() === '') return failure(url, 'VLLM_METRICS_EMPTY', `${url} returned an empty body`);
  // The parser skips what it cannot read as a sample line; an HTML page would pass as "no metrics".
  if (text.trimStart().startsWith('<')) {
    return failure(url, 'VLLM_METRICS_INVALID', `${url} returned an HTML page, not Prometheus text (is this the vLLM server's port?)`);
  }
  let families;
  try {
    families = parsePrometheusTextFormat(text);
  } catch (error) {
    return failure(url, 'VLLM_METRICS_INVALID', `${url} is not valid Prometheus text: ${(error as Error).message}`);
  }
  const byName = new Map(families.map((family) => [family.name, family.metrics]));
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
    return failure(url, 'VLLM_METRICS_NOT_FOUND', `${url} answered, but with no vllm: metrics (${families.length} other metric families)`);
  }
  return { ok: true, url, engines: [...engines.values()] };
}

async function readBody(response: Response): Promise<string> {
  const reader = response.body?.getReader();
  if (reader === undefined) return '';
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > MAX_BODY_BYTES) {
      await reader.cancel();
      throw Object.assign(new Error(`more than ${MAX_BODY_BYTES} bytes`), { code: 'TOO_LARGE' });
    }
    chunks.push(value);
  }
  return Buffer.concat(chunks).toString('utf8');
}

/** Fetches and reads the /metrics of a vLLM server, within `timeoutMs`. */
export async function fetchVllmMetrics(endpoint: string, timeoutMs: number): Promise<VllmMetricsResult> {
  let url: string;
  try {
    url = metricsUrl(endpoint);
  } catch {
    return failure(endpoint, 'VLLM_URL_INVALID', `not a URL: ${endpoint}`);
  }
  try {
    const response = await fetch(url, { signal: AbortSignal.timeout(timeoutMs), redirect: 'follow' });
    if (!response.ok) {
      await response.body?.cancel();
      return failure(url, 'VLLM_HTTP_ERROR', `${url} answered HTTP ${response.status} ${response.statusText}`);
    }
    return readVllmMetricsText(url, await readBody(response));
  } catch (error) {
    const name = (error as Error).name;
    if (name === 'TimeoutError' || name === 'AbortError') {
      return failure(url, 'VLLM_TIMEOUT', `${url} did not answer within ${timeoutMs} ms`);
    }
    if ((error as { code?: string }).code === 'TOO_LARGE') return failure(url, 'VLLM_METRICS_TOO_LARGE', `${url}: ${(error as Error).message}`);
    const cause = (error as { cause?: { code?: string; message?: string } }).cause;
    return failure(url, 'VLLM_UNREACHABLE', `cannot reach ${url}: ${cause?.code ?? cause?.message ?? (error as Error).message}`);
  }
}
