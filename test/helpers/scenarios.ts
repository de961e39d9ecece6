/**
 * Scenario builders the tests share. Expected values in tests are computed from these inputs,
 * never copied from the output under test.
 */
import type { Scenario, ScenarioDevice } from '../../src/mock-host/scenario-schema.js';

export const GiB = 1024 ** 3;
export const MiB = 1024 ** 2;
export const H100_TOTAL = 85_520_809_984;
export const H100_RESERVED = 570_425_344;

export function h100(index: number, processes: ScenarioDevice['processes'] = [], extra: Partial<ScenarioDevice> = {}): ScenarioDevice {
  const used = (processes ?? []).reduce((sum, p) => sum + (typeof p.usedBytes === 'number' ? p.usedBytes : 0), 0);
  return {
    name: 'NVIDIA H100 80GB HBM3',
    uuid: `GPU-${(0x10000000 + index).toString(16)}-0000-4000-8000-${index.toString(16).padStart(12, '0')}`,
    pci: { domain: 0, bus: 0x18 + index * 0x10, device: 0, pciDeviceId: 0x233010de, pciSubSystemId: 0x16c110de },
    memory: { total: H100_TOTAL, reserved: H100_RESERVED, used, free: H100_TOTAL - H100_RESERVED - used },
    bar1: { total: 128 * GiB, used: 34 * MiB, free: 128 * GiB - 34 * MiB },
    utilization: { gpu: 10 + index, memory: 5 + index },
    migMode: { current: 0, pending: 0 },
    processes,
    ...extra,
  };
}

/** `count` GPUs, `perDevice` compute processes each, pids unique across the host. */
export function host(count: number, perDevice: number, extra: Partial<Scenario> = {}): Scenario {
  return {
    driverVersion: '550.54.15',
    nvmlVersion: '12.550.54.15',
    cudaDriverVersion: 12040,
    devices: Array.from({ length: count }, (_, d) =>
      h100(
        d,
        Array.from({ length: perDevice }, (_, p) => ({ type: 'compute' as const, pid: 10000 + d * 1000 + p, usedBytes: (p + 1) * 64 * MiB })),
      ),
    ),
    ...extra,
  };
}
