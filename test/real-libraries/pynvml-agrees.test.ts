/**
 * A third-party NVML client (Debian's python3-pynvml) reading the project's mock with the same
 * scenario reports the same device memory and process figures as the addon: the mock's struct
 * layouts match what an independent client expects, not only the project's own reading.
 */
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { openProbe } from '../../src/probe/probe.js';
import type { Scenario } from '../../src/mock-host/scenario-schema.js';
import { createMockHost, type MockHost } from '../helpers/mock-host.js';
import { debian, nodeGypBuild, python, repoRoot, requireFile } from '../helpers/paths.js';
import { GiB, MiB, h100 } from '../helpers/scenarios.js';

const script = path.join(repoRoot, 'scripts/oracles/pynvml_sample.py');
let mock: MockHost;

function readWithPynvml(): any {
  const run = spawnSync(python, [script, 'once'], {
    env: { ...process.env, PYTHONPATH: debian.pynvmlDir, LD_LIBRARY_PATH: path.dirname(nodeGypBuild.mockNvml), GPU_LAYERS_MOCK_TRACE: '' },
    encoding: 'utf8',
  });
  if (run.status !== 0) throw new Error(`pynvml failed (${run.status}): ${run.stderr}`);
  return JSON.parse(run.stdout);
}

const scenario: Scenario = {
  driverVersion: '550.54.15',
  devices: [
    h100(0, [
      { type: 'compute', pid: 1201, usedBytes: 71 * GiB + 123 * MiB },
      { type: 'compute', pid: 1202, usedBytes: 17 },
      { type: 'graphics', pid: 1203, usedBytes: 2 * MiB },
    ]),
    h100(1, [{ type: 'mps', pid: 1301, usedBytes: 5 * GiB }]),
    h100(2, Array.from({ length: 64 }, (_, i) => ({ type: 'compute' as const, pid: 20000 + i, usedBytes: (i + 1) * 3 * MiB + i }))),
  ],
};

beforeAll(() => {
  requireFile(path.join(debian.pynvmlDir, 'pynvml.py'), 'run scripts/fixtures/fetch-debian-nvidia.sh (npm test does it first)');
  mock = createMockHost(scenario);
});
afterAll(() => mock.remove());

describe('pynvml and gpu-layers read the same mock', () => {
  it('report the same devices, memory and processes', async () => {
    const reference = readWithPynvml();
    const probe = await openProbe({ nvmlLibrary: nodeGypBuild.mockNvml, cudaLibrary: false });
    const sample = await probe.sample();
    await probe.close();

    expect(sample.driver.version).toBe(reference.driverVersion);
    expect(sample.devices).toHaveLength(reference.devices.length);
    for (const [i, ref] of reference.devices.entries()) {
      const device = sample.devices[i]!;
      expect(device.name).toBe(ref.name);
      expect(device.uuid).toBe(ref.uuid);
      expect(device.pci?.busId).toBe(ref.busId);
      expect(device.memory).toEqual({
        totalBytes: ref.memory.total,
        reservedBytes: ref.memory.reserved,
        usedBytes: ref.memory.used,
        freeBytes: ref.memory.free,
        version: 2,
      });
      expect(device.bar1).toEqual({ totalBytes: ref.bar1.total, usedBytes: ref.bar1.used, freeBytes: ref.bar1.free });
      expect(device.utilization).toEqual({ gpuPercent: ref.utilization.gpu, memoryPercent: ref.utilization.memory });
      const fromPynvml = [...ref.processes].sort((a, b) => a.pid - b.pid);
      const fromProbe = device.processes!.map((p) => ({ pid: p.pid, usedBytes: p.usedBytes, type: p.types[0] })).sort((a, b) => a.pid - b.pid);
      expect(fromProbe).toEqual(fromPynvml);
    }
    // Both read the scenario, not each other: the figures are the scenario's.
    expect(reference.devices[2].processes).toHaveLength(64);
    expect(reference.devices[0].processes[0]).toEqual({ pid: 1201, usedBytes: 71 * GiB + 123 * MiB, type: 'compute' });
  });

  it('agree on NVML_VALUE_NOT_AVAILABLE: None in pynvml, null in gpu-layers', async () => {
    mock.write({ devices: [h100(0, [{ type: 'compute', pid: 4444, usedBytes: 'na' }])] });
    const reference = readWithPynvml();
    expect(reference.devices[0].processes).toEqual([{ pid: 4444, usedBytes: null, type: 'compute' }]);
    const probe = await openProbe({ nvmlLibrary: nodeGypBuild.mockNvml, cudaLibrary: false });
    const sample = await probe.sample();
    await probe.close();
    expect(sample.devices[0]!.processes?.map((p) => ({ pid: p.pid, usedBytes: p.usedBytes, type: p.types[0] }))).toEqual(reference.devices[0].processes);
  });
});
