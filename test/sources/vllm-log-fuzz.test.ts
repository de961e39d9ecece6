/**
 * Fuzzing the vLLM startup-log reader: a round trip from generated log lines (every format
 * generation, pid tags, colour codes, noise) back to the figures; the streaming file reader
 * against the pure parser on mutated logs and any chunk size; mutated and random logs (figures
 * null or plausible, within a bound); a log followed while it grows, rotates, is truncated or
 * rewritten, against the pure parser of the whole file each time; adversarial input for each
 * regular expression; and a log with a huge line read in bounded memory. The periodic stats lines
 * likewise: generated V0 and V1 lines (engine prefixes, pid tags, colour, docker timestamps,
 * appended fields, noise) back to each engine's latest line and prefill burst, and every stats
 * record any log gives within its ranges. Every parse is dated by one fixed `now`.
 */
import { appendFileSync, mkdtempSync, readdirSync, readFileSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';

import { readFramework } from '../../src/layers/read-framework.js';
import { MAX_LOG_LINE_BYTES, parseVllmLog as parseAt, readVllmLog, VllmLogFollower, type VllmLog, type VllmLogFigures } from '../../src/sources/vllm-log.js';
import { repoRoot } from '../helpers/paths.js';
import { CALL_BOUND_MS, FUZZ_TIMEOUT_MS, fuzzParams, LONG_RUN, mutatedOrRandom, slowestOnPumpedInputs, timed, timedAsync } from '../helpers/fuzz.js';

const work = mkdtempSync(path.join(tmpdir(), 'gpu-layers-vllm-log-fuzz-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

const GiB = 2 ** 30;
/**
 * Reads of one file at the tiny chunk sizes that test lines split across reads: each read is a
 * trip through libuv's thread pool, whose CPU counts against the call's bound (64 KiB of one
 * line read a byte at a time cost 1.06 s of CPU on this machine). Large inputs are tested at
 * larger chunks.
 */
const MAX_READS = 8_000;
/** When every log here is read (vLLM's timestamps have no year): 2026-11-30 12:00 local time. */
const NOW = new Date(2026, 10, 30, 12, 0, 0).getTime();
const parseVllmLog = (text: string) => parseAt(text, { now: NOW });
const fixtureDir = path.join(repoRoot, 'test/fixtures/vllm');
const logs = readdirSync(fixtureDir)
  .filter((f) => f.endsWith('.log'))
  .map((f) => readFileSync(path.join(fixtureDir, f)));

/** What any log may give: per figure null, or a whole number (bytes never below 0 but non-torch). */
function checkLog(log: VllmLog): void {
  const check = (figures: VllmLogFigures) => {
    for (const [field, value] of Object.entries(figures)) {
      if (value === null) continue;
      expect(Number.isSafeInteger(value), `${field}: ${value}`).toBe(true);
      if (field !== 'nonTorchBytes') expect(value, field).toBeGreaterThanOrEqual(0);
    }
  };
  check(log.untagged);
  for (const [pid, figures] of log.byPid) {
    expect(Number.isSafeInteger(pid), `pid ${pid}`).toBe(true);
    check(figures);
  }
  expect(Number.isSafeInteger(log.matchedLines) && log.matchedLines >= 0).toBe(true);
  expect(log.stats.length).toBeLessThanOrEqual(log.matchedLines);
  const engines = new Set<string | null>();
  for (const stats of log.stats) {
    expect(stats.engine === null || /^\d+$/.test(stats.engine), `engine ${stats.engine}`).toBe(true);
    expect(engines.has(stats.engine), `engine ${stats.engine} twice`).toBe(false);
    engines.add(stats.engine);
    for (const rate of [stats.promptTokensPerSecond, stats.generationTokensPerSecond]) expect(Number.isFinite(rate) && rate >= 0, `rate ${rate}`).toBe(true);
    for (const count of [stats.running, stats.waiting]) expect(Number.isSafeInteger(count) && count >= 0, `count ${count}`).toBe(true);
    expect(stats.kvCacheUsage === null || (stats.kvCacheUsage >= 0 && stats.kvCacheUsage <= 1), `usage ${stats.kvCacheUsage}`).toBe(true);
    for (const at of [stats.loggedAt, stats.lastPrefillAt]) expect(at === null || (Number.isSafeInteger(at) && at <= NOW), `time ${at}`).toBe(true);
    expect(stats.lastPrefillBurstTokens === null || (Number.isSafeInteger(stats.lastPrefillBurstTokens) && stats.lastPrefillBurstTokens >= 0)).toBe(true);
    expect(stats.idleBeforeLastBurstSeconds === null || (Number.isFinite(stats.idleBeforeLastBurstSeconds) && stats.idleBeforeLastBurstSeconds >= 0)).toBe(true);
  }
}

describe('round trip: generated log lines back to their figures', () => {
  type Field = keyof VllmLogFigures;
  // Each line format gpu-layers reads, with the figure as logged (GiB with decimals, or a count).
  const FORMATS: { field: Field; line: (v: string) => string; unit: 'gib' | 'count' }[] = [
    { field: 'weightsBytes', unit: 'gib', line: (v) => `Model loading took ${v} GiB and 21.453118 seconds` },
    { field: 'weightsBytes', unit: 'gib', line: (v) => `Model loading took ${v} GiB memory and 21.453118 seconds` },
    { field: 'weightsBytes', unit: 'gib', line: (v) => `Loading model weights took ${v} GB` },
    { field: 'weightsBytes', unit: 'gib', line: (v) => `Memory profiling results: duration=6.1 seconds, total_gpu_memory=79.1GiB, model weights take ${v}GiB` },
    { field: 'weightsBytes', unit: 'gib', line: (v) => `Memory profiling takes 6.12 seconds. weights memory: ${v}GiB.` },
    { field: 'kvCacheBytes', unit: 'gib', line: (v) => `Available KV cache memory: ${v} GiB` },
    { field: 'kvCacheBytes', unit: 'gib', line: (v) => `the rest of the memory reserved for KV Cache is ${v}GiB.` },
    { field: 'kvCacheBytes', unit: 'gib', line: (v) => `MemoryProfilingResult(kv_cache_size=${v}GiB)` },
    { field: 'kvCacheBytes', unit: 'gib', line: (v) => `The model reserved ${v} GiB memory for KV Cache` },
    { field: 'numGpuBlocks', unit: 'count', line: (v) => `# GPU blocks: ${v}, # CPU blocks: 2048` },
    { field: 'numGpuBlocks', unit: 'count', line: (v) => `# cuda blocks: ${v}, # CPU blocks: 4096` },
    { field: 'numGpuBlocks', unit: 'count', line: (v) => `Overriding num_gpu_blocks=24000 with num_gpu_blocks_override=${v}` },
    { field: 'kvCacheTokens', unit: 'count', line: (v) => `GPU KV cache size: ${Number(v).toLocaleString('en-US')} tokens` },
    { field: 'cudaGraphBytes', unit: 'gib', line: (v) => `Graph capturing finished in 31 secs, took ${v} GiB` },
    { field: 'nonTorchBytes', unit: 'gib', line: (v) => `non_torch_memory takes ${v}GiB` },
    { field: 'nonTorchBytes', unit: 'gib', line: (v) => `Memory profiling takes 6.12 seconds. non-torch forward increase memory: ${v}GiB` },
    { field: 'nonTorchBytes', unit: 'gib', line: (v) => `MemoryProfilingResult(non_torch_memory=${v}GiB)` },
  ];
  const TAGS = ['VllmWorker TP0', 'EngineCore_DP0', 'VllmWorkerProcess', 'VllmWorker TP3 rank=3'];
  const event = fc.record({
    format: fc.nat(FORMATS.length - 1),
    // Hundredths of a GiB, or a count; negative only where vLLM logs a difference.
    amount: fc.integer({ min: 0, max: 10_000_000 }),
    negative: fc.boolean(),
    pid: fc.option(fc.integer({ min: 1, max: 4_194_304 }), { nil: null }),
    tag: fc.nat(TAGS.length - 1),
    colour: fc.boolean(),
    crlf: fc.boolean(),
  });
  // Lines with none of the words the reader looks for.
  const noise = fc.string({ maxLength: 60 }).filter((s) => !/GiB|GB|blocks|tokens|\n|\r/.test(s));

  it('the last figure logged for each process and field, whatever surrounds it', { timeout: FUZZ_TIMEOUT_MS }, () => {
    fc.assert(
      fc.property(fc.array(fc.oneof({ weight: 3, arbitrary: event }, { weight: 1, arbitrary: noise }), { maxLength: 25 }), (items) => {
        const expected = new Map<number | null, Partial<VllmLogFigures>>();
        let matched = 0;
        const lines = items.map((item) => {
          if (typeof item === 'string') return item;
          const format = FORMATS[item.format]!;
          const value =
            format.unit === 'count' ? String(item.amount) : `${item.negative && format.field === 'nonTorchBytes' ? '-' : ''}${(item.amount / 100).toFixed(2)}`;
          const figures = expected.get(item.pid) ?? {};
          figures[format.field] = format.unit === 'count' ? item.amount : Math.round(Number(value) * GiB);
          expected.set(item.pid, figures);
          matched++;
          const level = item.colour ? '\u001b[32mINFO\u001b[0m' : 'INFO';
          const tag = item.pid === null ? '' : `(${TAGS[item.tag]} pid=${item.pid}) `;
          return `${tag}${level} 11-21 16:41:20 [gpu_worker.py:298] ${format.line(value)}${item.crlf ? '\r' : ''}`;
        });
        const log = parseVllmLog(lines.join('\n'));
        expect(log.matchedLines).toBe(matched);
        const { null: untagged, ...rest } = Object.fromEntries(expected) as Record<string, Partial<VllmLogFigures>>;
        expect(log.untagged).toMatchObject(untagged ?? {});
        expect(new Set(log.byPid.keys())).toEqual(new Set(Object.keys(rest).map(Number)));
        for (const [pid, figures] of Object.entries(rest)) expect(log.byPid.get(Number(pid))).toMatchObject(figures);
      }),
      fuzzParams(300),
    );
  });
});

describe('round trip: generated stats lines back to each engine\'s latest line and burst', () => {
  const line = fc.record({
    // null: a V0 line, or a V1 line without "Engine %03d: " (~0.8); both are engine null.
    engine: fc.option(fc.integer({ min: 0, max: 3 }), { nil: null }),
    v0: fc.boolean(),
    prompt: fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 10_000_000 })),
    generation: fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 10_000_000 })),
    running: fc.nat(100_000),
    waiting: fc.nat(100_000),
    usage: fc.integer({ min: 0, max: 1000 }),
    /** Seconds after the previous line (0: the same second). */
    step: fc.integer({ min: 0, max: 30 }),
    level: fc.constantFrom('INFO', 'INFO', 'DEBUG'),
    decoration: fc.constantFrom('', '(APIServer pid=1) ', '2026-05-12T08:01:39.331095044Z (APIServer pid=1) ', 'colour'),
    tail: fc.constantFrom('', ', Prefix cache hit rate: 40.0%', ', Prefix cache hit rate: 0.0%, MM cache hit rate: 0.0%'),
  });
  const noise = fc.string({ maxLength: 60 }).filter((s) => !/GiB|GB|blocks|tokens|\n|\r/.test(s));
  const pad = (n: number) => String(n).padStart(2, '0');

  it('the latest line of each engine, its last prefill and the run of prefill lines before it', { timeout: FUZZ_TIMEOUT_MS }, () => {
    fc.assert(
      fc.property(fc.array(fc.oneof({ weight: 4, arbitrary: line }, { weight: 1, arbitrary: noise }), { maxLength: 30 }), (items) => {
        let t = new Date(2026, 10, 30, 9, 0, 0).getTime();
        // What the log says per engine, computed here from the generated values.
        type Expected = {
          engine: string | null;
          at: number;
          prompt: number;
          generation: number;
          running: number;
          waiting: number;
          usage: number;
          lastPrefillAt: number | null;
          inBurst: boolean;
          /** Where every line has throughput, each line's interval is the time since the one before. */
          burst: number | null;
          idleBefore: number | null;
        };
        const expected = new Map<string, Expected>();
        let matched = 0;
        const text = items.map((item) => {
          if (typeof item === 'string') return item;
          t += item.step * 1000;
          const engine = item.v0 || item.engine === null ? null : String(item.engine);
          const key = engine ?? '';
          const before = expected.get(key);
          const prefill = item.prompt > 0;
          const gap = before === undefined || t === before.at ? null : (t - before.at) / 1000;
          const startsBurst = prefill && !(before?.inBurst ?? false);
          const tokens = prefill && gap !== null ? (item.prompt / 10) * gap : null;
          const burst = !prefill ? (before?.burst ?? null) : startsBurst ? tokens : tokens === null ? (before?.burst ?? null) : (before?.burst ?? 0) + tokens;
          expected.set(key, {
            engine,
            at: t,
            prompt: item.prompt / 10,
            generation: item.generation / 10,
            running: item.running,
            waiting: item.waiting,
            // The percent as printed, as a fraction.
            usage: Number((item.usage / 10).toFixed(1)) / 100,
            lastPrefillAt: prefill ? t : (before?.lastPrefillAt ?? null),
            inBurst: prefill,
            burst,
            idleBefore: startsBurst ? (gap === null ? null : 0) : (before?.idleBefore ?? null),
          });
          matched++;
          const date = new Date(t);
          const stamp = `${pad(date.getMonth() + 1)}-${pad(date.getDate())} ${pad(date.getHours())}:${pad(date.getMinutes())}:${pad(date.getSeconds())}`;
          const level = item.decoration === 'colour' ? `\u001b[32m${item.level}\u001b[0m` : item.level;
          const prefix = item.decoration === 'colour' ? '' : item.decoration;
          const rates = `Avg prompt throughput: ${(item.prompt / 10).toFixed(1)} tokens/s, Avg generation throughput: ${(item.generation / 10).toFixed(1)} tokens/s`;
          const usage = `GPU KV cache usage: ${(item.usage / 10).toFixed(1)}%`;
          const body = item.v0
            ? `${rates}, Running: ${item.running} reqs, Swapped: 0 reqs, Pending: ${item.waiting} reqs, ${usage}, CPU KV cache usage: 0.0%.`
            : `${engine === null ? '' : `Engine ${engine.padStart(3, '0')}: `}${rates}, Running: ${item.running} reqs, Waiting: ${item.waiting} reqs, Preemptions: 0, ${usage}${item.tail}`;
          return `${prefix}${level} ${stamp} [loggers.py:123] ${body}`;
        });
        const log = parseVllmLog(text.join('\n'));
        checkLog(log);
        expect(log.matchedLines).toBe(matched);
        expect(log.byPid.size).toBe(0);
        expect(log.stats.map((s) => ({ engine: s.engine, at: s.loggedAt, prompt: s.promptTokensPerSecond, generation: s.generationTokensPerSecond, running: s.running, waiting: s.waiting, usage: s.kvCacheUsage, lastPrefillAt: s.lastPrefillAt }))).toEqual(
          [...expected.values()].map(({ inBurst: _, burst: __, idleBefore: ___, ...e }) => e),
        );
        const busy = items.every((item) => typeof item === 'string' || item.prompt > 0 || item.generation > 0);
        if (busy) {
          expect(log.stats.map((s) => [s.lastPrefillBurstTokens, s.idleBeforeLastBurstSeconds])).toEqual(
            [...expected.values()].map((e) => [e.burst === null ? null : Math.round(e.burst), e.idleBefore]),
          );
        }
      }),
      fuzzParams(300),
    );
  });
});

