/**
 * Issue 18's "done when": a Node agent in a fresh project uses probe, watch and an embedded
 * exporter from the packed tarball, as an ES module and as CommonJS, written in TypeScript
 * strict. The project installs the tarball (prebuilt addon and mocks, nothing compiled) and
 * prom-client; one agent source is compiled twice by tsc (agent.mts, agent.cts); each agent runs
 * on the shipped mock NVML (gpu-layers/mock), mounts the exporter in its own HTTP server and
 * registry, fetches its own /metrics, closes everything and must exit by itself.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { repoRoot } from '../helpers/paths.js';
import { H100_TOTAL, h100, MiB } from '../helpers/scenarios.js';
import { packWithPrebuilds } from './packed-tarball.js';

/** Per GPU, the processes the mock reports (pid, bytes the driver charges it). */
const GPU_PROCESSES = [
  [
    { pid: 4242, usedBytes: 7168 * MiB },
    { pid: 4343, usedBytes: 1536 * MiB },
  ],
  [{ pid: 5151, usedBytes: 20_480 * MiB }],
];
const scenario = {
  driverVersion: '550.127.05',
  devices: GPU_PROCESSES.map((processes, index) => h100(index, processes.map((p) => ({ type: 'compute' as const, ...p })))),
};
const uuids = scenario.devices.map((d) => d.uuid!);
const WATCHED = 3;

/** What each agent prints: its sample, what it watched, and its own HTTP surface. */
interface AgentReport {
  sample: { driver: string | null; devices: { uuid: string | null; usedBytes: number | null; processes: [number, number | null][] }[] };
  watched: { devices: number; processes: number[] }[];
  metrics: string;
  gpuMetrics: { status: number; body: string };
  healthz: number;
  registryAfterClose: string;
}

// The agent, typed strictly against the package's declarations. Top-level await is not used, so
// the same text compiles as an ES module (.mts) and as CommonJS (.cts).
const AGENT = `
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Registry } from 'prom-client';
import { createExporter, isGpuLayersError, openMonitor, openProbe, type LayeredSample, type Sample } from 'gpu-layers';
import { mockEnvironment, writeScenario, type Scenario } from 'gpu-layers/mock';

async function main(): Promise<void> {
  const scenario: Scenario = JSON.parse(process.env.AGENT_SCENARIO ?? 'null');
  const scenarioFile = path.join(mkdtempSync(path.join(tmpdir(), 'agent-')), 'gpus.scenario');
  writeScenario(scenarioFile, scenario);
  Object.assign(process.env, mockEnvironment(scenarioFile));

  const probe = await openProbe({ timeoutMs: 5000 });
  const sample: Sample = await probe.sample();
  await probe.close();

  const monitor = await openMonitor({ layers: { statsDir: null } });
  const watched: LayeredSample[] = [];
  for await (const layered of monitor.watch({ intervalMs: 250 })) {
    watched.push(layered);
    if (watched.length === ${WATCHED}) break;
  }
  await monitor.close();

  const registry = new Registry();
  const exporter = await createExporter({ registry, intervalMs: 250, layers: { statsDir: null } });
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    if (req.url === '/metrics') {
      registry.metrics().then((text) => res.setHeader('content-type', registry.contentType).end(text));
    } else if (req.url?.startsWith('/gpu/')) {
      req.url = req.url.slice('/gpu'.length);
      exporter.handler(req, res);
    } else res.writeHead(404).end();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const base = 'http://127.0.0.1:' + (server.address() as AddressInfo).port;
  const metrics = await (await fetch(base + '/metrics')).text();
  const gpu = await fetch(base + '/gpu/metrics');
  const healthz = (await fetch(base + '/gpu/healthz')).status;
  const gpuMetrics = { status: gpu.status, body: await gpu.text() };
  await exporter.close();
  const registryAfterClose = await registry.metrics();
  await new Promise<void>((resolve, reject) => server.close((error) => (error ? reject(error) : resolve())));

  console.log(JSON.stringify({
    sample: {
      driver: sample.driver.version,
      devices: sample.devices.map((d) => ({ uuid: d.uuid, usedBytes: d.memory.usedBytes, processes: (d.processes ?? []).map((p) => [p.pid, p.usedBytes]) })),
    },
    watched: watched.map((w) => ({ devices: w.devices.length, processes: w.devices.flatMap((d) => (d.processes ?? []).map((p) => p.pid)) })),
    metrics,
    gpuMetrics,
    healthz,
    registryAfterClose,
  }));
}

main().catch((error: unknown) => {
  console.error(isGpuLayersError(error) ? error.code + ': ' + error.message : error);
  process.exitCode = 1;
});
`;

let work: string;
let project: string;

