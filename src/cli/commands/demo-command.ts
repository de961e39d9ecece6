/**
 * `gpu-layers demo`: the real addon and the whole probe pipeline against the bundled mock NVML
 * and CUDA libraries, on the built-in 8-GPU vLLM host. What a newcomer runs first; no GPU needed.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

import { DEMO_COMMANDS, DEMO_SCENARIO } from '../../demo/vllm-host.js';
import { mockLibraries } from '../../mock/mock-libraries.js';
import { writeScenario } from '../../mock/scenario-text.js';
import { openProbe } from '../../probe/probe.js';
import { attachProcessCommands } from '../../probe/process-commands.js';
import type { CliIo } from '../cli-io.js';
import { EXIT_OK } from '../exit-codes.js';
import { parseDuration, parseFlags } from '../parse-flags.js';
import { MAIN_HELP } from '../usage.js';
import { writeSample } from './sample-output.js';

/** A stand-in for /proc with the demo processes' command lines, read by the usual code. */
function writeDemoProc(root: string): void {
  for (const [pid, command] of DEMO_COMMANDS) {
    mkdirSync(path.join(root, String(pid)), { recursive: true });
    writeFileSync(path.join(root, String(pid), 'cmdline'), command.split(' ').join('\0') + '\0');
  }
}

export async function demoCommand(args: string[], io: CliIo): Promise<number> {
  const flags = parseFlags(args, {
    json: { type: 'boolean' },
    timeout: { type: 'string' },
    help: { type: 'boolean', short: 'h' },
  });
  if (flags.help === true) {
    io.stdout.write(MAIN_HELP);
    return EXIT_OK;
  }
  const libraries = mockLibraries();
  const work = mkdtempSync(path.join(tmpdir(), 'gpu-layers-demo-'));
  const scenarioFile = path.join(work, 'vllm-host.scenario');
  const previous = process.env.GPU_LAYERS_MOCK_SCENARIO;
  try {
    writeScenario(scenarioFile, DEMO_SCENARIO);
    writeDemoProc(path.join(work, 'proc'));
    // The mock libraries read the scenario's name from the real process environment.
    process.env.GPU_LAYERS_MOCK_SCENARIO = scenarioFile;
    const probe = await openProbe({
      nvmlLibrary: libraries.nvml,
      cudaLibrary: libraries.cuda,
      ...(flags.timeout !== undefined ? { timeoutMs: parseDuration(flags.timeout, '--timeout') } : {}),
    });
    try {
      const sample = await probe.sample();
      await attachProcessCommands(sample, path.join(work, 'proc'));
      writeSample(sample, flags.json === true, io, 'demo: the real gpu-layers addon reading the bundled mock NVML (an 8x H100 vLLM host; no GPU needed)');
    } finally {
      await probe.close();
    }
  } finally {
    if (previous === undefined) delete process.env.GPU_LAYERS_MOCK_SCENARIO;
    else process.env.GPU_LAYERS_MOCK_SCENARIO = previous;
    rmSync(work, { recursive: true, force: true });
  }
  return EXIT_OK;
}
