/**
 * All layers end to end: a real Python process runs the companion (fake torch), the mock NVML
 * lists it under its real pid, a vLLM fixture server answers /metrics, its startup log names the
 * pid, the context is calibrated through the mocks; `gpu-layers probe --json` must report every
 * layer and gap of that process exactly. Then each bad input spoils only its own layer.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { parseStatStartTime } from '../../src/sources/proc-files.js';
import { probeJsonAsync, runCli, runCliAsync } from '../helpers/cli.js';
import { createMockHost, type MockHost } from '../helpers/mock-host.js';
import { nodeGypBuild, python, repoRoot } from '../helpers/paths.js';
import { GiB, MiB, h100 } from '../helpers/scenarios.js';

const RESERVED = 60 * GiB;
const ALLOCATED = 52 * GiB;
const PRIVATE_POOLS = 768 * MiB;
const INACTIVE_SPLIT = 3 * GiB;
const DRIVER = 66 * GiB + 300 * MiB;
const CONTEXT = 512 * MiB;
const UUID = 'GPU-5d8a1e0c-7f3b-4a62-9c1e-2b8f0d4e6a17';

let mock: MockHost;
let worker: ChildProcess;
let pid: number;
let server: Server;
let url: string;
let statsDir: string;
let logFile: string;

function env(extra: Record<string, string | undefined> = {}): Record<string, string | undefined> {
  return {
    GPU_LAYERS_MOCK_SCENARIO: mock.scenarioFile,
    GPU_LAYERS_NVML_LIB: nodeGypBuild.mockNvml,
    GPU_LAYERS_CUDA_LIB: nodeGypBuild.mockCuda,
    GPU_LAYERS_CACHE_DIR: path.join(mock.dir, 'cache'),
    GPU_LAYERS_MOCK_TRACE: '',
    GPU_LAYERS_STATS_DIR: undefined,
    CUDA_MODULE_LOADING: undefined,
    ...extra,
  };
}

async function waitForFile(file: string, ms = 10_000): Promise<string> {
  const end = Date.now() + ms;
  for (;;) {
    try {
      return readFileSync(file, 'utf8');
    } catch {
      if (Date.now() > end) throw new Error(`no ${file}`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }
}

beforeAll(async () => {
  mock = createMockHost({ devices: [] });
  statsDir = path.join(mock.dir, 'stats');
  const state = path.join(mock.dir, 'torch.json');
  writeFileSync(
    state,
    JSON.stringify({
      initialized: true,
      devices: [
        {
          uuid: UUID.slice(4),
          name: 'NVIDIA H100 80GB HBM3',
          stats: {
            'reserved_bytes.all.current': RESERVED,
            'allocated_bytes.all.current': ALLOCATED,
            'active_bytes.all.current': ALLOCATED,
            'inactive_split_bytes.all.current': INACTIVE_SPLIT,
            'requested_bytes.all.current': ALLOCATED - MiB,
            num_alloc_retries: 1,
            num_ooms: 0,
            'reserved_bytes_by_private_pools.0_1.all.current': PRIVATE_POOLS,
          },
        },
      ],
    }),
  );
  const script = path.join(mock.dir, 'worker.py');
  writeFileSync(script, 'import time, torch\nprint("ready", flush=True)\ntime.sleep(120)\n');
  worker = spawn(python, [script], {
    env: {
      ...process.env,
      PYTHONPATH: [path.join(repoRoot, 'python/gpu_layers_companion'), path.join(repoRoot, 'test/fixtures/fake-torch')].join(':'),
      GPU_LAYERS_STATS_DIR: statsDir,
      GPU_LAYERS_STATS_INTERVAL: '0.2',
      FAKE_TORCH_STATE: state,
    },
    stdio: 'ignore',
  });
  pid = worker.pid!;
  await waitForFile(path.join(statsDir, `${pid}.json`));
  // The mock NVML lists the worker under its real pid, with a calibrated context size.
  mock.write({ driverVersion: '550.54.15', devices: [h100(0, [{ type: 'compute', pid, usedBytes: DRIVER }], { uuid: UUID, contextBytes: CONTEXT })] });
  const calibrate = runCli(['calibrate'], env());
  expect(calibrate.status, calibrate.stderr).toBe(0);

  const metrics = readFileSync(path.join(repoRoot, 'test/fixtures/vllm/metrics-v1.txt'), 'utf8');
  server = createServer((request, response) => {
    if (request.url === '/hang/metrics') return;
    if (request.url === '/html/metrics') return void response.end('<html>login</html>');
    response.end(metrics);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  logFile = path.join(mock.dir, 'vllm.log');
  writeFileSync(
    logFile,
    [
      `(VllmWorker TP0 pid=${pid}) INFO 11-26 08:00:01 [gpu_model_runner.py:2653] Model loading took 33.8820 GiB memory and 21.45 seconds`,
      `(VllmWorker TP0 pid=${pid}) INFO 11-26 08:00:20 [gpu_worker.py:298] Available KV cache memory: 18.06 GiB`,
      `(VllmWorker TP0 pid=${pid}) INFO 11-26 08:00:52 [gpu_model_runner.py:3480] Graph capturing finished in 31 secs, took 1.05 GiB`,
      '',
    ].join('\n'),
  );
}, 60_000);

afterAll(() => {
  worker?.kill('SIGKILL');
  server?.closeAllConnections();
  server?.close();
  mock?.remove();
});

const gib = (value: number) => Math.round(value * GiB);
const processOf = (json: any) => json.devices[0].processes.find((p: any) => p.pid === pid);

describe('gpu-layers probe with every source', () => {
  it('reports every layer and gap of the worker exactly', async () => {
    const { json } = await probeJsonAsync(env(), ['--stats-dir', statsDir, '--vllm', url, '--vllm-log', logFile]);
    const process = processOf(json);
    expect(process.layers).toMatchObject({
      driverBytes: DRIVER,
      contextBytes: CONTEXT,
      allocator: {
        reservedBytes: RESERVED,
        allocatedBytes: ALLOCATED,
        inactiveSplitBytes: INACTIVE_SPLIT,
        privatePoolBytes: PRIVATE_POOLS,
        numAllocRetries: 1,
        source: { file: path.join(statsDir, `${pid}.json`), torchVersion: '2.5.1+fake' },
      },
      framework: {
        engine: 'vllm',
        // The worker is a child of this test process, which serves the /metrics port.
        matchedBy: 'listening-socket',
        weightsBytes: gib(33.882),
        kvCacheBytes: gib(18.06),
        kvCacheSource: 'log',
        kvCacheUsage: 0.4217,
        numGpuBlocks: 24682,
        blockSize: 16,
        requestsRunning: 12,
        requestsWaiting: 3,
        cudaGraphBytes: gib(1.05),
        sources: { metrics: `${url}/metrics`, log: logFile },
      },
    });
    expect(process.gaps).toEqual({
      outsideAllocatorBytes: DRIVER - RESERVED,
      cudaGraphs: {
        insideAllocatorBytes: PRIVATE_POOLS,
        outsideAllocatorEstimateBytes: DRIVER - RESERVED - CONTEXT,
        totalEstimateBytes: PRIVATE_POOLS + DRIVER - RESERVED - CONTEXT,
      },
      allocatorCachedBytes: RESERVED - ALLOCATED - PRIVATE_POOLS,
      fragmentationRatio: INACTIVE_SPLIT / RESERVED,
    });
    expect(process.host.startTimeTicks).toBe(parseStatStartTime(readFileSync(`/proc/${pid}/stat`, 'utf8')));
    expect(process.host.rssBytes).toBeGreaterThan(0);
    expect(json.devices[0].contextBytes).toBe(CONTEXT);
    expect(json.devices[0].unattributedBytes).toBe(0);
    expect(json.sources.companion).toEqual({ location: statsDir, ok: true, error: null });
    expect(json.sources.vllmMetrics).toEqual([{ location: `${url}/metrics`, ok: true, error: null }]);
  });

  it('says it in words a person acts on', async () => {
    const run = await runCliAsync(['probe', '--stats-dir', statsDir, '--vllm', url, '--vllm-log', logFile], env());
    expect(run.status).toBe(0);
    const outside = ((DRIVER - RESERVED) / GiB).toFixed(1);
    const rest = ((DRIVER - RESERVED - CONTEXT) / GiB).toFixed(1);
    expect(run.stdout).toContain(`${outside} GiB outside the PyTorch allocator, of which ~${(CONTEXT / MiB).toFixed(1)} MiB is the CUDA context; the rest (${rest} GiB) is likely CUDA graphs and NCCL.`);
    expect(run.stdout).toContain(`${(PRIVATE_POOLS / MiB).toFixed(1)} MiB of the allocator is held by CUDA graph (private) pools.`);
    expect(run.stdout).toMatch(/vLLM: weights 33\.9 GiB, KV cache 18\.1 GiB \(42% in use\)/);
  });
});

describe('gpu-layers doctor', () => {
  it('finds every piece in place', async () => {
    const run = await runCliAsync(['doctor', '--json', '--stats-dir', statsDir, '--vllm', url, '--vllm-log', logFile], env());
    expect(run.status, run.stderr).toBe(0);
    const { checks } = JSON.parse(run.stdout);
    const verdict = (id: string) => checks.filter((c: any) => c.id === id).map((c: any) => c.ok);
    expect(verdict('nvml')).toEqual([true]);
    expect(verdict('calibration')).toEqual([true]);
    expect(verdict('companion')).toEqual([true]);
    expect(verdict('vllm')).toEqual([true]);
    expect(verdict('vllm-log')).toEqual([true]);
    expect(verdict('pid-namespace')).toEqual([true]);
  });

  it('a hanging vLLM endpoint: the deadline it was given (--vllm-timeout), and the fix', async () => {
    const run = await runCliAsync(['doctor', '--json', '--vllm', `${url}/hang/metrics`, '--vllm-timeout', '300ms'], env());
    // Something to fix: exit 1.
    expect(run.status, run.stderr).toBe(1);
    const vllm = JSON.parse(run.stdout).checks.find((c: any) => c.id === 'vllm');
    expect(vllm).toMatchObject({ ok: false, detail: expect.stringContaining('300 ms'), fix: expect.stringContaining('--vllm-timeout') });
  });

  it('explains a missing companion with its fix', async () => {
    const run = await runCliAsync(['doctor'], env({ GPU_LAYERS_STATS_DIR: undefined }));
    expect(run.stdout).toMatch(/✗ Allocator layer: no stats folder configured/);
    expect(run.stdout).toMatch(/fix: enable the companion in the workload/);
  });
});

describe('each bad input spoils only its own layer', () => {
  it('a truncated companion file: allocator null with COMPANION_INVALID, the rest intact', async () => {
    const badStats = path.join(mock.dir, 'bad-stats');
    mkdirSync(badStats, { recursive: true });
    writeFileSync(path.join(badStats, `${pid}.json`), '{"format":"gpu-layers-companion","version":1,"pid":');
    const process = processOf((await probeJsonAsync(env(), ['--stats-dir', badStats, '--vllm', url])).json);
    expect(process.layers.allocator).toBeNull();
    expect(process.errors['layers.allocator'].code).toBe('COMPANION_INVALID');
    expect(process.layers.framework.kvCacheUsage).toBe(0.4217);
    expect(process.layers.contextBytes).toBe(CONTEXT);
  });

  it('a companion file from an earlier process with the same pid is refused', async () => {
    const reused = path.join(mock.dir, 'reused-stats');
    mkdirSync(reused, { recursive: true });
    const document = JSON.parse(readFileSync(path.join(statsDir, `${pid}.json`), 'utf8'));
    writeFileSync(path.join(reused, `${pid}.json`), JSON.stringify({ ...document, startTimeTicks: document.startTimeTicks - 1000 }));
    const process = processOf((await probeJsonAsync(env(), ['--stats-dir', reused])).json);
    expect(process.errors['layers.allocator'].code).toBe('COMPANION_OTHER_PROCESS');
  });

  it('an HTML page and a server that never answers: the metrics source says why, allocator intact', async () => {
    const { json } = await probeJsonAsync(env(), ['--stats-dir', statsDir, '--vllm', `${url}/html/metrics`, '--vllm', `${url}/hang/metrics`, '--vllm-timeout', '500']);
    expect(json.sources.vllmMetrics.map((s: any) => s.error.code)).toEqual(['VLLM_METRICS_INVALID', 'VLLM_TIMEOUT']);
    expect(processOf(json).layers.allocator.reservedBytes).toBe(RESERVED);
  });

  it('a log with none of the known lines and a config without the needed fields', async () => {
    const log = path.join(mock.dir, 'nginx.log');
    writeFileSync(log, '127.0.0.1 - - GET / 200\n');
    const config = path.join(mock.dir, 'config.json');
    writeFileSync(config, JSON.stringify({ architectures: ['LlamaForCausalLM'], torch_dtype: 'bfloat16' }));
    const { json } = await probeJsonAsync(env(), ['--stats-dir', statsDir, '--vllm', url, '--vllm-log', log, '--hf-config', config]);
    expect(json.sources.vllmLog.error.code).toBe('LOG_NO_KNOWN_LINES');
    expect(json.sources.hfConfig.error.code).toBe('HF_CONFIG_INCOMPLETE');
    const process = processOf(json);
    expect(process.layers.framework.weightsBytes).toBeNull();
    expect(process.layers.framework.kvCacheUsage).toBe(0.4217);
    expect(process.layers.allocator.reservedBytes).toBe(RESERVED);
  });

  it('a stats folder that does not exist', async () => {
    const { json } = await probeJsonAsync(env(), ['--stats-dir', path.join(mock.dir, 'nowhere')]);
    expect(json.sources.companion.error.code).toBe('COMPANION_DIR_MISSING');
    expect(processOf(json).errors['layers.allocator'].code).toBe('COMPANION_MISSING');
  });
});
