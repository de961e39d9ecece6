/**
 * Reads vLLM's startup log for its memory figures: model weights, KV cache memory, GPU blocks and
 * tokens, CUDA graph capture memory, non-torch memory. Every format generation in
 * shared/reference/frameworks.md section 5.4 (V0 ~0.6 one-line results, the ~0.7-0.9 multi-line
 * summary, V1 with and without worker pid tags). Lines tagged "(VllmWorker TP0 pid=3310)" give
 * that process's figures; untagged lines the instance's. The last occurrence wins (a restart
 * logs again). parseVllmLog is pure (text in, figures out); VllmLogFollower streams a file
 * through the same line parser, in bounded memory, and on later reads parses only what was
 * appended. A figure that is no plausible size (negative where it cannot be, beyond 2^53 bytes) is
 * not taken.
 */
import { open, type FileHandle } from 'node:fs/promises';

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
  /** The figure, or null when the digits make no whole number below 2^53. */
  value: (match: RegExpExecArray) => number | null;
}

/** Fields that may be negative as logged (vLLM's non-torch figure is a difference). */
const SIGNED: ReadonlySet<keyof VllmLogFigures> = new Set(['nonTorchBytes']);

const whole = (value: number): number | null => (Number.isSafeInteger(value) ? value : null);
const gib = (match: RegExpExecArray): number | null => whole(Math.round(Number(match[1]) * GiB));
const count = (match: RegExpExecArray): number | null => {
  const digits = match[1]!.replaceAll(',', '');
  return digits === '' ? null : whole(Number(digits));
};

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

function emptyLog(): VllmLog {
  return { byPid: new Map(), untagged: empty(), matchedLines: 0 };
}

function parseLine(log: VllmLog, raw: string): void {
  if (!/GiB|GB|blocks|tokens/.test(raw)) return;
  const line = raw.replace(ANSI, '').trim();
  const tag = PID_TAG.exec(line);
  let figures = log.untagged;
  if (tag !== null) {
    const pid = Number(tag[1]);
    if (!Number.isSafeInteger(pid)) return; // no process has that pid: not a line to trust
    figures = log.byPid.get(pid) ?? empty();
    log.byPid.set(pid, figures);
  }
  let matched = false;
  for (const rule of RULES) {
    const match = rule.pattern.exec(line);
    if (match === null) continue;
    const value = rule.value(match);
    if (value === null || (value < 0 && !SIGNED.has(rule.field))) continue;
    figures[rule.field] = value;
    matched = true;
  }
  if (matched) log.matchedLines++;
}

export function parseVllmLog(text: string): VllmLog {
  const log = emptyLog();
  for (const raw of text.split('\n')) parseLine(log, raw);
  return log;
}

/** Each of the lines gpu-layers reads is under 300 bytes; a longer line is skipped unread. */
export const MAX_LOG_LINE_BYTES = 64 * 1024;

/** Bytes kept from the file's start and from just before the read position, to recognise it. */
const CONTINUITY_BYTES = 64;

/** Up to `length` bytes of the file from `position` (fewer where it ends sooner). */
async function bytesAt(handle: FileHandle, position: number, length: number): Promise<Buffer> {
  const bytes = Buffer.alloc(length);
  const { bytesRead } = length === 0 ? { bytesRead: 0 } : await handle.read(bytes, 0, length, position);
  return bytes.subarray(0, bytesRead);
}

function copyLog(log: VllmLog): VllmLog {
  return { byPid: new Map([...log.byPid].map(([pid, figures]) => [pid, { ...figures }])), untagged: { ...log.untagged }, matchedLines: log.matchedLines };
}

/**
 * Follows one vLLM log across samples: the first read parses the whole file, each later one only
 * the bytes appended since, so a long-running server's log (gigabytes, with request logging) costs
 * a sample its new lines, not its length. Memory stays at one chunk and one line however large the
 * log or a line in it. The file is read from the start again when it is another file (rotated:
 * another inode), shorter than what was read (truncated), or its first bytes or those just before
 * the position differ (rewritten in place: a log's lines carry timestamps). A line not yet ended
 * is parsed into each result, never into the state the next read continues from, so every read
 * equals parseVllmLog of the whole file.
 */
