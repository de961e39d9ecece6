/**
 * Fuzzing the vLLM /metrics reader (Prometheus text through parse-prometheus-text-format): a
 * round trip from generated engines to exposition text and back; mutated real pages, hostile
 * values (NaN, +Inf, 1e309, 400 digits), hostile label names (__proto__, constructor) and random
 * bytes, each ending in a VLLM_METRICS_* reason or in figures within their ranges, within a
 * bound; pages past the line and size limits refused as too large; and an endless body cut off
 * at the size limit.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';

import { fetchVllmMetrics, readVllmMetricsText, type VllmMetricsResult } from '../../src/sources/vllm-metrics.js';
import { repoRoot } from '../helpers/paths.js';
import { assertNoPollution, CALL_BOUND_MS, FUZZ_TIMEOUT_MS, fuzzParams, LONG_RUN, mutatedOrRandom, timed, timedAsync } from '../helpers/fuzz.js';

const fixtureDir = path.join(repoRoot, 'test/fixtures/vllm');
const pages = readdirSync(fixtureDir)
  .filter((f) => f.startsWith('metrics-'))
  .map((f) => readFileSync(path.join(fixtureDir, f)));

const CODES = new Set(['VLLM_METRICS_EMPTY', 'VLLM_METRICS_INVALID', 'VLLM_METRICS_NOT_FOUND', 'VLLM_METRICS_TOO_LARGE']);

/** A reason, or engines whose every figure is within its range (checked in plain code: a page can hold 50,000 engines). */
function checkResult(result: VllmMetricsResult): void {
  if (!result.ok) {
    expect(CODES.has(result.error.code), result.error.code).toBe(true);
    expect(typeof result.error.message).toBe('string');
    return;
  }
  expect(result.engines.length).toBeGreaterThan(0);
  const text = (v: unknown) => v === null || typeof v === 'string';
  const count = (v: number | null) => v === null || (Number.isSafeInteger(v) && v >= 0);
  const problems = result.engines.filter(
    (e) =>
      !text(e.engine) ||
      !text(e.modelName) ||
      !text(e.cacheDtype) ||
      !(e.kvCacheUsage === null || (e.kvCacheUsage >= 0 && e.kvCacheUsage <= 1)) ||
      !count(e.numGpuBlocks) ||
      !count(e.blockSize) ||
      ![e.requestsRunning, e.requestsWaiting].every((r) => r === null || Number.isFinite(r)) ||
      (e.cacheConfig !== null && !Object.values(e.cacheConfig).every((v) => typeof v === 'string')),
  );
  expect(problems).toEqual([]);
}

/** Prometheus label-value escaping: backslash, double quote, newline. */
const escape = (value: string) => value.replaceAll('\\', '\\\\').replaceAll('"', '\\"').replaceAll('\n', '\\n');
const labels = (pairs: [string, string][]) => (pairs.length === 0 ? '' : `{${pairs.map(([k, v]) => `${k}="${escape(v)}"`).join(',')}}`);

