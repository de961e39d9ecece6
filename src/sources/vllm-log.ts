/**
 * Reads vLLM's startup log for its memory figures: model weights, KV cache memory, GPU blocks and
 * tokens, CUDA graph capture memory, non-torch memory. Every format generation in
 * shared/reference/frameworks.md section 5.4 (V0 ~0.6 one-line results, the ~0.7-0.9 multi-line
 * summary, V1 with and without worker pid tags). Lines tagged "(VllmWorker TP0 pid=3310)" give
 * that process's figures; untagged lines the instance's. The last occurrence wins (a restart
 * logs again). Pure: text in, figures out.
 */

export interface VllmLogFigures {
  weightsBytes: number | null;
  kvCacheBytes: number | null;
  numGpuBlocks: number | null;
  kvCacheTokens: number | null;
  cudaGraphBytes: number | null;
  nonTorchBytes: number | null;
}

export interface VllmLog {
  /** Figures from lines tagged with a pid. */
  byPid: Map<number, VllmLogFigures>;
  /** Figures from untagged lines. */
  untagged: VllmLogFigures;
  /** How many lines gave a figure; 0 means none of the known lines is in the text. */
  matchedLines: number;
}

const GiB = 2 ** 30;
const NUMBER = '(-?\\d+(?:\\.\\d+)?)';

interface Rule {
  field: keyof VllmLogFigures;
  pattern: RegExp;
  value: (match: RegExpExecArray) => number;
}

const gib = (match: RegExpExecArray): number => Math.round(Number(match[1]) * GiB);
const count = (match: RegExpExecArray): number => Number(match[1]!.replaceAll(',', ''));

// Format strings from vLLM's sources (frameworks.md 5.4), most specific first within a field.
const RULES: Rule[] = [
  // V1 and late V0: "Model loading took %.4f GiB and %.6f seconds" (newer: "... GiB memory and").
  { field: 'weightsBytes', pattern: new RegExp(`Model loading took ${NUMBER} ?GiB`), value: gib },
  // vLLM 0.4-0.7 printed "Loading model weights took %.4f GB", dividing by 2**30: GiB despite
  // the label (model_runner.py of those releases).
  { field: 'weightsBytes', pattern: new RegExp(`Loading model weights took ${NUMBER} ?GB`), value: gib },
  // The ~0.7-0.9 multi-line summary, and the MemoryProfilingResult repr (DEBUG).
  { field: 'weightsBytes', pattern: new RegExp(`model weights take ${NUMBER} ?GiB`), value: gib },
  { field: 'weightsBytes', pattern: new RegExp(`weights memory: ${NUMBER} ?GiB`), value: gib },
  { field: 'kvCacheBytes', pattern: new RegExp(`Available KV cache memory: ${NUMBER} ?GiB`), value: gib },
  { field: 'kvCacheBytes', pattern: new RegExp(`the rest of the memory reserved for KV Cache is ${NUMBER} ?GiB`), value: gib },
  { field: 'kvCacheBytes', pattern: new RegExp(`kv_cache_size=${NUMBER} ?GiB`), value: gib },
  { field: 'kvCacheBytes', pattern: new RegExp(`reserved ${NUMBER} ?GiB memory for KV Cache`), value: gib },
  // "# GPU blocks: %d[, # CPU blocks: %d]" and V0's "# cuda blocks: %d, # CPU blocks: %d".
  { field: 'numGpuBlocks', pattern: /# (?!CPU)\w+ blocks: (\d+)/, value: count },
  { field: 'numGpuBlocks', pattern: /Overriding num_gpu_blocks=\d+ with num_gpu_blocks_override=(\d+)/, value: count },
  { field: 'kvCacheTokens', pattern: /GPU KV cache size: ([\d,]+) tokens/, value: count },
  { field: 'cudaGraphBytes', pattern: new RegExp(`Graph capturing finished in [\\d.]+ secs?, took ${NUMBER} ?GiB`), value: gib },
  { field: 'nonTorchBytes', pattern: new RegExp(`non_torch_memory takes ${NUMBER} ?GiB`), value: gib },
  { field: 'nonTorchBytes', pattern: new RegExp(`non-torch forward increase memory: ${NUMBER} ?GiB`), value: gib },
  { field: 'nonTorchBytes', pattern: new RegExp(`non_torch_memory=${NUMBER} ?GiB`), value: gib },
];

/** "(VllmWorker TP0 pid=3310)", "(EngineCore_DP0 pid=2051)", "(VllmWorkerProcess pid=48377)". */
const PID_TAG = /^\((?:[^()]*\s)?pid=(\d+)\)/;
// Colour codes some deployments add around the level.
const ANSI = /\u001b\[[0-9;]*m/g;

function empty(): VllmLogFigures {
  return { weightsBytes: null, kvCacheBytes: null, numGpuBlocks: null, kvCacheTokens: null, cudaGraphBytes: null, nonTorchBytes: null };
}

export function parseVllmLog(text: string): VllmLog {
  const log: VllmLog = { byPid: new Map(), untagged: empty(), matchedLines: 0 };
  for (const raw of text.split('\n')) {
    if (!/GiB|GB|blocks|tokens/.test(raw)) continue;
    const line = raw.replace(ANSI, '').trim();
    const tag = PID_TAG.exec(line);
    let figures = log.untagged;
    if (tag !== null) {
      const pid = Number(tag[1]);
      figures = log.byPid.get(pid) ?? empty();
      log.byPid.set(pid, figures);
    }
    let matched = false;
    for (const rule of RULES) {
      const match = rule.pattern.exec(line);
      if (match === null) continue;
      figures[rule.field] = rule.value(match);
      matched = true;
    }
    if (matched) log.matchedLines++;
  }
  return log;
}
