/**
 * A CUDA out-of-memory end to end: a real Python process runs the real companion under the fake
 * torch, listed by the mock NVML as a GPU process and read through the real /proc and its stats
 * folder. Its live tensors grow over a few samples, then the fake allocator raises an
 * out-of-memory through PyTorch's observer path: the companion writes its file at once, the
 * monitor's next sample carries the allocator's last OOM, and the flight recorder writes the
 * window, naming the process, every process on that GPU, and what grew before.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

import { diagnose } from '../../src/diagnosis/diagnose.js';
import { FlightRecorder, type Flight } from '../../src/flight-recorder/flight-recorder.js';
import { FakeHost } from '../../src/mock-host/fake-host.js';
import { openMonitor } from '../../src/monitor/monitor.js';
import { readRecording } from '../../src/recording/read-recording.js';
import { python, repoRoot } from '../helpers/paths.js';
import { GiB, h100, MiB } from '../helpers/scenarios.js';

const host = new FakeHost();
let child: ChildProcess | undefined;
afterAll(async () => {
  child?.kill('SIGKILL');
  await host.close();
});

describe('a CUDA out-of-memory seen by the companion', () => {
  it('is a flight recording with the OOM, its neighbours on the GPU and what grew before', { timeout: 60_000 }, async () => {
    const stats = path.join(host.dir, 'oom-stats');
    mkdirSync(stats, { mode: 0o700 });
    const stateFile = path.join(host.dir, 'torch-state.json');
    const device = h100(0);
    const uuid = device.uuid!.replace(/^GPU-/, '');
    const setAllocated = (allocatedMiB: number) => {
      const state = { initialized: true, devices: [{ uuid, name: 'NVIDIA H100 80GB HBM3', total_memory: 80 * GiB, free: 200 * MiB, stats: { 'reserved_bytes.all.current': (allocatedMiB + 512) * MiB, 'allocated_bytes.all.current': allocatedMiB * MiB, num_ooms: 0 } }] };
      writeFileSync(`${stateFile}.tmp`, JSON.stringify(state));
      writeFileSync(stateFile, readFileSync(`${stateFile}.tmp`));
    };
    setAllocated(40_000);
    // The workload: waits for a line, then asks the fake allocator for 3 GiB it cannot have.
    const script = path.join(host.dir, 'workload.py');
    writeFileSync(script, 'import sys, torch, gpu_layers_companion\nfor line in sys.stdin:\n    try:\n        torch.cuda._fake_oom(0, 3 << 30)\n    except torch.cuda.OutOfMemoryError as error:\n        print("oom: " + str(error), flush=True)\n');
    child = spawn(python, [script], {
      env: {
        ...process.env,
        PYTHONPATH: [path.join(repoRoot, 'python/gpu_layers_companion'), path.join(repoRoot, 'test/fixtures/fake-torch')].join(':'),
        GPU_LAYERS_STATS_DIR: stats,
        GPU_LAYERS_STATS_INTERVAL: '0.2',
        FAKE_TORCH_STATE: stateFile,
      },
      stdio: ['pipe', 'pipe', 'inherit'],
    });
    const pid = child.pid!;
    const neighbour = 424_242;
    host.writeScenario({ driverVersion: '550.54.15', nvmlVersion: '12.550.54.15', cudaDriverVersion: 12040, devices: [h100(0, [{ type: 'compute', pid, usedBytes: 41 * GiB }, { type: 'compute', pid: neighbour, usedBytes: 30 * GiB }])] });
    const options = host.monitorOptions();
    const monitor = await openMonitor({ probe: options.probe!, layers: { ...options.layers, procRoot: '/proc', statsDir: stats, vllm: [] } });
    const flights = new FlightRecorder({ dir: path.join(host.dir, 'flights'), host: 'test', intervalMs: 300, gpuLayersVersion: 'test' });
    const written: Flight[] = [];
    const fileOf = () => JSON.parse(readFileSync(path.join(stats, `${pid}.json`), 'utf8'));
    const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
    try {
      // Live tensors grow 1 GiB a sample for six samples.
      for (let i = 0; i <= 6; i++) {
        setAllocated(40_000 + i * 1024);
        await pause(400);
        written.push(...flights.observe(await monitor.sample()).flights);
      }
      const answered = new Promise((resolve) => child!.stdout!.once('data', resolve));
      child.stdin!.write('\n');
      expect(String(await answered)).toMatch(/^oom: CUDA out of memory/);
      // Written at once by the observer, not at the next tick.
      expect(fileOf().oom).toMatchObject({ count: 1, device: 0, requestedBytes: 3 * GiB });
      written.push(...flights.observe(await monitor.sample()).flights);
    } finally {
      await monitor.close();
    }
    expect(written).toHaveLength(1);
    const [flight] = written;
    expect(flight!.event).toMatchObject({ kind: 'cuda-oom', pid, deviceIndex: 0 });
    expect(flight!.event.detail).toMatch(/a request of 3,072 MiB/);
    expect(flight!.event.processesOnGpu.map((p) => p.pid).sort((a, b) => a - b)).toEqual([pid, neighbour].sort((a, b) => a - b));
    // What grew before: 6 GiB of live tensors (and reserved with them).
    expect(flight!.grewBefore.find((g) => g.series === 'layers.allocator.allocatedBytes')).toEqual({ series: 'layers.allocator.allocatedBytes', what: 'live tensors (PyTorch allocated)', first: 40_000 * MiB, last: (40_000 + 6 * 1024) * MiB });
    const recording = await readRecording(flight!.recording);
    expect(recording.samples.at(-1)!.devices[0]!.processes!.find((p) => p.pid === pid)!.layers.allocator!.lastOom).toMatchObject({ count: 1, requestedBytes: 3 * GiB, deviceFreeBytes: 200 * MiB });
    // diagnose reads it (too short a window for a growth pattern: no finding, no error).
    expect(() => diagnose(recording.samples)).not.toThrow();
    const beside = JSON.parse(readFileSync(flight!.diagnosis, 'utf8'));
    expect(beside.grewBefore.map((g: { series: string }) => g.series)).toContain('layers.allocator.allocatedBytes');
  });
});
