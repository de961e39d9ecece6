/**
 * Device health through createExporter on the real addon and the mock NVML: a GPU the mock
 * reports lost (GPU_IS_LOST on every call for GPU 0) is gpu_layers_device_up 0 under the UUID it
 * had, with the NVML error as gpu_layers_device_error_info, while the others stay up and the
 * collection succeeds; with every NVML call failing after the start, each GPU seen before is
 * down with the reason; and all come back up when the driver answers again. deviceHealth on its
 * own: a device whose memory cannot be read is down, one no longer listed is NOT_LISTED.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { createExporter, type Exporter } from '../../src/exporter/create-exporter.js';
import { deviceHealth, NOT_LISTED } from '../../src/exporter/device-health.js';
import { createMockHost, type MockHost } from '../helpers/mock-host.js';
import { nodeGypBuild } from '../helpers/paths.js';
import { host } from '../helpers/scenarios.js';

let mock: MockHost;
const probe = { nvmlLibrary: nodeGypBuild.mockNvml, cudaLibrary: false as const, timeoutMs: 1000 };
const layers = { statsDir: null, host: false };

beforeAll(() => {
  mock = createMockHost(host(2, 1));
});
afterAll(() => mock.remove());

interface Series {
  labels: Record<string, string>;
  value: number;
}

/** Every series of `name` in the exposition, with its labels parsed. */
function series(text: string, name: string): Series[] {
  const out: Series[] = [];
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue;
    const labels: Record<string, string> = {};
    for (const m of line.matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) labels[m[1]!] = m[2]!.replace(/\\(.)/g, '$1');
    out.push({ labels, value: Number(line.slice(line.lastIndexOf(' ') + 1)) });
  }
  return out;
}

describe('gpu_layers_device_up end to end', () => {
  let exporter: Exporter;
  let uuids: string[];

  beforeAll(async () => {
    mock.write(host(2, 1));
    exporter = await createExporter({ intervalMs: 3_600_000, probe, layers, onCollectError: () => {} });
    uuids = series(await exporter.metrics(), 'gpu_layers_device_up').map((s) => s.labels.uuid!);
  });
  afterAll(async () => {
    await exporter.close();
  });

  it('is 1 for every GPU NVML reads, with no error series', async () => {
    const text = await exporter.metrics();
    expect(series(text, 'gpu_layers_device_up')).toEqual([
      { labels: { gpu: '0', uuid: expect.stringMatching(/^GPU-/) }, value: 1 },
      { labels: { gpu: '1', uuid: expect.stringMatching(/^GPU-/) }, value: 1 },
    ]);
    expect(new Set(uuids).size).toBe(2);
    expect(series(text, 'gpu_layers_device_error_info')).toEqual([]);
  });

  it('a lost GPU 0 is down under the UUID it had, with the NVML error; GPU 1 stays up and the collection succeeds', async () => {
    mock.write({ ...host(2, 1), rc: [{ symbol: '*', rc: 15, device: 0 }] });
    await exporter.collect();
    const text = await exporter.metrics();
    expect(series(text, 'gpu_layers_device_up')).toEqual([
      { labels: { gpu: '0', uuid: uuids[0] }, value: 0 },
      { labels: { gpu: '1', uuid: uuids[1] }, value: 1 },
    ]);
    const [error, ...others] = series(text, 'gpu_layers_device_error_info');
    expect(others).toEqual([]);
    expect(error).toEqual({ labels: { gpu: '0', uuid: uuids[0], code: 'NVML_ERROR_GPU_IS_LOST', reason: 'the GPU has fallen off the bus or is otherwise inaccessible' }, value: 1 });
    expect(series(text, 'gpu_layers_collect_success')).toEqual([{ labels: {}, value: 1 }]);
    // GPU 0's memory is unknown (absent), GPU 1's is there; no series under an empty uuid.
    expect(series(text, 'gpu_layers_device_memory_bytes').filter((s) => s.labels.gpu === '0')).toEqual([]);
    expect(series(text, 'gpu_layers_device_memory_bytes').some((s) => s.labels.gpu === '1')).toBe(true);
    expect(text).not.toContain('uuid=""');
  });

  it('with every NVML call failing, each GPU seen before is down with the reason', async () => {
    mock.write({ ...host(2, 1), rc: [{ symbol: '*', rc: 15 }] });
    await exporter.collect();
    const text = await exporter.metrics();
    const up = series(text, 'gpu_layers_device_up');
    const errors = series(text, 'gpu_layers_device_error_info');
    // The device count fails: the sample comes back with no devices, and the collection
    // completes (what it covers: NVML answered); both GPUs seen before are down, by what NVML said.
    expect(series(text, 'gpu_layers_collect_success')).toEqual([{ labels: {}, value: 1 }]);
    expect(up).toEqual([
      { labels: { gpu: '0', uuid: uuids[0] }, value: 0 },
      { labels: { gpu: '1', uuid: uuids[1] }, value: 0 },
    ]);
    expect(errors).toEqual(
      [0, 1].map((gpu) => ({
        labels: { gpu: String(gpu), uuid: uuids[gpu], code: 'NVML_ERROR_GPU_IS_LOST', reason: 'the device count failed: the GPU has fallen off the bus or is otherwise inaccessible' },
        value: 1,
      })),
    );
  });

  it('every GPU is back up, and the error series gone, when NVML answers again', async () => {
    mock.write(host(2, 1));
    await exporter.collect();
    const text = await exporter.metrics();
    expect(series(text, 'gpu_layers_device_up')).toEqual([
      { labels: { gpu: '0', uuid: uuids[0] }, value: 1 },
      { labels: { gpu: '1', uuid: uuids[1] }, value: 1 },
    ]);
    expect(series(text, 'gpu_layers_device_error_info')).toEqual([]);
  });
});

describe('deviceHealth', () => {
  const memory = { totalBytes: 100, usedBytes: 10 };
  const noMemory = { totalBytes: null, usedBytes: null };
  const rc = (code: string, message: string) => ({ code, nvmlReturn: 999, message });

  it('a device whose memory cannot be read is down with the memory call\'s error', () => {
    const known = new Map<string, number>();
    const health = deviceHealth({ devices: [{ index: 0, uuid: 'GPU-a', memory: noMemory, errors: { memory: rc('NVML_ERROR_UNKNOWN', 'unknown error') } }], errors: {} }, known);
    expect(health).toEqual([{ gpu: '0', uuid: 'GPU-a', up: false, error: { code: 'NVML_ERROR_UNKNOWN', reason: 'its memory could not be read: unknown error' } }]);
  });

  it('a device seen before and no longer listed is down, NOT_LISTED, under its last index', () => {
    const known = new Map<string, number>();
    deviceHealth({ devices: [{ index: 0, uuid: 'GPU-a', memory, errors: {} }, { index: 1, uuid: 'GPU-b', memory, errors: {} }], errors: {} }, known);
    // GPU-a fell off the bus; NVML renumbers GPU-b to 0.
    const health = deviceHealth({ devices: [{ index: 0, uuid: 'GPU-b', memory, errors: {} }], errors: {} }, known);
    expect(health).toEqual([
      { gpu: '0', uuid: 'GPU-a', up: false, error: { code: NOT_LISTED, reason: expect.any(String) } },
      { gpu: '0', uuid: 'GPU-b', up: true, error: null },
    ]);
  });
});
