/**
 * Help text and the usage error: a bad flag or verb prints what is wrong and how to ask for help,
 * and exits 2.
 */
/** A command line gpu-layers cannot run: its message says which part, and `--help` shows the rest. */
export class UsageError extends Error {
  readonly category = 'usage';
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

export const MAIN_HELP = `gpu-layers: who owns a GPU process's memory (driver, allocator, framework) and the gaps

Usage:
  gpu-layers [probe] [options]   one reading of every GPU and its processes (the default verb)
  gpu-layers demo [--html OUT]   a recorded overnight incident, diagnosed (no GPU needed);
                                 --live: one reading of a mock 8-GPU vLLM host
  gpu-layers watch               live view: stacked layers and gap sparklines (--diagnose)
  gpu-layers record --out FILE   append layered samples to FILE (JSON lines) until stopped
  gpu-layers diagnose FILE...    name the failure patterns a recording shows (--fail-on)
  gpu-layers report FILE... --html OUT   a self-contained HTML report of a recording
  gpu-layers snapshot FILE       fragmentation forensics of a PyTorch memory snapshot pickle
  gpu-layers serve               Prometheus exporter (/metrics, /healthz) on 127.0.0.1:9843
  gpu-layers doctor              what was found (driver, libraries, permissions, companion, vLLM) and what to fix
  gpu-layers calibrate           measure a bare CUDA context on each GPU (in a child process)
  gpu-layers canary --openai URL --model NAME
                                 a serving engine's greedy output under load against alone
                                 (the scheduler-state mismatch of stateful models)
  gpu-layers companion [--path|--wheel]  how to enable the Python companion (the allocator layer)
  gpu-layers schema              print the JSON Schema of \`probe --json\`

Options:
  --json                 print the sample as JSON (its JSON Schema: gpu-layers schema)
  --format <fmt>         table (default), json (as --json) or csv: one row per GPU process
                         (device, pid, command, driver, allocator, KV cache, host, container bytes)
  --timeout <ms>         deadline for opening NVML and for the sample (default 5000)
  --nvml-lib <path>      NVML library to load (default: $GPU_LAYERS_NVML_LIB or libnvidia-ml.so.1)
  --cuda-lib <path>      CUDA driver library (default: $GPU_LAYERS_CUDA_LIB or libcuda.so.1)
  --no-cuda              do not load the CUDA driver (no cuda:N column)
  -i, --id <gpus>        only these GPUs: NVML indices or UUIDs, comma separated (-i 0,2)
  --pid <pids>           only these processes (and the GPUs that hold them), comma separated
  --stats-dir <dir>      where the companion writes (default $GPU_LAYERS_STATS_DIR): allocator layer
  --vllm <url>           a vLLM server, http(s)://host:port (repeatable): KV cache use, requests,
                         cache config
  --vllm-log <file>      a vLLM startup log: weights, KV cache, CUDA graph memory
  --hf-config <file>     the served model's config.json: KV bytes per block
  --vllm-timeout <ms>    deadline for each vLLM /metrics read: answer, download and parse
                         (default 2000); a URL on this host is read only when its port's
                         listener is the GPU processes' vLLM
  --no-host              do not read /proc for the host memory split
  --proc-root <dir>      the host's /proc mounted elsewhere (in a container: /host/proc)
  --cgroup-root <dir>    the host's cgroup filesystem mounted elsewhere (default /sys/fs/cgroup)
  --pod-resources-socket <path>
                         the kubelet's pod-resources socket: namespace/pod/container of each
                         process (default /var/lib/kubelet/pod-resources/kubelet.sock where it
                         exists)
  -h, --help             this help
  -v, --version          the version

Exit codes: 0 ok, 1 a finding at or above --fail-on (diagnose, canary) or something for doctor
to fix, 2 usage error, 3 NVML or the driver unavailable, 4 bad input file.
Every verb has its own --help (gpu-layers watch --help, ...).
Environment: GPU_LAYERS_NVML_LIB, GPU_LAYERS_CUDA_LIB, GPU_LAYERS_STATS_DIR, GPU_LAYERS_CACHE_DIR,
GPU_LAYERS_MOCK_SCENARIO, GPU_LAYERS_CANARY_TOKEN (canary's bearer token), NO_COLOR.
`;

export const SCHEMA_HELP = `gpu-layers schema: the JSON Schema (draft 2020-12) of \`gpu-layers probe --json\`

Usage: gpu-layers schema > sample.schema.json

The document that \`probe --json\`, \`watch --json\` and each sample line of a recording
follow; the package publishes the same file as dist/sample.schema.json.
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
the context calibration, the companion file of every GPU process and the vLLM sources given; with
--hf-config and one --vllm server, whether the KV cache's blocks align with PyTorch's allocator
(and what to change when the loss is worth it).

Options: --json, --timeout <ms>, --nvml-lib <path>, --cuda-lib <path>, and the layer sources of
\`gpu-layers probe\`: --stats-dir <dir>, --vllm <url>, --vllm-log <file>, --hf-config <file>,
--vllm-timeout <ms>.

Exit codes: 0 everything in place, 1 something to fix (each ✗ line, with its fix), 2 usage error,
3 the driver layer is unusable (the addon does not load or NVML cannot be read).
`;

const SOURCES = `Layer sources and libraries, as for \`gpu-layers probe\`: --stats-dir <dir>, --vllm <url>,
--vllm-log <file>, --hf-config <file>, --vllm-timeout <ms>, --proc-root <dir>,
--cgroup-root <dir>, --pod-resources-socket <path>, --no-host, --timeout <ms>, --nvml-lib <path>,
--cuda-lib <path>.`;

const FLIGHTS = `When a GPU process is OOM-killed (its cgroup counted a kill as it vanished) or hits a CUDA
out-of-memory (the companion saw it), the last 30 minutes of samples are written as a flight
recording, with the event and its diagnosis beside it (20 flights, 256 MiB at most):
  --flight-dir <dir>  where (default: flights in gpu-layers' cache folder, $GPU_LAYERS_CACHE_DIR)
  --no-flights        write none`;

export const WATCH_HELP = `gpu-layers watch: the layers of every GPU process, live

On a terminal the view is redrawn in place: per process the stacked layers and a sparkline of
each gap (outside the allocator, CUDA graphs, allocator cached, driver). Piped, it prints one line
per sample. Stop with q (on a terminal) or Ctrl-C.

Options:
  --interval <time>  between samples: a bare number is seconds (2 = 2 s, as nvidia-smi -l 2),
                     or 500ms, 5s, 1m (default 2s; at least 250ms: NVML's process list holds a lock)
  --count <n>        stop after n samples
  --diagnose         run the diagnosis over the last --window of samples and show the findings
  --window <time>    the live diagnosis window (default 15m)
  --json             one layered sample per line (the document of \`probe --json\`)
  -i, --id <gpus>    only these GPUs: NVML indices or UUIDs, comma separated (-i 0,2)
  --pid <pids>       only these processes (and the GPUs that hold them), comma separated
${SOURCES}

${FLIGHTS}
`;

export const RECORD_HELP = `gpu-layers record: append layered samples to a file, for diagnose and report

Usage: gpu-layers record --out FILE [options]

FILE gets a header line, then one layered sample per line (JSON). A kill at any moment loses at
most the sample being written; recording into an existing recording continues it.

Options:
  -o, --out <file>   the recording (required)
  --interval <time>  between samples: a bare number is seconds, or 500ms, 5s, 1m (default 5s;
                     at least 250ms)
  --duration <time>  stop after this long (e.g. 30m, 8h, 1d); default: until Ctrl-C
  --count <n>        stop after n samples
  --max-size <size>  rotate before FILE passes this size (e.g. 100MB): FILE.1, FILE.2, ...
  --keep <n>         rotated files kept (default 3)
  -i, --id <gpus>    record only these GPUs: NVML indices or UUIDs, comma separated (-i 0,2)
  --pid <pids>       record only these processes (and the GPUs that hold them), comma separated
${SOURCES}

${FLIGHTS}
`;

export const DIAGNOSE_HELP = `gpu-layers diagnose: the failure patterns a recording shows

Usage: gpu-layers diagnose FILE... [--json] [--fail-on SEVERITY]

Reads one or more recordings (rotated parts in any order; .gz too) and names, per process, what
the postmortems found: cuda-graph-creep, allocator-fragmentation, gpu-tensor-leak,
device-memory-growth (the allocator layer unknown), host-heap-leak, rss-not-malloc, lazy-init,
idle-growth. Each finding comes with its evidence (series, slope per hour, fit), a confidence and
the fix. How windows are judged and every threshold: docs/diagnosis.md.

Options:
  --json              the findings as JSON
  --fail-on <level>   exit 1 when a finding is at or above info, warning or critical
`;

export const REPORT_HELP = `gpu-layers report: a self-contained HTML report of a recording

Usage: gpu-layers report FILE... --html OUT

Per device and process, the layers over time as stacked areas, the gaps, the findings marked on
the time axis with their evidence, and the final sample. One file, no network: open it from disk.
`;

export const DEMO_HELP = `gpu-layers demo: see gpu-layers work, no GPU needed

Plays a recorded incident (one night on a two-GPU vLLM host, recorded through the real pipeline
on the mock NVML) and prints the layers at the worst moment and the diagnosis.

Options:
  --html <file>   also write the HTML report of the incident
  --json          the layered sample at the worst moment (the document of \`probe --json\`)
  --live          instead, one live reading of a mock 8-GPU vLLM host through the real addon
  --timeout <ms>  with --live: the deadline for the reading
`;

export const SNAPSHOT_HELP = `gpu-layers snapshot: what a PyTorch memory snapshot says about fragmentation

Usage: gpu-layers snapshot FILE [--json]

FILE is written by torch.cuda.memory._dump_snapshot(path) (after
torch.cuda.memory._record_memory_history() for the request trace and stacks). Per device:
reserved, allocated, requested and free bytes; the largest free block and the fragmentation ratio
(1 - largest free / free); the largest request that fits without growing the pool, against the
recent requests and any OOMs; CUDA graph and other private pools; expandable segments; the
Swiss-cheese segments; the top allocation sites.

The pickle is read by gpu-layers' own restricted reader: plain data only. An opcode that would
import or call code (GLOBAL, REDUCE, ...) is refused with its name and offset; nothing in the file
is ever executed.

Options:
  --json   the figures as JSON (devices[].reservedBytes, allocatedBytes, freeBytes,
           largestFreeBlockBytes, fragmentationRatio, privatePools[], segmentCount, ...)
`;

export const SERVE_HELP = `gpu-layers serve: a Prometheus exporter of the layers

Collects on its own interval (NVML's process list at most once per device per interval, however
often Prometheus scrapes) and serves GET /metrics and GET /healthz. Stop with Ctrl-C or SIGTERM.

Options:
  --host <address>           listen address (default 127.0.0.1; say 0.0.0.0 to expose it)
  --port <n>                 listen port (default 9843; 0: any free port, printed on stderr)
  --interval <time>          between collections: a bare number is seconds, or 500ms, 5s, 1m
                             (default 5s; at least 250ms)
  --diagnosis-window <time>  how far back gpu_layers_finding looks (default 1h)
  --command-label            label each process series with its command line (off: command lines
                             can hold secrets, and the series are then served to anyone who scrapes)
  -i, --id <gpus>            export only these GPUs: NVML indices or UUIDs, comma separated
  --pid <pids>               export only these processes (and the GPUs that hold them)
${SOURCES}

${FLIGHTS}

The sequence-consistency canary on a schedule (off by default; each run is real load on the
server, at most --canary-budget requests; the token from GPU_LAYERS_CANARY_TOKEN):
  --canary-openai <url>      the OpenAI-compatible server to check (as \`gpu-layers canary --openai\`)
  --canary-model <name>      its served model
  --canary-every <time>      between runs (default 6h, at least 10m; the first a minute after the start)
  --canary-budget <n>        requests a run may send (default 240)
`;

export const CANARY_HELP = `gpu-layers canary: is a serving engine's greedy output the same under load as alone?

Usage: gpu-layers canary --openai URL --model NAME [options]

Decodes a dozen fixed prompts greedily (temperature 0, a fixed seed, logprobs where the server
offers them), first each alone, then again among concurrent requests of varied prompt and output
lengths, so the scheduler must batch, reorder, chunk and preempt; then compares each run under
load with the run alone: a checksum per token sequence, the first position where they part, and
the reference token's logprob margin over the runner-up there. A change at a near-tie (margin
below --near-tie) is numeric noise: a batch of another shape sums in another order. A change where
the reference token led by a wide margin, or output that degenerates after it, is a
scheduler-state-mismatch (the write-up's third case: one sequence's state carried into another).
Uses /v1/completions, or /v1/chat/completions when the server has no completions API.

Options:
  --openai <url>             the server (http://host:8000, .../v1, https://...) (required)
  --model <name>             the served model, as GET /v1/models lists it (required)
  --concurrency <n>          requests in flight under load, the canary's own included (default 8)
  --runs <n>                 runs of each prompt under load (default 2)
  --prompts <n>              how many of the 12 fixed prompts (default 12)
  --max-tokens <n>           tokens generated per fixed prompt (default 64)
  --prompt-words <min-max>   the other requests' prompt lengths in words (default 8-1000)
  --output-tokens <min-max>  the other requests' max_tokens (default 8-256)
  --duration <time>          the load phase's limit (default 2m)
  --budget <n>               the most requests sent in all, never exceeded (default 240)
  --timeout <time>           deadline of each request (default 60s)
  --logprobs <n>             alternatives asked for per position (default 5; 0: none)
  --near-tie <nats>          below this margin a change is noise (default 0.5, docs/cli.md says why)
  --batch-invariant          the server runs with VLLM_BATCH_INVARIANT=1: any change is a bug
  --ca-file <pem>            trust this CA too (a server certificate signed by your own CA)
  --max-response-size <size> the largest answer read (default 8MiB)
  --json                     the result as JSON (prompts, runs, checksums, margins, findings)
  --fail-on <level>          exit 1 on a finding at or above info, warning or critical (default critical)

The bearer token is read from GPU_LAYERS_CANARY_TOKEN only (never a flag, never printed) and sent
as Authorization: Bearer. Redirects are never followed.
Exit codes: 0 no finding at or above --fail-on, 1 a scheduler-state-mismatch at or above it,
2 usage error, 4 the endpoint cannot be used (unreachable, timeout, TLS, HTML, 4xx/5xx, bad JSON).
`;
