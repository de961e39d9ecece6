/**
 * Fuzzing the vLLM startup-log reader: a round trip from generated log lines (every format
 * generation, pid tags, colour codes, noise) back to the figures; the streaming file reader
 * against the pure parser on mutated logs and any chunk size; mutated and random logs (figures
 * null or plausible, within a bound); a log followed while it grows, rotates, is truncated or
 * rewritten, against the pure parser of the whole file each time; adversarial input for each
 * regular expression; and a log with a huge line read in bounded memory.
 */
import { appendFileSync, mkdtempSync, readdirSync, readFileSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';

import { readFramework } from '../../src/layers/read-framework.js';
import { MAX_LOG_LINE_BYTES, parseVllmLog, readVllmLog, VllmLogFollower, type VllmLog, type VllmLogFigures } from '../../src/sources/vllm-log.js';
import { repoRoot } from '../helpers/paths.js';
import { CALL_BOUND_MS, FUZZ_TIMEOUT_MS, fuzzParams, LONG_RUN, mutatedOrRandom, timed, timedAsync } from '../helpers/fuzz.js';

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
        const { value, cpuMs } = await timedAsync(() => readVllmLog(file, { chunkBytes }));
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
          expect(await follower.read(), kind).toEqual(parseVllmLog(content.toString('utf8')));
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
  const PUMPS = ['1', '-1', '1.', '.1', '1.1', ' ', 'a', ',', '1,', '(', ' pid=1', '(a pid=1)', '\u001b[0', '\u001b[0m', '# a', 'GiB', 'Model loading took 1', ' \t'];
  const SUFFIXES = ['', ' GiB', ' GB', 'x GiB', ' blocks', ' tokens', ') GiB', 'm GiB'];
  const LENGTH = LONG_RUN ? 200_000 : 40_000;

  it(`no line of ${LENGTH} characters takes longer than the bound`, { timeout: FUZZ_TIMEOUT_MS }, () => {
    let slowest = { ms: 0, input: '' };
    for (const prefix of PREFIXES) {
      for (const pump of PUMPS) {
        for (const suffix of SUFFIXES) {
          const line = prefix + pump.repeat(Math.ceil(LENGTH / pump.length)) + suffix;
          const { value, cpuMs } = timed(() => parseVllmLog(line));
          checkLog(value);
          if (cpuMs > slowest.ms) slowest = { ms: cpuMs, input: `${JSON.stringify(prefix)} + ${JSON.stringify(pump)} x n + ${JSON.stringify(suffix)}` };
        }
      }
    }
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
