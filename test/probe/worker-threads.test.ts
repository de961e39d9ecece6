/**
 * The addon in worker_threads: loads and samples in several workers at once, and shuts NVML
 * down at environment teardown even when the worker never called close(), including a worker
 * terminated while its native call is stuck (termination must not wait for the driver).
 */
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { createMockHost, type MockHost } from '../helpers/mock-host.js';
import { distIndex, nodeGypBuild, requireFile } from '../helpers/paths.js';
import { host } from '../helpers/scenarios.js';

let mock: MockHost;
let workerFile: string;

// The worker opens a probe on the mock, takes `samples` samples, reports, and then either
// closes the probe or leaves it open for environment teardown to clean up.
const WORKER_SOURCE = `
import { parentPort, workerData } from 'node:worker_threads';
const { openProbe } = await import(workerData.library);
const probe = await openProbe({ nvmlLibrary: workerData.nvml, cudaLibrary: false, timeoutMs: workerData.timeoutMs ?? 5000 });
const devices = [];
try {
  for (let i = 0; i < workerData.samples; i++) devices.push((await probe.sample()).devices.length);
  parentPort.postMessage({ devices });
} catch (error) {
  parentPort.postMessage({ error: error.code });
}
if (workerData.close) await probe.close();
else if (workerData.hang) await new Promise(() => setInterval(() => {}, 1000));
`;

function runWorker(data: Record<string, unknown>): { worker: Worker; message: Promise<any>; exited: Promise<number> } {
  const worker = new Worker(workerFile, {
    workerData: { library: pathToFileURL(distIndex).href, nvml: nodeGypBuild.mockNvml, ...data },
  });
  const message = new Promise((resolve, reject) => {
    worker.once('message', resolve);
    worker.once('error', reject);
  });
  const exited = new Promise<number>((resolve) => worker.once('exit', resolve));
  return { worker, message, exited };
}

function count(line: string): number {
  return mock.trace().filter((l) => l === line).length;
}

async function until(condition: () => boolean, ms = 3000): Promise<void> {
  const end = Date.now() + ms;
  while (!condition() && Date.now() < end) await new Promise((resolve) => setTimeout(resolve, 20));
}

beforeAll(() => {
  requireFile(distIndex, 'build the package (npm ci)');
  mock = createMockHost(host(3, 4), { trace: true });
  workerFile = path.join(mock.dir, 'probe-worker.mjs');
  writeFileSync(workerFile, WORKER_SOURCE);
});
afterAll(() => mock.remove());

describe('worker_threads', () => {
  it('several workers sample at once', async () => {
    const runs = Array.from({ length: 4 }, () => runWorker({ samples: 50, close: true }));
    const results = await Promise.all(runs.map((r) => r.message));
    for (const result of results) expect(result.devices).toEqual(Array(50).fill(3));
    await Promise.all(runs.map((r) => r.exited));
    expect(count('nvmlShutdown 0')).toBe(count('nvmlInit_v2 0'));
  });

  it('a terminated worker that never closed its probe still shuts NVML down', async () => {
    const inits = count('nvmlInit_v2 0');
    const shutdowns = count('nvmlShutdown 0');
    const { worker, message } = runWorker({ samples: 3, close: false, hang: true });
    expect((await message).devices).toEqual([3, 3, 3]);
    expect(count('nvmlInit_v2 0')).toBe(inits + 1);
    await worker.terminate();
    await until(() => count('nvmlShutdown 0') === shutdowns + 1);
    expect(count('nvmlShutdown 0')).toBe(shutdowns + 1);
  });

  it('terminating a worker whose native call is stuck does not wait for the driver', async () => {
    mock.write(host(3, 4, { delay: [{ symbol: 'nvmlDeviceGetCount_v2', ms: 2500 }] }));
    const shutdowns = count('nvmlShutdown 0');
    const { worker, message } = runWorker({ samples: 1, close: false, hang: true, timeoutMs: 200 });
    expect(await message).toEqual({ error: 'NVML_TIMEOUT' });
    const started = Date.now();
    await worker.terminate();
    expect(Date.now() - started).toBeLessThan(1000);
    mock.write(host(3, 4));
    // The shutdown runs on the probe's own thread once the stuck call returns.
    await until(() => count('nvmlShutdown 0') === shutdowns + 1, 5000);
    expect(count('nvmlShutdown 0')).toBe(shutdowns + 1);
  });
});