describe('mutated and random logs', () => {
  it('the pure parser: plausible figures or none, within the bound', { timeout: FUZZ_TIMEOUT_MS }, () => {
    fc.assert(
      fc.property(mutatedOrRandom(logs, 8), (bytes) => {
        const { value, cpuMs } = timed(() => parseVllmLog(bytes.toString('utf8')));
        expect(cpuMs).toBeLessThan(CALL_BOUND_MS);
        checkLog(value);
      }),
      fuzzParams(400),
    );
  });

  it.each([
    ['a negative weight', 'Model loading took -5.0 GiB', 'weightsBytes'],
    ['a negative graph capture', 'Graph capturing finished in 5 secs, took -0.50 GiB', 'cudaGraphBytes'],
    ['400-digit GiB', `Available KV cache memory: ${'9'.repeat(400)} GiB`, 'kvCacheBytes'],
    ['a block count past 2^53', '# GPU blocks: 99999999999999999999', 'numGpuBlocks'],
    ['commas and no digits', 'GPU KV cache size: ,,, tokens', 'kvCacheTokens'],
    ['a pid tag past 2^53', `(VllmWorker TP0 pid=${'9'.repeat(30)}) Model loading took 1.00 GiB`, 'weightsBytes'],
  ] as const)('%s is not taken as a figure', (_name, line, field) => {
    const log = parseVllmLog(`Available KV cache memory: 1.00 GiB\n${line}\n`);
    checkLog(log);
    expect(log.untagged[field]).toBe(field === 'kvCacheBytes' ? GiB : null);
  });

  it('the file reader gives what the pure parser gives, at any chunk size', { timeout: FUZZ_TIMEOUT_MS }, async () => {
    const file = path.join(work, 'differential.log');
    await fc.assert(
      fc.asyncProperty(mutatedOrRandom(logs, 6), fc.integer({ min: 1, max: 300 }), async (bytes, chunkBytes) => {
        // Lines over the limit are skipped by the file reader alone.
        fc.pre(bytes.toString('latin1').split('\n').every((line) => line.length <= MAX_LOG_LINE_BYTES));
        fc.pre(bytes.length / chunkBytes <= MAX_READS);
        writeFileSync(file, bytes);
        const { value, cpuMs } = await timedAsync(() => readVllmLog(file, { chunkBytes, now: NOW }));
        expect(cpuMs).toBeLessThan(CALL_BOUND_MS);
        expect(value).toEqual(parseVllmLog(bytes.toString('utf8')));
      }),
      fuzzParams(150),
    );
  });
});

