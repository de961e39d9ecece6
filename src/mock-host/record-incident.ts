/**
 * Plays an incident through the real pipeline and records it: at every step the fake host is set
 * to the incident's state (the NVML scenario the mock libraries read, /proc stand-in, cgroup
 * tree, companion files, the /metrics its loopback servers answer with), then a monitor samples
 * it (the real addon on the mock NVML, the layers joined) and the recording writer appends the
 * layered sample. Only the clock is simulated: each sample is stamped with its step's time, so
 * hours play in a second.
 */
import { openMonitor, type Monitor } from '../monitor/monitor.js';
import { recordingHeaderFor } from '../recording/recording-header.js';
import { RecordingWriter } from '../recording/write-recording.js';
import { DEMO_GPU_UUIDS, DRIVER_VERSION, MiB, RESERVED, TOTAL } from './demo-host.js';
import { FakeHost } from './fake-host.js';
import type { Incident, IncidentState } from './incident.js';
import type { Scenario } from './scenario-schema.js';

const BAR1_TOTAL = 128 * 1024 * MiB;
const CONTEXT_BYTES = 532 * MiB;

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
        contextBytes: CONTEXT_BYTES,
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
  const host = new FakeHost();
  let monitor: Monitor | null = null;
  let writer: RecordingWriter | null = null;
  try {
    for (let step = 0; step < incident.steps; step++) {
      const state = incident.state(step);
      const nowMs = incident.startMs + step * incident.intervalMs;
      await host.set({ scenario: scenarioOf(state, incident.gpus), processes: state.processes, servers: state.servers, nowMs });
      monitor ??= await openMonitor(host.monitorOptions());
      const layered = await monitor.sample();
      const stamped = { ...layered, takenAt: new Date(nowMs).toISOString() };
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
    writer?.close();
    await monitor?.close();
    await host.close();
  }
}
