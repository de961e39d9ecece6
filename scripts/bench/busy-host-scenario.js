// The host the exporter benchmarks serve: DEVICES H100-sized GPUs with PROCESSES processes of
// 256 MiB each on the mock NVML, as a scenario for dist/mock's writeScenario.
const MiB = 2 ** 20;
const TOTAL = 85520809984;
const RESERVED = 570425344;

export function busyHostScenario(devices, processes) {
  return {
    devices: Array.from({ length: devices }, (_, d) => ({
      uuid: `GPU-bench-${d}`,
      memory: { total: TOTAL, reserved: RESERVED, used: processes * 256 * MiB, free: TOTAL - RESERVED - processes * 256 * MiB },
      processes: Array.from({ length: processes }, (_, p) => ({ type: 'compute', pid: 100000 + d * 1000 + p, usedBytes: 256 * MiB })),
    })),
  };
}
