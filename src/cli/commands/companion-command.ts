/** `gpu-layers companion`: how to enable the Python companion, and where it is (`--path`). */
import { companionDirectory } from '../../companion-path.js';
import type { CliIo } from '../cli-io.js';
import { EXIT_OK } from '../exit-codes.js';
import { parseFlags } from '../parse-flags.js';

export async function companionCommand(args: string[], io: CliIo): Promise<number> {
  const flags = parseFlags(args, { path: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } });
  const dir = companionDirectory();
  if (flags.path === true) {
    io.stdout.write(`${dir}\n`);
    return EXIT_OK;
  }
  io.stdout.write(`The gpu-layers companion reports PyTorch's allocator (reserved, allocated, fragmentation,
CUDA graph pools) from inside each workload process, for \`gpu-layers probe\` to join with NVML.
It needs only the standard library and torch, never initialises CUDA itself, and writes
$GPU_LAYERS_STATS_DIR/<pid>.json every 2 s while CUDA is in use (GPU_LAYERS_STATS_INTERVAL to change).

Enable it without touching the workload's code (spawned workers, like vLLM's, inherit it):

  export GPU_LAYERS_STATS_DIR=/tmp/gpu-layers
  export PYTHONPATH=${dir}\${PYTHONPATH:+:\$PYTHONPATH}
  vllm serve ...            # or python train.py ...

or, in the program, with that folder on sys.path:  import gpu_layers_companion

Then read it:  GPU_LAYERS_STATS_DIR=/tmp/gpu-layers npx gpu-layers probe
In a container, mount the same folder into the workload and where gpu-layers runs.

The companion makes a missing folder 0700 (its user's alone; gpu-layers reads it as that user or
root). For workloads of several users, root makes one shared folder: install -d -m 1777 DIR. The
companion refuses a folder another user owns, or one others can write without the sticky bit, and
gpu-layers joins only files written by the process's own user or root.

Companion folder: ${dir}
`);
  return EXIT_OK;
}
