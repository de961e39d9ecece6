/**
 * Plays an incident through the real pipeline and records it: at every step the mock host's
 * files are rewritten (the NVML scenario the mock libraries read, /proc stand-in, companion
 * files, the /metrics text its loopback servers answer with), then the real addon samples the
 * mock NVML, readLayers joins the layers, and the recording writer appends the layered sample.
 * Only the clock is simulated: each sample is stamped with its step's time, so hours play in a
 * second.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

import { calibrationCacheFile } from '../sources/calibration-cache.js';
import { writeCompanionFiles, writeDemoCalibration, writeProcStandIn } from './host-files.js';
import { serveMetrics, type MetricsServer } from './fake-vllm-server.js';
import { DEMO_GPU_UUIDS, DRIVER_VERSION, MiB, RESERVED, TOTAL, demoMetricsText } from './demo-host.js';
import { readLayers } from '../layers/read-layers.js';
import { mockLibraries } from './mock-libraries.js';
import type { Scenario } from './scenario-schema.js';
import { writeScenario } from './scenario-text.js';
import { openProbe } from '../probe/probe.js';
import { attachProcessCommands } from '../probe/process-commands.js';
import { recordingHeaderFor } from '../recording/recording-header.js';
import { RecordingWriter } from '../recording/write-recording.js';
import type { Incident, IncidentState } from './incident.js';

const BAR1_TOTAL = 128 * 1024 * MiB;

/** Requests running on the server whose worker holds this GPU: what keeps it busy. */
function busy(state: IncidentState, gpu: number): number {
  const worker = state.processes.find((p) => p.gpu === gpu);
  return state.servers.find((s) => s.listenerPid === worker?.ppid)?.running ?? 0;
}

function scenarioOf(state: IncidentState, gpus: number): Scenario {
  return {
    driverVersion: DRIVER_VERSION,
    nvmlVersion: `12.${DRIVER_VERSION}`,
    cudaDriverVersion: 12040,
    devices: Array.from({ length: gpus }, (_, index) => {
      const processes = state.processes.filter((p) => p.gpu === index);
      const used = processes.reduce((sum, p) => sum + p.driverMiB * MiB, 0);
      return {
        name: 'NVIDIA H100 80GB HBM3',
        uuid: DEMO_GPU_UUIDS[index]!,
        pci: { domain: 0, bus: 0x18 + index * 0x10, device: 0, pciDeviceId: 0x233010de, pciSubSystemId: 0x16c110de },
        memory: { total: TOTAL, reserved: RESERVED, used, free: TOTAL - RESERVED - used },
        bar1: { total: BAR1_TOTAL, used: 34 * MiB, free: BAR1_TOTAL - 34 * MiB },
        utilization: { gpu: Math.min(100, busy(state, index) * 9), memory: Math.min(100, busy(state, index) * 5) },
        contextBytes: 532 * MiB,
        processes: processes.map((p) => ({ type: 'compute' as const, pid: p.pid, usedBytes: p.driverMiB * MiB })),
      };
    }),
  };
}

export interface RecordIncidentOptions {
  /** Host name written in the header. */
  host?: string;
  gpuLayersVersion: string;
}

/** Records `incident` into `file` (which must not exist yet). */
export async function recordIncident(incident: Incident, file: string, options: RecordIncidentOptions): Promise<void> {
  const libraries = mockLibraries();
  const work = mkdtempSync(path.join(tmpdir(), `gpu-layers-incident-${incident.name}-`));
  const previous = process.env.GPU_LAYERS_MOCK_SCENARIO;
  const servers: MetricsServer[] = [];
  const scenarioFile = path.join(work, 'host.scenario');
  const procRoot = path.join(work, 'proc');
  const statsDir = path.join(work, 'stats');
  const env = { GPU_LAYERS_CACHE_DIR: path.join(work, 'cache'), CUDA_MODULE_LOADING: 'LAZY' };
  let writer: RecordingWriter | null = null;
  try {
    writeDemoCalibration(calibrationCacheFile(env));
    const first = incident.state(0);
    for (const s of first.servers) servers.push(await serveMetrics(demoMetricsText(s)));
    writeScenario(scenarioFile, scenarioOf(first, incident.gpus));
    // The mock libraries read the scenario's name from the real process environment.
    process.env.GPU_LAYERS_MOCK_SCENARIO = scenarioFile;
    const probe = await openProbe({ nvmlLibrary: libraries.nvml, cudaLibrary: libraries.cuda });
    try {
      for (let step = 0; step < incident.steps; step++) {
        const now = incident.startMs + step * incident.intervalMs;
        const state = step === 0 ? first : incident.state(step);
        writeScenario(scenarioFile, scenarioOf(state, incident.gpus));
        writeProcStandIn(procRoot, state.processes, new Map(state.servers.map((s, i) => [s.listenerPid, servers[i]!.port])));
        writeCompanionFiles(statsDir, state.processes, DEMO_GPU_UUIDS, now);
        state.servers.forEach((s, i) => servers[i]!.set(demoMetricsText(s)));
        const sample = await probe.sample();
        await attachProcessCommands(sample, procRoot);
        const layered = await readLayers(sample, { env, procRoot, statsDir, vllm: servers.map((s) => s.url), now: () => now });
        const stamped = { ...layered, takenAt: new Date(now).toISOString() };
        writer ??= new RecordingWriter(file, () =>
          recordingHeaderFor(stamped, {
            host: options.host ?? `mock-${incident.name}`,
            intervalMs: incident.intervalMs,
            startedAt: stamped.takenAt,
            gpuLayersVersion: options.gpuLayersVersion,
          }),
        );
        writer.append(stamped);
      }
    } finally {
      await probe.close();
    }
  } finally {
    writer?.close();
    await Promise.all(servers.map((s) => s.close()));
    if (previous === undefined) delete process.env.GPU_LAYERS_MOCK_SCENARIO;
    else process.env.GPU_LAYERS_MOCK_SCENARIO = previous;
    rmSync(work, { recursive: true, force: true });
  }
}
