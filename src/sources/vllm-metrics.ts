/**
 * Reads a vLLM server's /metrics: per engine, KV-cache occupancy (vllm:kv_cache_usage_perc, or the
 * older vllm:gpu_cache_usage_perc), requests running and waiting, and the vllm:cache_config_info
 * labels (num_gpu_blocks, block_size, cache_dtype, ...). The text is parsed with
 * parse-prometheus-text-format; a malformed line fails the whole scrape, as it would in
 * Prometheus. Every failure (timeout, refused, HTTP error, not Prometheus text, no vLLM metrics)
 * is a typed reason; nothing throws.
 */
import parsePrometheusTextFormat from 'parse-prometheus-text-format';

import type { FieldError } from '../sample/schema.js';

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