export class VllmLogFollower {
  readonly file: string;
  readonly #chunkBytes: number;
  #log: VllmLog = emptyLog();
  #at: { dev: number; ino: number; offset: number; head: Buffer; before: Buffer } | null = null;
  #pending: Buffer[] = [];
  #pendingBytes = 0;
  #skipping = false;
  #queue: Promise<unknown> = Promise.resolve();
  #bytesRead = 0;

  constructor(file: string, options: { chunkBytes?: number } = {}) {
    this.file = file;
    this.#chunkBytes = options.chunkBytes ?? 1024 * 1024;
  }

  /** Bytes read from the file so far, by every read (what following saves shows here). */
  get bytesRead(): number {
    return this.#bytesRead;
  }

  /** The figures of the whole file as it is now. Reads of one follower run one at a time. */
  read(): Promise<VllmLog> {
    const next = this.#queue.then(() => this.#read());
    this.#queue = next.catch(() => undefined);
    return next;
  }

  async #read(): Promise<VllmLog> {
    const handle = await open(this.file, 'r');
    try {
      const { dev, ino, size } = await handle.stat();
      if (!(await this.#continues(handle, dev, ino, size))) this.#restart();
      const chunk = Buffer.allocUnsafe(this.#chunkBytes);
      let offset = this.#at?.offset ?? 0;
      for (;;) {
        const { bytesRead } = await handle.read(chunk, 0, chunk.length, offset);
        if (bytesRead === 0) break;
        this.#bytesRead += bytesRead;
        offset += bytesRead;
        const data = chunk.subarray(0, bytesRead);
        let start = 0;
        for (let newline = data.indexOf(10); newline !== -1; newline = data.indexOf(10, start)) {
          this.#take(data.subarray(start, newline));
          this.#endLine();
          start = newline + 1;
        }
        this.#take(data.subarray(start));
      }
      const keep = Math.min(CONTINUITY_BYTES, offset);
      this.#at = { dev, ino, offset, head: await bytesAt(handle, 0, keep), before: await bytesAt(handle, offset - keep, keep) };
    } catch (error) {
      this.#restart(); // half a read leaves no state to continue from
      throw error;
    } finally {
      await handle.close();
    }
    const result = copyLog(this.#log);
    if (!this.#skipping && this.#pendingBytes > 0) parseLine(result, Buffer.concat(this.#pending, this.#pendingBytes).toString('utf8'));
    return result;
  }

  async #continues(handle: FileHandle, dev: number, ino: number, size: number): Promise<boolean> {
    const at = this.#at;
    if (at === null || at.dev !== dev || at.ino !== ino || size < at.offset) return false;
    const keep = at.before.length;
    return (await bytesAt(handle, 0, keep)).equals(at.head) && (await bytesAt(handle, at.offset - keep, keep)).equals(at.before);
  }

  #restart(): void {
    this.#log = emptyLog();
    this.#at = null;
    this.#pending = [];
    this.#pendingBytes = 0;
    this.#skipping = false;
  }

  #take(part: Buffer): void {
    if (this.#skipping || part.length === 0) return;
    this.#pendingBytes += part.length;
    if (this.#pendingBytes > MAX_LOG_LINE_BYTES) {
      this.#skipping = true;
      this.#pending = [];
    } else {
      this.#pending.push(Buffer.from(part)); // a copy: the chunk is reused
    }
  }

  #endLine(): void {
    if (!this.#skipping) parseLine(this.#log, Buffer.concat(this.#pending, this.#pendingBytes).toString('utf8'));
    this.#pending = [];
    this.#pendingBytes = 0;
    this.#skipping = false;
  }
}

/** parseVllmLog over a file, read once (VllmLogFollower for a log read again and again). */
export function readVllmLog(file: string, options: { chunkBytes?: number } = {}): Promise<VllmLog> {
  return new VllmLogFollower(file, options).read();
}
