/**
 * `gpu-layers demo --live`: the whole pipeline, with the real addon reading the bundled mock NVML
 * and CUDA libraries, on the built-in 8-GPU vLLM host laid out as a fake host: companion files,
 * two vLLM servers' /metrics (served on loopback by this process), a startup log, a /proc
 * stand-in and a calibrated context. No GPU needed.
 */
import { DEMO_LOG, DEMO_PROCESSES, DEMO_SCENARIO, DEMO_SERVERS } from '../../mock-host/demo-host.js';
import { FakeHost } from '../../mock-host/fake-host.js';
import { openMonitor } from '../../monitor/monitor.js';
import type { CliIo } from '../cli-io.js';
import { EXIT_OK } from '../exit-codes.js';
import { parseDuration } from '../parse-flags.js';
import { writeSample } from './sample-output.js';

export async function liveDemo(flags: { json?: boolean; timeout?: string }, io: CliIo): Promise<number> {
  const host = new FakeHost();
  try {
    await host.set({ scenario: DEMO_SCENARIO, processes: DEMO_PROCESSES, servers: DEMO_SERVERS, vllmLog: DEMO_LOG });
    const options = host.monitorOptions();
    const monitor = await openMonitor({
      ...options,
      probe: { ...options.probe, ...(flags.timeout !== undefined ? { timeoutMs: parseDuration(flags.timeout, '--timeout') } : {}) },
    });
    try {
      writeSample(
        await monitor.sample(),
        flags.json === true,
        io,
        'demo: the real gpu-layers addon reading the bundled mock NVML, with companion files, two vLLM servers and a startup log (an 8x H100 host; no GPU needed)',
      );
    } finally {
      await monitor.close();
    }
  } finally {
    await host.close();
  }
  return EXIT_OK;
}