beforeAll(() => {
  work = mkdtempSync(path.join(tmpdir(), 'gpu-layers-agent-'));
  const tarball = packWithPrebuilds(work);
  project = path.join(work, 'agent');
  mkdirSync(project);
  writeFileSync(path.join(project, 'package.json'), JSON.stringify({ name: 'gpu-agent', private: true, type: 'module' }));
  const promClient = JSON.parse(readFileSync(path.join(repoRoot, 'package.json'), 'utf8')).dependencies['prom-client'];
  execFileSync('npm', ['install', '--no-audit', '--no-fund', '--prefer-offline', '--loglevel=error', tarball, `prom-client@${promClient}`], { cwd: project, encoding: 'utf8', stdio: 'pipe' });
  writeFileSync(path.join(project, 'agent.mts'), AGENT);
  writeFileSync(path.join(project, 'agent.cts'), AGENT);
  writeFileSync(
    path.join(project, 'tsconfig.json'),
    JSON.stringify({
      compilerOptions: { strict: true, target: 'ES2022', module: 'node16', moduleResolution: 'node16', types: ['node'], typeRoots: [path.join(repoRoot, 'node_modules/@types')], skipLibCheck: true },
      files: ['agent.mts', 'agent.cts'],
    }),
  );
}, 240_000);
afterAll(() => rmSync(work, { recursive: true, force: true }));

/** `name{...label="value"...} number` lines of an exposition, as numbers. */
function series(exposition: string, name: string, label: string, value: string): number[] {
  return exposition
    .split('\n')
    .filter((line) => line.startsWith(`${name}{`) && line.includes(`${label}="${value}"`))
    .map((line) => Number(line.slice(line.lastIndexOf(' ') + 1)));
}

function expectScenarioFigures(report: AgentReport): void {
  expect(report.sample.driver).toBe(scenario.driverVersion);
  expect(report.sample.devices).toEqual(
    GPU_PROCESSES.map((processes, i) => ({
      uuid: uuids[i],
      usedBytes: processes.reduce((sum, p) => sum + p.usedBytes, 0),
      processes: processes.map((p) => [p.pid, p.usedBytes]),
    })),
  );
  const pids = GPU_PROCESSES.flatMap((processes) => processes.map((p) => p.pid));
  expect(report.watched).toEqual(Array.from({ length: WATCHED }, () => ({ devices: GPU_PROCESSES.length, processes: pids })));
  for (const exposition of [report.metrics, report.gpuMetrics.body]) {
    GPU_PROCESSES.forEach((processes, i) => {
      expect(series(exposition, 'gpu_layers_device_memory_total_bytes', 'uuid', uuids[i]!)).toEqual([H100_TOTAL]);
      for (const p of processes) expect(series(exposition, 'gpu_layers_process_driver_memory_bytes', 'pid', String(p.pid))).toEqual([p.usedBytes]);
    });
  }
  expect(report.gpuMetrics.status).toBe(200);
  expect(report.healthz).toBe(200);
  // close() takes gpu-layers' families out of the agent's registry again.
  expect(report.registryAfterClose).not.toContain('gpu_layers_');
}

describe('a Node agent in a fresh project, from the packed tarball', () => {
  it('compiles under TypeScript strict, as an ES module and as CommonJS', { timeout: 120_000 }, () => {
    const tsc = spawnSync(process.execPath, [path.join(repoRoot, 'node_modules/typescript/bin/tsc'), '-p', project, '--pretty', 'false'], { encoding: 'utf8' });
    expect(tsc.stdout + tsc.stderr).toBe('');
    expect(tsc.status).toBe(0);
  });

  for (const [flavour, file] of [
    ['an ES module', 'agent.mjs'],
    ['CommonJS', 'agent.cjs'],
  ] as const) {
    it(`${flavour}: probes, watches and serves the exporter's figures of the mock, then exits by itself`, { timeout: 60_000 }, () => {
      const { GPU_LAYERS_NVML_LIB, GPU_LAYERS_CUDA_LIB, GPU_LAYERS_MOCK_SCENARIO, GPU_LAYERS_STATS_DIR, GPU_LAYERS_ADDON, ...inherited } = process.env;
      const run = spawnSync(process.execPath, [path.join(project, file)], {
        cwd: project,
        encoding: 'utf8',
        timeout: 45_000,
        env: { ...inherited, AGENT_SCENARIO: JSON.stringify(scenario), GPU_LAYERS_CACHE_DIR: path.join(work, 'cache') },
      });
      expect(run.signal, 'the agent did not exit by itself').toBeNull();
      expect(run.status, run.stderr).toBe(0);
      expectScenarioFigures(JSON.parse(run.stdout) as AgentReport);
    });
  }
});
