/**
 * `gpu-layers probe` (the default verb): one sample of every GPU and its processes, joined with
 * every layer source given: the companion files, vLLM servers and logs, the model config, /proc
 * and the calibration cache.
 */
import { readLayers } from '../../layers/read-layers.js';
import { openProbe } from '../../probe/probe.js';
import type { CliIo } from '../cli-io.js';
import { EXIT_OK } from '../exit-codes.js';
import { parseDuration, parseFlags } from '../parse-flags.js';
import { MAIN_HELP } from '../usage.js';
import { writeSample } from './sample-output.js';

export async function probeCommand(args: string[], io: CliIo): Promise<number> {
  const flags = parseFlags(args, {
    json: { type: 'boolean' },
    timeout: { type: 'string' },
    'nvml-lib': { type: 'string' },
    'cuda-lib': { type: 'string' },
    'no-cuda': { type: 'boolean' },
    'stats-dir': { type: 'string' },
    vllm: { type: 'string', multiple: true },
    'vllm-log': { type: 'string' },
    'hf-config': { type: 'string' },
    'vllm-timeout': { type: 'string' },
    'no-host': { type: 'boolean' },
    help: { type: 'boolean', short: 'h' },
  });
  if (flags.help === true) {
    io.stdout.write(MAIN_HELP);
    return EXIT_OK;
  }
  const probe = await openProbe({
    ...(flags['nvml-lib'] !== undefined ? { nvmlLibrary: flags['nvml-lib'] } : {}),
    ...(flags['no-cuda'] === true ? { cudaLibrary: false as const } : flags['cuda-lib'] !== undefined ? { cudaLibrary: flags['cuda-lib'] } : {}),
    ...(flags.timeout !== undefined ? { timeoutMs: parseDuration(flags.timeout, '--timeout') } : {}),
    processCommands: true,
    env: io.env,
  });
  try {
    const sample = await probe.sample();
    const layered = await readLayers(sample, {
      env: io.env,
      host: flags['no-host'] !== true,
      ...(flags['stats-dir'] !== undefined ? { statsDir: flags['stats-dir'] } : {}),
      ...(flags.vllm !== undefined ? { vllm: flags.vllm } : {}),
      ...(flags['vllm-log'] !== undefined ? { vllmLog: flags['vllm-log'] } : {}),
      ...(flags['hf-config'] !== undefined ? { hfConfig: flags['hf-config'] } : {}),
      ...(flags['vllm-timeout'] !== undefined ? { vllmTimeoutMs: parseDuration(flags['vllm-timeout'], '--vllm-timeout') } : {}),
    });
    writeSample(layered, flags.json === true, io);
  } finally {
    await probe.close();
  }
  return EXIT_OK;
}