describe('round trip: generated engines to exposition text and back', () => {
  const engine = fc.record({
    model: fc.string({ maxLength: 40 }),
    running: fc.oneof(fc.nat(), fc.double({ noNaN: true, noDefaultInfinity: true }).filter((v) => !Object.is(v, -0))),
    waiting: fc.nat(),
    usage: fc.double({ min: 0, max: 1, noNaN: true }).filter((v) => !Object.is(v, -0)),
    blocks: fc.nat(),
    blockSize: fc.constantFrom(1, 8, 16, 32, 64, 128),
    dtype: fc.constantFrom('auto', 'fp8', 'fp8_e4m3', 'bfloat16', 'half'),
    finished: fc.nat({ max: 2 ** 40 }),
    prompt: fc.nat({ max: 2 ** 40 }),
    extra: fc.dictionary(fc.stringMatching(/^[a-z][a-z0-9_]{0,15}$/), fc.string({ maxLength: 20 }), { maxKeys: 4 }),
  });

  it('every engine (V1 with engine labels, or V0 without) reads back as generated', { timeout: FUZZ_TIMEOUT_MS }, () => {
    fc.assert(
      fc.property(fc.boolean(), fc.array(engine, { minLength: 1, maxLength: 4 }), fc.boolean(), fc.boolean(), (v1, generated, oldUsage, noise) => {
        const engines = v1 ? generated : generated.slice(0, 1);
        const id = (i: number): [string, string][] => (v1 ? [['engine', String(i)]] : []);
        const family = (name: string, help: string, sample: (e: (typeof engines)[number], i: number) => string) =>
          [`# HELP ${name} ${help}`, `# TYPE ${name} gauge`, ...engines.map((e, i) => sample(e, i))].join('\n');
        const usageName = oldUsage ? 'vllm:gpu_cache_usage_perc' : 'vllm:kv_cache_usage_perc';
        const config = (e: (typeof engines)[number], i: number): [string, string][] => [
          ...Object.entries(e.extra).filter(([k]) => !['engine', 'model_name', 'block_size', 'num_gpu_blocks', 'cache_dtype'].includes(k)),
          ['block_size', String(e.blockSize)],
          ['cache_dtype', e.dtype],
          ...id(i),
          ['num_gpu_blocks', String(e.blocks)],
        ];
        const text = [
          ...(noise ? ['# HELP python_gc_objects_collected_total Objects collected', '# TYPE python_gc_objects_collected_total counter', 'python_gc_objects_collected_total{generation="0"} 18734.0'] : []),
          family('vllm:num_requests_running', 'Running.', (e, i) => `vllm:num_requests_running${labels([...id(i), ['model_name', e.model]])} ${e.running}`),
          family('vllm:num_requests_waiting', 'Waiting.', (e, i) => `vllm:num_requests_waiting${labels([...id(i), ['model_name', e.model]])} ${e.waiting}`),
          family(usageName, 'Usage.', (e, i) => `${usageName}${labels([...id(i), ['model_name', e.model]])} ${e.usage}`),
          family('vllm:cache_config_info', 'Config.', (e, i) => `vllm:cache_config_info${labels(config(e, i))} 1.0`),
          // Counters: finished requests split over two reasons (read back as their sum), prompt tokens.
          [
            '# HELP vllm:request_success_total Finished requests.',
            '# TYPE vllm:request_success_total counter',
            ...engines.flatMap((e, i) => [
              `vllm:request_success_total${labels([...id(i), ['finished_reason', 'stop'], ['model_name', e.model]])} ${Math.floor(e.finished / 2)}`,
              `vllm:request_success_total${labels([...id(i), ['finished_reason', 'length'], ['model_name', e.model]])} ${e.finished - Math.floor(e.finished / 2)}`,
            ]),
          ].join('\n'),
          [
            '# HELP vllm:prompt_tokens_total Prompt tokens.',
            '# TYPE vllm:prompt_tokens_total counter',
            ...engines.map((e, i) => `vllm:prompt_tokens_total${labels([...id(i), ['model_name', e.model]])} ${e.prompt}`),
          ].join('\n'),
          '',
        ].join('\n');
        const result = readVllmMetricsText('u', text);
        checkResult(result);
        expect(result.ok).toBe(true);
        if (!result.ok) return;
        expect(result.engines).toEqual(
          engines.map((e, i) => ({
            engine: v1 ? String(i) : null,
            modelName: e.model,
            kvCacheUsage: e.usage,
            requestsRunning: e.running,
            requestsWaiting: e.waiting,
            numGpuBlocks: e.blocks,
            blockSize: e.blockSize,
            cacheDtype: e.dtype,
            cacheConfig: Object.fromEntries(config(e, i)),
            counters: { promptTokens: e.prompt, generationTokens: null, requestsFinished: e.finished, preemptions: null, prefixCacheQueries: null, prefixCacheHits: null },
          })),
        );
      }),
      fuzzParams(300),
    );
  });
});

describe('hostile and mutated pages', () => {
  const value = fc.oneof(
    fc.constantFrom('NaN', '+Inf', '-Inf', '1e309', '-0', '0x10', '', '1.5', '-1', '2', '1e-400', '9'.repeat(400), 'None'),
    fc.double().map(String),
  );
  const labelName = fc.oneof(fc.constantFrom('engine', 'model_name', 'num_gpu_blocks', 'block_size', 'cache_dtype', '__proto__', 'constructor', 'toString', 'le', 'quantile'), fc.stringMatching(/^[a-zA-Z_]\w{0,8}$/));
  const labelValue = fc.oneof(fc.constantFrom('0', '16', '99999999999999999999', '9'.repeat(400), '-1', '1.5', '__proto__', 'constructor', 'auto', '\\', '"'), fc.string({ maxLength: 12 }));
  const name = fc.constantFrom('vllm:num_requests_running', 'vllm:num_requests_waiting', 'vllm:kv_cache_usage_perc', 'vllm:gpu_cache_usage_perc', 'vllm:cache_config_info', 'vllm:x_bucket', 'other');
  const type = fc.constantFrom('gauge', 'counter', 'histogram', 'summary', 'untyped', 'GAUGE', 'bogus');
  const sampleLine = fc
    .tuple(name, fc.array(fc.tuple(labelName, labelValue), { maxLength: 5 }), value, fc.option(fc.constantFrom('1700000000000', '-1', 'x')))
    .map(([n, ls, v, ts]) => `${n}${labels(ls)} ${v}${ts === null ? '' : ` ${ts}`}`);
  const line = fc.oneof(
    { weight: 6, arbitrary: sampleLine },
    { weight: 1, arbitrary: fc.tuple(name, type).map(([n, t]) => `# TYPE ${n} ${t}`) },
    { weight: 1, arbitrary: fc.tuple(name, fc.string({ maxLength: 30 })).map(([n, h]) => `# HELP ${n} ${h}`) },
    { weight: 1, arbitrary: fc.constantFrom('', '#', '# TYPE', '# HELP x', '{}', '} 1', 'x{a="1"', 'x{a=1} 2', '<html>') },
  );

  it('generated hostile pages: a reason or figures within range, within the bound', { timeout: FUZZ_TIMEOUT_MS }, () => {
    fc.assert(
      fc.property(fc.array(line, { maxLength: 30 }), fc.constantFrom('\n', '\r\n'), (lines, eol) => {
        const { value: result, cpuMs } = timed(() => readVllmMetricsText('u', lines.join(eol)));
        expect(cpuMs).toBeLessThan(CALL_BOUND_MS);
        checkResult(result);
        assertNoPollution();
      }),
      fuzzParams(500),
    );
  });

  it('mutated real pages and random bytes: the same', { timeout: FUZZ_TIMEOUT_MS }, () => {
    fc.assert(
      fc.property(mutatedOrRandom(pages, 6), (bytes) => {
        const { value: result, cpuMs } = timed(() => readVllmMetricsText('u', bytes.toString('utf8')));
        expect(cpuMs).toBeLessThan(CALL_BOUND_MS);
        checkResult(result);
      }),
      fuzzParams(400),
    );
  });

  it.each([
    ['num_gpu_blocks of 400 digits', `vllm:cache_config_info{engine="0",num_gpu_blocks="${'9'.repeat(400)}",block_size="16"} 1`],
    ['a block_size past 2^53', 'vllm:cache_config_info{engine="0",num_gpu_blocks="10",block_size="99999999999999999999"} 1'],
  ])('%s is no figure', (_name, text) => {
    checkResult(readVllmMetricsText('u', `${text}\n`));
  });
});