describe('a log followed across reads', () => {
  type Change = { kind: 'append' | 'truncate' | 'rotate' | 'rewrite'; at: number };
  const change: fc.Arbitrary<Change> = fc.record({
    kind: fc.constantFrom('append', 'append', 'append', 'truncate', 'rotate', 'rewrite'),
    at: fc.double({ min: 0, max: 1, noNaN: true }),
  });
  const otherDigits = (bytes: Buffer) => Buffer.from(bytes.toString('latin1').replace(/\d/g, (d) => String((Number(d) + 3) % 10)), 'latin1');

  it('every read equals the pure parser of the whole file as it is then', { timeout: FUZZ_TIMEOUT_MS }, async () => {
    let run = 0;
    await fc.assert(
      fc.asyncProperty(mutatedOrRandom(logs, 4), fc.array(change, { minLength: 1, maxLength: 8 }), fc.integer({ min: 1, max: 300 }), async (bytes, changes, chunkBytes) => {
        fc.pre(bytes.toString('latin1').split('\n').every((line) => line.length <= MAX_LOG_LINE_BYTES));
        fc.pre(bytes.length / chunkBytes <= MAX_READS);
        const file = path.join(work, `followed-${run++}.log`);
        writeFileSync(file, '');
        const follower = new VllmLogFollower(file, { chunkBytes });
        let content: Buffer = Buffer.alloc(0);
        let written = 0; // how much of `bytes` the appends have used
        for (const { kind, at } of changes) {
          const cut = Math.floor(at * bytes.length);
          if (kind === 'append') {
            // Up to a random point of the log, or to just before a newline (a whole line, not yet
            // ended): the rest comes later.
            const newlines = [...bytes.entries()].filter(([, byte]) => byte === 10).map(([i]) => i);
            const end = newlines.length > 0 && at >= 0.5 ? newlines[Math.floor((at - 0.5) * 2 * newlines.length) % newlines.length]! : cut;
            const next = Math.max(written, end);
            appendFileSync(file, bytes.subarray(written, next));
            content = Buffer.concat([content, bytes.subarray(written, next)]);
            written = next;
          } else if (kind === 'truncate') {
            content = content.subarray(0, Math.min(content.length, cut));
            truncateSync(file, content.length);
          } else if (kind === 'rotate') {
            rmSync(file);
            content = bytes.subarray(0, cut);
            writeFileSync(file, content);
          } else {
            // Another server's whole log in the same file (same inode, as long or longer): its
            // own first line, other figures.
            content = Buffer.concat([Buffer.from(`INFO 12-31 23:59:${String(run % 60).padStart(2, '0')} restarted\n`), otherDigits(bytes)]);
            written = bytes.length;
            writeFileSync(file, content);
          }
          expect(await follower.read(NOW), kind).toEqual(parseVllmLog(content.toString('utf8')));
        }
      }),
      fuzzParams(300),
    );
  });
});

