/**
 * `gpu-layers serve` from dist/, started as a child process on the mock NVML and CUDA libraries,
 * and the address it prints once it listens: the way the exporter tests meet the real server.
 */
import { spawn, type ChildProcess } from 'node:child_process';

import { cliPath, nodeGypBuild } from './paths.js';

export interface StartedServe {
  child: ChildProcess;
  host: string;
  port: number;
  /** Everything it has written to stderr so far. */
  stderr(): string;
}

/**
 * Starts `gpu-layers serve ARGS` with the mock reading `scenarioFile` (no companion folder, no
 * call trace; `env` adds to or overrides that) and resolves when it prints its /metrics address;
 * rejects if it exits first or stays silent for `timeoutMs`.
 */
export function startServe(args: string[], scenarioFile: string, env: Record<string, string> = {}, timeoutMs = 20_000): Promise<StartedServe> {
  const child = spawn(process.execPath, [cliPath, 'serve', ...args], {
    env: { ...process.env, GPU_LAYERS_MOCK_SCENARIO: scenarioFile, GPU_LAYERS_MOCK_TRACE: '', GPU_LAYERS_NVML_LIB: nodeGypBuild.mockNvml, GPU_LAYERS_CUDA_LIB: nodeGypBuild.mockCuda, GPU_LAYERS_STATS_DIR: '', ...env },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`gpu-layers serve did not listen within ${timeoutMs} ms: ${stderr}`)), timeoutMs);
    const exited = (code: number | null): void => {
      clearTimeout(timer);
      reject(new Error(`gpu-layers serve exited ${code} before it listened: ${stderr}`));
    };
    child.once('exit', exited);
    child.stderr!.on('data', (chunk) => {
      stderr += chunk;
      const match = /http:\/\/\[?([\d.a-f:]+)\]?:(\d+)\/metrics/.exec(stderr);
      if (match === null) return;
      clearTimeout(timer);
      child.off('exit', exited);
      resolve({ child, host: match[1]!, port: Number(match[2]), stderr: () => stderr });
    });
  });
}