describe('bounds', () => {
  const LENGTH = LONG_RUN ? 4_000_000 : 1_000_000;

  // "read": figures or a reason other than size; "too large": a line of a family read past
  // MAX_LINE_CHARS, or more than MAX_KEPT_CHARS of them.
  it.each([
    ['one long sample name', 'read', () => `${'a'.repeat(LENGTH)} 1\n`],
    ['one label value of escapes', 'too large', () => `vllm:cache_config_info{engine="${'\\"'.repeat(LENGTH / 2)}"} 1\n`],
    ['ten thousand labels on a line', 'too large', () => `vllm:cache_config_info{${Array.from({ length: 10_000 }, (_, i) => `l${i}="${i}"`).join(',')}} 1\n`],
    ['a long HELP of backslashes', 'read', () => `# HELP vllm:x ${'\\'.repeat(LENGTH)}\nvllm:num_requests_running 1\n`],
    ['many families of one sample', 'read', () => Array.from({ length: 50_000 }, (_, i) => `# TYPE vllm:f${i} gauge\nvllm:f${i} ${i}`).join('\n')],
    ['many samples of one family', 'too large', () => `# TYPE vllm:num_requests_running gauge\n${Array.from({ length: 50_000 }, (_, i) => `vllm:num_requests_running{engine="${i}"} 1`).join('\n')}\n`],
    ['many samples of one family, within the limit', 'read', () => `${Array.from({ length: 20_000 }, (_, i) => `vllm:num_requests_running{engine="${i}"} 1`).join('\n')}\n`],
  ])('%s is %s within the bound', (_name, outcome, make) => {
    const text = make();
    const { value, cpuMs } = timed(() => readVllmMetricsText('u', text));
    checkResult(value);
    if (outcome === 'too large') expect(value).toMatchObject({ ok: false, error: { code: 'VLLM_METRICS_TOO_LARGE' } });
    else expect(value.ok || value.error.code !== 'VLLM_METRICS_TOO_LARGE').toBe(true);
    expect(cpuMs).toBeLessThan(2 * CALL_BOUND_MS);
  });

  it('an endless body is cut off at the size limit, in bounded memory', { timeout: FUZZ_TIMEOUT_MS }, async () => {
    const line = Buffer.from(`vllm:num_requests_running{engine="0",model_name="${'m'.repeat(200)}"} 1\n`);
    const chunk = Buffer.concat(Array.from({ length: 256 }, () => line));
    const server = createServer((_request, response) => {
      response.writeHead(200, { 'content-type': 'text/plain' });
      const pump = () => {
        while (!response.destroyed && response.write(chunk));
        if (!response.destroyed) response.once('drain', pump);
      };
      pump();
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const before = process.resourceUsage().maxRSS;
      const { value, cpuMs } = await timedAsync(() => fetchVllmMetrics(`http://127.0.0.1:${(server.address() as AddressInfo).port}`, 20_000));
      expect(value).toMatchObject({ ok: false, error: { code: 'VLLM_METRICS_TOO_LARGE' } });
      expect(cpuMs).toBeLessThan(15_000);
      // Only the lines of the families read are held (at most MAX_KEPT_CHARS), never the body.
      expect(process.resourceUsage().maxRSS - before).toBeLessThan(64 * 1024);
    } finally {
      server.closeAllConnections();
      server.close();
    }
  });
});
