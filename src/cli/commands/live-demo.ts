/**
 * `gpu-layers demo --live`: the whole pipeline, with the real addon reading the bundled mock NVML
 * and CUDA libraries, on the built-in 8-GPU vLLM host: companion files, two vLLM servers'
 * /metrics (served on loopback by this process), a startup log, a /proc stand-in and a calibrated
 * context. No GPU needed.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

import { calibrationCacheFile } from '../../sources/calibration-cache.js';
import { serveMetrics, type MetricsServer } from '../../mock-host/fake-vllm-server.js';
import { writeCompanionFiles, writeDemoCalibration, writeDemoLog, writeProcStandIn } from '../../mock-host/host-files.js';
import { DEMO_GPU_UUIDS, DEMO_PROCESSES, DEMO_SCENARIO, DEMO_SERVERS, demoMetricsText } from '../../mock-host/demo-host.js';
import { readLayers } from '../../layers/read-layers.js';
import { mockLibraries } from '../../mock-host/mock-libraries.js';
import { writeScenario } from '../../mock-host/scenario-text.js';
import { openProbe } from '../../probe/probe.js';
import { attachProcessCommands } from '../../probe/process-commands.js';
import type { CliIo } from '../cli-io.js';
import { EXIT_OK } from '../exit-codes.js';
import { parseDuration } from '../parse-flags.js';
import { writeSample } from './sample-output.js';

export async function liveDemo(flags: { json?: boolean; timeout?: string }, io: CliIo): Promise<number> {
  const libraries = mockLibraries();
  const work = mkdtempSync(path.join(tmpdir(), 'gpu-layers-demo-'));
  const previous = process.env.GPU_LAYERS_MOCK_SCENARIO;
  const servers: MetricsServer[] = [];
  try {
    const scenarioFile = path.join(work, 'vllm-host.scenario');
    writeScenario(scenarioFile, DEMO_SCENARIO);
    for (const server of DEMO_SERVERS) servers.push(await serveMetrics(demoMetricsText(server)));
    const ports = servers.map((s) => s.port);
    const procRoot = path.join(work, 'proc');
    writeProcStandIn(procRoot, DEMO_PROCESSES, new Map(DEMO_SERVERS.map((s, i) => [s.listenerPid, ports[i]!])));
    const statsDir = path.join(work, 'stats');
    writeCompanionFiles(statsDir, DEMO_PROCESSES, DEMO_GPU_UUIDS, Date.now());
    const logFile = path.join(work, 'vllm-70b.log');
    writeDemoLog(logFile);
    const env = { GPU_LAYERS_CACHE_DIR: path.join(work, 'cache'), CUDA_MODULE_LOADING: 'LAZY' };
    writeDemoCalibration(calibrationCacheFile(env));

    // The mock libraries read the scenario's name from the real process environment.
    process.env.GPU_LAYERS_MOCK_SCENARIO = scenarioFile;
    const probe = await openProbe({
      nvmlLibrary: libraries.nvml,
      cudaLibrary: libraries.cuda,
      ...(flags.timeout !== undefined ? { timeoutMs: parseDuration(flags.timeout, '--timeout') } : {}),
    });
    try {
      const sample = await probe.sample();
      await attachProcessCommands(sample, procRoot);
      const layered = await readLayers(sample, {
        env,
        procRoot,
        statsDir,
        vllm: ports.map((port) => `http://127.0.0.1:${port}`),
        vllmLog: logFile,
      });
      writeSample(
        layered,
        flags.json === true,
        io,
        'demo: the real gpu-layers addon reading the bundled mock NVML, with companion files, two vLLM servers and a startup log (an 8x H100 host; no GPU needed)',
      );
    } finally {
      await probe.close();
    }
  } finally {
    await Promise.all(servers.map((s) => s.close()));
    if (previous === undefined) delete process.env.GPU_LAYERS_MOCK_SCENARIO;
    else process.env.GPU_LAYERS_MOCK_SCENARIO = previous;
    rmSync(work, { recursive: true, force: true });
  }
  return EXIT_OK;
}
