/**
 * A real Prometheus (Debian's package, fetched into .cache by `npm run fixtures`) scraping
 * `gpu-layers serve` on the mock NVML with the repository's alert rules loaded: the series arrive
 * with the scenario's values, and when the GPU wedges (an NVML call that does not return),
 * GPULayersCollectFailing goes pending.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';

import { writeScenario } from '../../src/mock-host/scenario-text.js';
import { repoRoot } from '../helpers/paths.js';
import { host } from '../helpers/scenarios.js';
import { startServe } from '../helpers/serve.js';
import { testTool } from '../helpers/test-tools.js';

let work: string;
let scenarioFile: string;
const children: ChildProcess[] = [];
let promPort = 0;

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const server = createServer().listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

async function until<T>(what: string, probe: () => Promise<T | undefined>, ms = 30_000): Promise<T> {
  const end = Date.now() + ms;
  let last: unknown;
  for (;;) {
    try {
      const value = await probe();
      if (value !== undefined) return value;
    } catch (error) {
      last = error;
    }
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}${last === undefined ? '' : `: ${String(last)}`}`);
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}

async function api(query: string): Promise<any> {
  const response = await fetch(`http://127.0.0.1:${promPort}/api/v1/${query}`);
  return response.json();
}

beforeAll(async () => {
  work = mkdtempSync(path.join(tmpdir(), 'gpu-layers-prometheus-'));
  scenarioFile = path.join(work, 'host.scenario');
  writeScenario(scenarioFile, host(2, 2));
  const serve = await startServe(['--port', '0', '--interval', '500ms', '--timeout', '300ms', '--no-host'], scenarioFile);
  children.push(serve.child);
  const exporterPort = serve.port;

  promPort = await freePort();
  const config = path.join(work, 'prometheus.yml');
  writeFileSync(
    config,
    [
      'global: { scrape_interval: 1s, evaluation_interval: 1s }',
      `rule_files: [${JSON.stringify(path.join(repoRoot, 'deploy/prometheus/gpu-layers.rules.yml'))}]`,
      'scrape_configs:',
      `  - { job_name: gpu-layers, static_configs: [{ targets: ["127.0.0.1:${exporterPort}"] }] }`,
      '',
    ].join('\n'),
  );
  const prometheus = spawn(testTool('prometheus'), [`--config.file=${config}`, `--storage.tsdb.path=${path.join(work, 'data')}`, `--web.listen-address=127.0.0.1:${promPort}`], { stdio: 'ignore' });
  prometheus.on('error', () => {});
  children.push(prometheus);
  await until('Prometheus to be ready', async () => ((await fetch(`http://127.0.0.1:${promPort}/-/ready`)).ok ? true : undefined));
}, 60_000);

afterAll(() => {
  for (const child of children) child.kill('SIGKILL');
  rmSync(work, { recursive: true, force: true });
});

it('Prometheus scrapes the layers, and the collection alert goes pending when the GPU wedges', { timeout: 90_000 }, async () => {
  const scenario = host(2, 2);
  const total = await until('device memory in Prometheus', async () => {
    const result = (await api('query?query=gpu_layers_device_memory_total_bytes{gpu="1"}')).data?.result;
    return result?.length === 1 ? Number(result[0].value[1]) : undefined;
  });
  expect(total).toBe(scenario.devices[1]!.memory!.total);
  const processes = (await api('query?query=gpu_layers_process_driver_memory_bytes')).data.result;
  expect(processes.map((r: any) => [r.metric.pid, Number(r.value[1])]).sort()).toEqual(
    scenario.devices.flatMap((d) => d.processes!.map((p) => [String(p.pid), p.usedBytes])).sort(),
  );
  const up = (await api('query?query=up{job="gpu-layers"}')).data.result;
  expect(up[0].value[1]).toBe('1');

  writeScenario(scenarioFile, host(2, 2, { delay: [{ symbol: 'nvmlDeviceGetCount_v2', ms: 60_000 }] }));
  const alert = await until('GPULayersCollectFailing to be pending or firing', async () => {
    const alerts = (await api('alerts')).data?.alerts ?? [];
    return alerts.find((a: any) => a.labels.alertname === 'GPULayersCollectFailing' && (a.state === 'pending' || a.state === 'firing'));
  });
  expect(alert.labels.severity).toBeDefined();
  const success = (await api('query?query=gpu_layers_collect_success')).data.result;
  expect(success[0].value[1]).toBe('0');
});
