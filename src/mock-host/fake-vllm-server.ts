/**
 * A vLLM server as the fake host has one: a loopback HTTP server answering every request with
 * the /metrics text of the server's current figures (requests running and waiting, KV-cache use,
 * the cache config and, where given, the request and token counters), in vLLM V1's metric names
 * and prometheus_client's exposition (counters with `_total` and a `_created` series).
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

/** A vLLM engine's cumulative counters since it started (they only grow; a restart sets them back). */
export interface FakeVllmCounters {
  /** vllm:prompt_tokens_total: prompt tokens prefilled. */
  promptTokens: number;
  /** vllm:generation_tokens_total. */
  generationTokens: number;
  /** vllm:request_success_total, one series per finished_reason (stop, length, abort). */
  requestsFinished: Readonly<Record<string, number>>;
  /** vllm:num_preemptions_total (absent: not exposed). */
  preemptions?: number;
  /** vllm:prefix_cache_queries_total and _hits_total, in tokens (absent: not exposed, as before vLLM 0.9). */
  prefixCacheQueries?: number;
  prefixCacheHits?: number;
  /** When the engine started (Unix seconds): each counter's `_created` series; absent: none written. */
  startedAt?: number;
}

export interface FakeVllmServer {
  /** The pid that listens on the server's port (an ancestor of its GPU workers). */
  listenerPid: number;
  model: string;
  running: number;
  waiting: number;
  kvCacheUsage: number;
  numGpuBlocks: number;
  /** The engine's counters; absent: /metrics exposes none (the gauges alone). */
  counters?: FakeVllmCounters;
}

/**
 * A float as prometheus_client writes it (floatToGoString: Python's repr, with an exponent past
 * six digits before the point, as Go writes floats): 12.0, 0.63, 4.125e+07.
 */
export function goFloat(value: number): string {
  const text = Number.isInteger(value) && Math.abs(value) < 1e16 ? `${value}.0` : String(value);
  const dot = text.indexOf('.');
  if (value <= 0 || dot <= 6 || text.includes('e')) return text;
  const mantissa = `${text[0]}.${text.slice(1, dot)}${text.slice(dot + 1)}`.replace(/[0.]+$/, '');
  return `${mantissa}e+0${dot - 1}`;
}

/** A counter's lines: HELP, TYPE and its series, then the `_created` gauge prometheus_client adds. */
function counterLines(name: string, help: string, series: readonly [labels: string, value: number][], startedAt: number | undefined): string[] {
  const lines = [`# HELP ${name}_total ${help}`, `# TYPE ${name}_total counter`, ...series.map(([labels, value]) => `${name}_total{${labels}} ${goFloat(value)}`)];
  if (startedAt !== undefined) {
    lines.push(`# HELP ${name}_created ${help}`, `# TYPE ${name}_created gauge`, ...series.map(([labels]) => `${name}_created{${labels}} ${goFloat(startedAt)}`));
  }
  return lines;
}

function countersText(counters: FakeVllmCounters, labels: string, model: string): string[] {
  const at = counters.startedAt;
  const lines = [
    ...counterLines('vllm:prompt_tokens', 'Number of prefill tokens processed.', [[labels, counters.promptTokens]], at),
    ...counterLines('vllm:generation_tokens', 'Number of generation tokens processed.', [[labels, counters.generationTokens]], at),
    ...counterLines(
      'vllm:request_success',
      'Count of successfully processed requests.',
      Object.entries(counters.requestsFinished).map(([reason, value]): [string, number] => [`engine="0",finished_reason="${reason}",model_name="${model}"`, value]),
      at,
    ),
  ];
  if (counters.preemptions !== undefined) lines.push(...counterLines('vllm:num_preemptions', 'Cumulative number of preemption from the engine.', [[labels, counters.preemptions]], at));
  if (counters.prefixCacheQueries !== undefined) {
    lines.push(...counterLines('vllm:prefix_cache_queries', 'Prefix cache queries, in terms of number of queried tokens.', [[labels, counters.prefixCacheQueries]], at));
  }
  if (counters.prefixCacheHits !== undefined) {
    lines.push(...counterLines('vllm:prefix_cache_hits', 'Prefix cache hits, in terms of number of cached tokens.', [[labels, counters.prefixCacheHits]], at));
  }
  return lines;
}

export interface MetricsServer {
  url: string;
  port: number;
  /** Replaces what the next scrape gets. */
  set(text: string): void;
  close(): Promise<void>;
}

export function vllmMetricsText(server: FakeVllmServer): string {
  const labels = `engine="0",model_name="${server.model}"`;
  return [
    '# HELP vllm:num_requests_running Number of requests in model execution batches.',
    '# TYPE vllm:num_requests_running gauge',
    `vllm:num_requests_running{${labels}} ${server.running}.0`,
    '# HELP vllm:num_requests_waiting Number of requests waiting to be processed.',
    '# TYPE vllm:num_requests_waiting gauge',
    `vllm:num_requests_waiting{${labels}} ${server.waiting}.0`,
    '# HELP vllm:kv_cache_usage_perc KV-cache usage. 1 means 100 percent usage.',
    '# TYPE vllm:kv_cache_usage_perc gauge',
    `vllm:kv_cache_usage_perc{${labels}} ${server.kvCacheUsage}`,
    '# HELP vllm:cache_config_info Information of the LLMEngine CacheConfig',
    '# TYPE vllm:cache_config_info gauge',
    `vllm:cache_config_info{block_size="16",cache_dtype="auto",enable_prefix_caching="True",engine="0",gpu_memory_utilization="0.9",num_gpu_blocks="${server.numGpuBlocks}"} 1.0`,
    ...(server.counters === undefined ? [] : countersText(server.counters, labels, server.model)),
    '',
  ].join('\n');
}

export async function serveMetrics(text: string): Promise<MetricsServer> {
  let body = text;
  const server: Server = createServer((_, response) => response.writeHead(200, { 'content-type': 'text/plain; version=0.0.4' }).end(body));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    set: (next) => {
      body = next;
    },
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}
