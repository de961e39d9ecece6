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
 *
 * It also reads the periodic stats lines (every VLLM_LOG_STATS_INTERVAL seconds; frameworks.md
 * 4.1, 4.2), keeping the latest of each engine and when its last prefill burst was:
 * - V1: `Engine %03d: Avg prompt throughput: %.1f tokens/s, Avg generation throughput: %.1f
 *   tokens/s, Running: %d reqs, Waiting: %d reqs, [Preemptions: %d, ]GPU KV cache usage: %.1f%%,
 *   Prefix cache hit rate: %.1f%%` (newer builds append more fields; ~0.8 had no "Engine %03d: ",
 *   ~0.7 ended after "Waiting: %d reqs ").
 * - V0: `Avg prompt throughput: %.1f tokens/s, Avg generation throughput: %.1f tokens/s, Running:
 *   %d reqs, Swapped: %d reqs, Pending: %d reqs, GPU KV cache usage: %.1f%%, CPU KV cache usage:
 *   %.1f%%.` (Pending is read as waiting; early V0 had no final period).
 * The throughput of a line is averaged over the time since the engine's previous stats
 * computation. vLLM (late V0 and V1) logs a computation at DEBUG when it and the one before had no
 * throughput, so an INFO log skips idle stretches: the time between two shown lines is the
 * interval only when the earlier one had throughput (or the log shows DEBUG stats lines);
 * otherwise the interval is taken as at most the last one known. vLLM prints "MM-DD HH:MM:SS" in
 * local time without a year: a line's time is the latest such moment not after `now` (when the
 * line was read).
 */
import { constants } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';

import { FileRefusedError } from './read-text-file.js';

export interface VllmLogFigures {
  weightsBytes: number | null;
  kvCacheBytes: number | null;
  numGpuBlocks: number | null;
  kvCacheTokens: number | null;
  cudaGraphBytes: number | null;
  nonTorchBytes: number | null;
}

/** The latest periodic stats line of one engine, with what the lines before it said of prefill. */
export interface VllmLogStats {
  /** "Engine 000" -> "0", the /metrics `engine` label; null for V0 and V1 lines without the prefix. */
  engine: string | null;
  /** ms since the epoch, from the line's "MM-DD HH:MM:SS" (local time); null without a timestamp. */
  loggedAt: number | null;
  promptTokensPerSecond: number;
  generationTokensPerSecond: number;
  running: number;
  /** V1 Waiting, V0 Pending. */
  waiting: number;
  /** 0..1 (the line gives percent); null where the line has none. */
  kvCacheUsage: number | null;
  /**
   * When the last line with prompt throughput > 0 was logged, and how many prompt tokens the run
   * of consecutive such lines held (throughput x the time between lines, where the times are
   * known; null when none is).
   */
  lastPrefillAt: number | null;
  lastPrefillBurstTokens: number | null;
  /**
   * Seconds with no prompt or generation throughput just before that burst began (its first
   * interval's start minus the time of the last line with throughput); null when no line with
   * throughput came before it, or the times are not known.
   */
  idleBeforeLastBurstSeconds: number | null;
}

export interface VllmLog {
  /** Figures from lines tagged with a pid. */
  byPid: Map<number, VllmLogFigures>;
  /** Figures from untagged lines. */
  untagged: VllmLogFigures;
  /** How many lines gave a figure or were stats lines; 0 means none of the known lines is in the text. */
  matchedLines: number;
  /** The latest stats line of each engine, in the order the engines first appear. */
  stats: VllmLogStats[];
}

/** What one engine's stats lines carry from line to line. */
interface StatsTrack {
  /** Null only before the track's first line is taken. */
  latest: VllmLogStats | null;
  /** The previous line's time and whether it had prompt, or any, throughput. */
  prevAt: number | null;
  prevPrefill: boolean;
  prevActive: boolean;
  /** The last time between two lines known to be consecutive computations (ms). */
  interval: number | null;
  /** A DEBUG stats line was seen: the log shows idle computations too. */
  debugShown: boolean;
  /** When the last line with any throughput was logged. */
  lastActiveAt: number | null;
  /** The prompt tokens of the current or last burst, unrounded. */
  burstTokens: number | null;
}

