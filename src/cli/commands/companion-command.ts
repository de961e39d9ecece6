/**
 * `gpu-layers companion`: how to enable the Python companion, where its folder is (`--path`) and
 * where its wheel is (`--wheel`, for `pip install` into an image that has no Node).
 */
import { existsSync } from 'node:fs';

import { companionDirectory, companionWheel } from '../../companion-path.js';
import type { CliIo } from '../cli-io.js';
import { EXIT_BAD_INPUT, EXIT_OK } from '../exit-codes.js';
import { parseFlags } from '../parse-flags.js';

export async function companionCommand(args: string[], io: CliIo): Promise<number> {
  const flags = parseFlags(args, { path: { type: 'boolean' }, wheel: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } });
  const dir = companionDirectory();
  if (flags.path === true) {
    io.stdout.write(`${dir}\n`);
    return EXIT_OK;
  }
  const wheel = companionWheel();
  if (flags.wheel === true) {
    if (!existsSync(wheel)) {
      io.stderr.write(`gpu-layers: the companion's wheel is missing (${wheel}): build the package (npm run build:ts)\n`);
      return EXIT_BAD_INPUT;
    }
    io.stdout.write(`${wheel}\n`);
    return EXIT_OK;
  }
  io.stdout.write(`The gpu-layers companion reports PyTorch's allocator (reserved, allocated, fragmentation,
CUDA graph pools) from inside each workload process, for \`gpu-layers probe\` to join with NVML.
It needs only the standard library and torch, never initialises CUDA itself, and writes
$GPU_LAYERS_STATS_DIR/<pid>.json every 2 s while CUDA is in use (GPU_LAYERS_STATS_INTERVAL to change).

In an image (vLLM's has pip but no Node), install its wheel; it starts in every Python process,
spawned workers too, where GPU_LAYERS_STATS_DIR is set, and costs nothing where it is not:

  pip install ${wheel}
      # in a Dockerfile: COPY that file into the build context, then
      # RUN pip install --no-deps --no-index /tmp/gpu_layers_companion-*.whl
  export GPU_LAYERS_STATS_DIR=/dev/shm/gpu-layers
  vllm serve ...            # or python train.py ...
  python -m gpu_layers_companion --check    # what it sees; exit 0 when it can write

Or, where this package is installed, without pip (the workload's own sitecustomize still runs):

  export GPU_LAYERS_STATS_DIR=/dev/shm/gpu-layers
  export PYTHONPATH=${dir}\${PYTHONPATH:+:\$PYTHONPATH}

or, in the program, with that folder on sys.path:  import gpu_layers_companion

Then read it:  GPU_LAYERS_STATS_DIR=/dev/shm/gpu-layers npx gpu-layers probe
In a container, mount the same folder into the workload and where gpu-layers runs.

The companion makes a missing folder 0700 (its user's alone; gpu-layers reads it as that user or
root). For workloads of several users, root makes one shared folder: install -d -m 1777 DIR. The
companion refuses a folder another user owns, or one others can write without the sticky bit, and
gpu-layers joins only files written by the process's own user or root.

Companion folder: ${dir}
Companion wheel:  ${wheel}${existsSync(wheel) ? '' : ' (not built yet: npm run build:ts)'}
`);
  return EXIT_OK;
}
