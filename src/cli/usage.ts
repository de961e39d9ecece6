/**
 * Help text and the usage error: a bad flag or verb prints what is wrong and how to ask for help,
 * and exits 2.
 */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

export const MAIN_HELP = `gpu-layers: who owns a GPU process's memory (driver, allocator, framework) and the gaps

Usage:
  gpu-layers [probe] [options]   one reading of every GPU and its processes (the default verb)
  gpu-layers demo [options]      the same, on a mock 8-GPU vLLM host: no GPU needed
  gpu-layers doctor              what was found (driver, libraries, permissions, companion, vLLM) and what to fix
  gpu-layers calibrate           measure a bare CUDA context on each GPU (in a child process)
  gpu-layers companion [--path]  how to enable the Python companion (the allocator layer)
  gpu-layers schema              print the JSON Schema of \`probe --json\`

Options:
  --json                 print the sample as JSON (its JSON Schema: gpu-layers schema)
  --timeout <ms>         deadline for opening NVML and for the sample (default 5000)
  --nvml-lib <path>      NVML library to load (default: $GPU_LAYERS_NVML_LIB or libnvidia-ml.so.1)
  --cuda-lib <path>      CUDA driver library (default: $GPU_LAYERS_CUDA_LIB or libcuda.so.1)
  --no-cuda              do not load the CUDA driver (no cuda:N column)
  --stats-dir <dir>      where the companion writes (default $GPU_LAYERS_STATS_DIR): allocator layer
  --vllm <url>           a vLLM server (repeatable): KV cache use, requests, cache config
  --vllm-log <file>      a vLLM startup log: weights, KV cache, CUDA graph memory
  --hf-config <file>     the served model's config.json: KV bytes per block
  --vllm-timeout <ms>    deadline for each vLLM /metrics request (default 2000)
  --no-host              do not read /proc for the host memory split
  -h, --help             this help
  -v, --version          the version

Exit codes: 0 ok, 2 usage error, 3 NVML or the driver unavailable, 4 bad input file.
Environment: GPU_LAYERS_NVML_LIB, GPU_LAYERS_CUDA_LIB, GPU_LAYERS_STATS_DIR, GPU_LAYERS_CACHE_DIR,
GPU_LAYERS_MOCK_SCENARIO, NO_COLOR.
`;

export const CALIBRATE_HELP = `gpu-layers calibrate: measure what a bare CUDA context costs on each GPU

A short-lived child process creates the primary context on every device and reads, through NVML,
what its own pid then holds; the figures are cached per GPU UUID, driver version and
CUDA_MODULE_LOADING (default LAZY, as PyTorch sets it) and become the context layer of
\`gpu-layers probe\`. The probe itself never creates a context.

Options:
  --json             print the report as JSON
  --timeout <ms>     kill the child after this long (default 60s)
  --nvml-lib <path>  NVML library (default: $GPU_LAYERS_NVML_LIB or libnvidia-ml.so.1)
  --cuda-lib <path>  CUDA driver library (default: $GPU_LAYERS_CUDA_LIB or libcuda.so.1)

Cache: $GPU_LAYERS_CACHE_DIR, else $XDG_CACHE_HOME/gpu-layers, else ~/.cache/gpu-layers.
`;

export const DOCTOR_HELP = `gpu-layers doctor: what gpu-layers finds on this host, and what to fix

Checks the native addon, the NVIDIA device files, NVML and the CUDA driver, the PID namespace,
the context calibration, the companion file of every GPU process and the vLLM sources given.

Options: --json, --timeout <ms>, --nvml-lib <path>, --cuda-lib <path>, and the layer sources of
\`gpu-layers probe\`: --stats-dir <dir>, --vllm <url>, --vllm-log <file>, --hf-config <file>,
--vllm-timeout <ms>.
`;