describe('bounds', () => {
  // Each prefix a pattern starts with, a run of what it repeats, and an ending that makes the
  // match fail late (or succeed): the shapes that send a backtracking matcher quadratic.
  const PREFIXES = [
    '',
    'Avg prompt throughput: ',
    'Avg prompt throughput: 1.0 tokens/s, Avg generation throughput: ',
    'INFO 11-26 10:00:00 Engine ',
    'Engine 000: Avg prompt throughput: 1.0 tokens/s, Avg generation throughput: 1.0 tokens/s, ',
    'Model loading took ',
    'Loading model weights took ',
    '# ',
    '# GPU blocks: ',
    'GPU KV cache size: ',
    'Graph capturing finished in ',
    'Graph capturing finished in 1 secs, took ',
    '(',
    '(x pid=',
    '\u001b[',
    'Overriding num_gpu_blocks=',
    'reserved ',
    'non_torch_memory takes ',
  ];
  const PUMPS = ['INFO ', 'INFO 11-26 ', 'Engine 0: ', 'Running: 1 reqs, ', 'Avg prompt throughput: ', 'Avg prompt throughput: 1.0 tokens/s, ', '1', '-1', '1.', '.1', '1.1', ' ', 'a', ',', '1,', '(', ' pid=1', '(a pid=1)', '\u001b[0', '\u001b[0m', '# a', 'GiB', 'Model loading took 1', ' \t'];
  const SUFFIXES = [' tokens/s, Avg generation throughput: 1.0 tokens/s, Running: 1 reqs, Waiting: 0 reqs, GPU KV cache usage: 1.0%', 'Avg prompt throughput: 1.0 tokens/s, Avg generation throughput: 1.0 tokens/s, Running: 1 reqs, Waiting: 0 reqs', '', ' GiB', ' GB', 'x GiB', ' blocks', ' tokens', ') GiB', 'm GiB'];
  const LENGTH = LONG_RUN ? 200_000 : 40_000;

  it(`no line of ${LENGTH} characters takes longer than the bound`, { timeout: FUZZ_TIMEOUT_MS }, () => {
    const slowest = slowestOnPumpedInputs({ prefixes: PREFIXES, pumps: PUMPS, suffixes: SUFFIXES }, LENGTH, (line) => checkLog(parseVllmLog(line)));
    expect(slowest.ms, slowest.input).toBeLessThan(CALL_BOUND_MS);
  });

  it('a 128 MiB log that is one line, then the figures, is read in bounded memory', { timeout: FUZZ_TIMEOUT_MS }, async () => {
    const file = path.join(work, 'huge.log');
    writeFileSync(file, 'INFO vLLM API server version 0.11.0 GiB ');
    truncateSync(file, 128 * 1024 * 1024); // sparse: one line of NUL bytes, no disk used
    appendFileSync(file, '\nAvailable KV cache memory: 30.15 GiB\n');
    const before = process.resourceUsage().maxRSS;
    const reading = await readFramework([], { vllmLog: file }, work);
    // maxRSS is the peak in KiB: reading the whole log would have added 256 MiB (bytes and text).
    expect(process.resourceUsage().maxRSS - before).toBeLessThan(64 * 1024);
    expect(reading.log).toEqual({ location: file, ok: true, error: null });
    expect((await readVllmLog(file)).untagged.kvCacheBytes).toBe(Math.round(30.15 * GiB));
  });
});
