/**
 * A vLLM server as the fake host has one: a loopback HTTP server answering every request with
 * the /metrics text of the server's current figures (requests running and waiting, KV-cache use
 * and the cache config), in vLLM V1's metric names.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface FakeVllmServer {
  /** The pid that listens on the server's port (an ancestor of its GPU workers). */
  listenerPid: number;
  model: string;
  running: number;
  waiting: number;
  kvCacheUsage: number;
  numGpuBlocks: number;
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