/** What parsing carries from line to line (the follower's state between reads). */
interface ParseState {
  byPid: Map<number, VllmLogFigures>;
  untagged: VllmLogFigures;
  matchedLines: number;
  /** By engine ("" for none). */
  stats: Map<string, StatsTrack>;
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

function emptyState(): ParseState {
  return { byPid: new Map(), untagged: empty(), matchedLines: 0, stats: new Map() };
}

const STATS_AT = 'Avg prompt throughput: ';
/** How much of a stats line around STATS_AT is looked at (the prefix holds the timestamp). */
const STATS_HEAD_CHARS = 300;
const STATS_BODY_CHARS = 1000;
/** Engines tracked at most (data parallel sizes are far below): a log cannot grow the state without bound. */
export const MAX_STATS_ENGINES = 256;
const RATE = '(\\d{1,15}(?:\\.\\d{1,6})?)';
const THROUGHPUTS = new RegExp(`^Avg prompt throughput: ${RATE} tokens/s, Avg generation throughput: ${RATE} tokens/s`);
const RUNNING = /\bRunning: (\d{1,9}) reqs\b/;
const WAITING = /\b(?:Waiting|Pending): (\d{1,9}) reqs\b/;
const KV_USAGE = /\bGPU KV cache usage: (\d{1,3}(?:\.\d{1,6})?)%/;
const ENGINE = /Engine (\d{1,6}): $/;
/** vLLM's "%(levelname)s %(asctime)s" with asctime "%m-%d %H:%M:%S" (a fraction tolerated). */
const TIMESTAMP = /\b(DEBUG|INFO|WARNING|ERROR) {1,3}(\d{2})-(\d{2}) (\d{2}):(\d{2}):(\d{2})(?![\d:])/;

/**
 * The latest moment with that month, day and time of day (local time) not after `now`: vLLM logs
 * no year. Null for no such date (02-30, 24:00) or no `now`.
 */
function loggedAt([month, day, hours, minutes, seconds]: number[], now: number): number | null {
  if (!Number.isFinite(now)) return null;
  const year = new Date(now).getFullYear();
  // Eight years back reaches a 29 February from any year.
  for (let y = year; y >= year - 8; y--) {
    const date = new Date(y, month! - 1, day, hours, minutes, seconds);
    const same =
      date.getFullYear() === y && date.getMonth() === month! - 1 && date.getDate() === day && date.getHours() === hours && date.getMinutes() === minutes && date.getSeconds() === seconds;
    if (!same) continue;
    if (date.getTime() <= now) return date.getTime();
  }
  return null;
}

/** A periodic stats line into its engine's track; false when the line is not one. */
function parseStats(state: ParseState, line: string, now: number): boolean {
  const at = line.indexOf(STATS_AT);
  if (at === -1) return false;
  const body = line.slice(at, at + STATS_BODY_CHARS);
  const rates = THROUGHPUTS.exec(body);
  const running = RUNNING.exec(body);
  const waiting = WAITING.exec(body);
  if (rates === null || running === null || waiting === null) return false;
  const head = line.slice(Math.max(0, at - STATS_HEAD_CHARS), at);
  const index = ENGINE.exec(head);
  const engine = index === null ? null : String(Number(index[1]));
  const stamp = TIMESTAMP.exec(head);
  const t = stamp === null ? null : loggedAt(stamp.slice(2).map(Number), now);
  const prompt = Number(rates[1]);
  const generation = Number(rates[2]);
  const usage = KV_USAGE.exec(body);
  const percent = usage === null ? null : Number(usage[1]);

  const key = engine ?? '';
  let track = state.stats.get(key);
  if (track === undefined) {
    if (state.stats.size >= MAX_STATS_ENGINES) return false;
    track = { latest: null, prevAt: null, prevPrefill: false, prevActive: false, interval: null, debugShown: false, lastActiveAt: null, burstTokens: null };
    state.stats.set(key, track);
  }
  if (stamp?.[1] === 'DEBUG') track.debugShown = true;
  // The time this line's throughput was averaged over (ms), where it is known.
  let interval: number | null = null;
  if (t !== null && track.prevAt !== null && t > track.prevAt) {
    const gap = t - track.prevAt;
    if (track.prevActive || track.debugShown) {
      interval = gap;
      track.interval = gap;
    } else if (track.interval !== null) {
      interval = Math.min(gap, track.interval);
    }
  }
  let lastPrefillAt = track.latest?.lastPrefillAt ?? null;
  let lastPrefillBurstTokens = track.latest?.lastPrefillBurstTokens ?? null;
  let idleBeforeLastBurstSeconds = track.latest?.idleBeforeLastBurstSeconds ?? null;
  if (prompt > 0) {
    if (!track.prevPrefill) {
      track.burstTokens = null;
      const start = t === null || interval === null ? null : t - interval;
      idleBeforeLastBurstSeconds = start === null || track.lastActiveAt === null || start < track.lastActiveAt ? null : (start - track.lastActiveAt) / 1000;
    }
    if (interval !== null) track.burstTokens = (track.burstTokens ?? 0) + (prompt * interval) / 1000;
    lastPrefillAt = t;
    lastPrefillBurstTokens = track.burstTokens === null ? null : Math.round(track.burstTokens);
  }
  track.prevAt = t;
  track.prevPrefill = prompt > 0;
  track.prevActive = prompt > 0 || generation > 0;
  if (track.prevActive) track.lastActiveAt = t;
  track.latest = {
    engine,
    loggedAt: t,
    promptTokensPerSecond: prompt,
    generationTokensPerSecond: generation,
    running: Number(running[1]),
    waiting: Number(waiting[1]),
    kvCacheUsage: percent === null || percent > 100 ? null : percent / 100,
    lastPrefillAt,
    lastPrefillBurstTokens,
    idleBeforeLastBurstSeconds,
  };
  return true;
}

function parseLine(log: ParseState, raw: string, now: number): void {
  if (!/GiB|GB|blocks|tokens/.test(raw)) return;
  const line = raw.replace(ANSI, '').trim();
  // Stats lines carry no memory figure: they are read before the pid tag makes an entry.
  if (parseStats(log, line, now)) {
    log.matchedLines++;
    return;
  }
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

function toLog(state: ParseState): VllmLog {
  return { byPid: state.byPid, untagged: state.untagged, matchedLines: state.matchedLines, stats: [...state.stats.values()].flatMap((track) => (track.latest === null ? [] : [{ ...track.latest }])) };
}

/** `now`: when the text was read (ms since the epoch), for the lines' year-less timestamps. */
export function parseVllmLog(text: string, options: { now?: number } = {}): VllmLog {
  const state = emptyState();
  const now = options.now ?? Date.now();
  for (const raw of text.split('\n')) parseLine(state, raw, now);
  return toLog(state);
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

function copyState(state: ParseState): ParseState {
  return {
    byPid: new Map([...state.byPid].map(([pid, figures]) => [pid, { ...figures }])),
    untagged: { ...state.untagged },
    matchedLines: state.matchedLines,
    stats: new Map([...state.stats].map(([key, track]) => [key, { ...track, latest: track.latest && { ...track.latest } }])),
  };
}

/**
 * Follows one vLLM log across samples: the first read parses the whole file, each later one only
 * the bytes appended since, so a long-running server's log (gigabytes, with request logging) costs
 * a sample its new lines, not its length. Memory stays at one chunk and one line however large the
 * log or a line in it. The file is read from the start again when it is another file (rotated:
 * another inode), shorter than what was read (truncated), or its first bytes or those just before
 * the position differ (rewritten in place: a log's lines carry timestamps). A line not yet ended
 * is parsed into each result, never into the state the next read continues from, so every read
 * equals parseVllmLog of the whole file (dated by the same `now`: a line is dated when it is read).
 */
export class VllmLogFollower {
  readonly file: string;
  readonly #chunkBytes: number;
  #state: ParseState = emptyState();
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

  /**
   * The figures of the whole file as it is now. Reads of one follower run one at a time. `now`
   * (default: when the read starts) dates the lines this read parses.
   */
  read(now?: number): Promise<VllmLog> {
    const next = this.#queue.then(() => this.#read(now ?? Date.now()));
    this.#queue = next.catch(() => undefined);
    return next;
  }

  async #read(now: number): Promise<VllmLog> {
    // Non-blocking: a FIFO with no writer would block open(2) and read(2) forever; anything but a
    // regular file (a FIFO, /dev/zero, a socket) is refused before a byte is read.
    const handle = await open(this.file, constants.O_RDONLY | constants.O_NONBLOCK);
    try {
      const stat = await handle.stat();
      if (!stat.isFile()) throw new FileRefusedError('NOT_A_REGULAR_FILE', `${this.file} is not a regular file (a FIFO, socket or device)`);
      const { dev, ino, size } = stat;
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
          this.#endLine(now);
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
    const result = copyState(this.#state);
    if (!this.#skipping && this.#pendingBytes > 0) parseLine(result, Buffer.concat(this.#pending, this.#pendingBytes).toString('utf8'), now);
    return toLog(result);
  }

  async #continues(handle: FileHandle, dev: number, ino: number, size: number): Promise<boolean> {
    const at = this.#at;
    if (at === null || at.dev !== dev || at.ino !== ino || size < at.offset) return false;
    const keep = at.before.length;
    return (await bytesAt(handle, 0, keep)).equals(at.head) && (await bytesAt(handle, at.offset - keep, keep)).equals(at.before);
  }

  #restart(): void {
    this.#state = emptyState();
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

  #endLine(now: number): void {
    if (!this.#skipping) parseLine(this.#state, Buffer.concat(this.#pending, this.#pendingBytes).toString('utf8'), now);
    this.#pending = [];
    this.#pendingBytes = 0;
    this.#skipping = false;
  }
}

/** parseVllmLog over a file, read once (VllmLogFollower for a log read again and again). */
export function readVllmLog(file: string, options: { chunkBytes?: number; now?: number } = {}): Promise<VllmLog> {
  return new VllmLogFollower(file, options).read(options.now);
}
