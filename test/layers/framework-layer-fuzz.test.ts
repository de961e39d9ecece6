/**
 * Fuzzing the framework layer end to end: /metrics text, a startup log and a config.json, each
 * generated with hostile figures (counts past 2^53, 400 digits, NaN, negative sizes, cache dtypes
 * such as "__proto__") or mutated from the real fixtures, go through their parsers and
 * attributeFramework. Every layer that comes out must be one the sample schema accepts (the
 * recording reader drops a sample that is not), every reason a field error; within a bound.
 */
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';

import { frameworkLayerSchema } from '../../src/layers/schema.js';
import { attributeFramework, type FrameworkInputs, type GpuProcessInfo } from '../../src/layers/vllm-attribution.js';
import { fieldErrorSchema } from '../../src/sample/schema.js';
import { kvGeometry } from '../../src/sources/hf-config.js';
import { parseVllmLog } from '../../src/sources/vllm-log.js';
import { readVllmMetricsText } from '../../src/sources/vllm-metrics.js';
import { repoRoot } from '../helpers/paths.js';
import { CALL_BOUND_MS, FUZZ_TIMEOUT_MS, fuzzParams, mutatedJsonText, mutatedOrRandom, timed } from '../helpers/fuzz.js';

const fixtureDir = path.join(repoRoot, 'test/fixtures/vllm');
const fixtures = (prefix: string) =>
  readdirSync(fixtureDir)
    .filter((f) => f.startsWith(prefix))
    .map((f) => readFileSync(path.join(fixtureDir, f)));

const COUNT = ['0', '1', '16', '24682', '4294967296', '9007199254740991', '99999999999999999999', '9'.repeat(400), 'None', '-1', '1.5'];
const VALUE = ['0', '0.25', '1', '1.5', '-1', 'NaN', '+Inf', '-Inf', '1e309', '9'.repeat(400), '3'];
const GIB = ['0.00', '1.05', '30.15', '-0.50', '-5', '999999999', '9'.repeat(400)];
const DTYPE = ['auto', 'fp8', 'bfloat16', 'int8', '__proto__', 'constructor', 'toString', ''];

/** A V1 page with hostile values, one or two engines. */
const metricsText = fc
  .record({
    engines: fc.integer({ min: 1, max: 2 }),
    usage: fc.constantFrom(...VALUE),
    running: fc.constantFrom(...VALUE),
    blocks: fc.constantFrom(...COUNT),
    blockSize: fc.constantFrom(...COUNT),
    dtype: fc.constantFrom(...DTYPE),
  })
  .map(({ engines, usage, running, blocks, blockSize, dtype }) =>
    Array.from(
      { length: engines },
      (_, i) =>
        `vllm:kv_cache_usage_perc{engine="${i}"} ${usage}\nvllm:num_requests_running{engine="${i}"} ${running}\n` +
        `vllm:cache_config_info{block_size="${blockSize}",cache_dtype="${dtype}",engine="${i}",num_gpu_blocks="${blocks}"} 1`,
    ).join('\n'),
  );

/** A log of known lines with hostile figures, tagged with the pids below or not. */
const logText = fc
  .array(
    fc.tuple(
      fc.constantFrom('', '(VllmWorker TP0 pid=301) ', '(VllmWorker TP1 pid=302) ', `(VllmWorker TP9 pid=${'9'.repeat(30)}) `),
      fc.constantFrom(
        (v: string) => `Model loading took ${v} GiB and 2.1 seconds`,
        (v: string) => `Available KV cache memory: ${v} GiB`,
        (v: string) => `Graph capturing finished in 5 secs, took ${v} GiB`,
        (v: string) => `non_torch_memory takes ${v}GiB`,
        (v: string) => `# GPU blocks: ${v.replace(/\..*|-/g, '')}, # CPU blocks: 1`,
      ),
      fc.constantFrom(...GIB),
    ),
    { maxLength: 8 },
  )
  .map((lines) => lines.map(([tag, line, value]) => `${tag}INFO ${line(value)}`).join('\n'));

const llama = { num_hidden_layers: 32, num_attention_heads: 32, num_key_value_heads: 8, head_dim: 128, torch_dtype: 'bfloat16' };
const config = fc.oneof(
  fc.record({
    num_hidden_layers: fc.constantFrom(1, 32, 2 ** 20, 2 ** 40),
    num_attention_heads: fc.constantFrom(1, 32, 2 ** 30),
    num_key_value_heads: fc.constantFrom(1, 8, 2 ** 30),
    head_dim: fc.constantFrom(64, 128, 2 ** 30),
    torch_dtype: fc.constantFrom('bfloat16', 'float32', 'toString', '__proto__'),
  }),
  mutatedJsonText([llama]).map((text) => {
    try {
      return JSON.parse(text) as unknown;
    } catch {
      return null;
    }
  }),
);

// API server 100 -> engine core 200 -> workers 301, 302; 900 is someone else's.
const processes: GpuProcessInfo[] = [
  { pid: 301, ancestry: [301, 200, 100], commands: ['python3 -c spawn_main', 'VLLM::EngineCore', 'vllm serve m --port 8000'] },
  { pid: 302, ancestry: [302, 200, 100], commands: ['python3 -c spawn_main', 'VLLM::EngineCore', 'vllm serve m --port 8000'] },
  { pid: 900, ancestry: [900, 1], commands: ['python3 train.py', null] },
];

const inputs = fc.record({
  pages: fc.array(fc.oneof(metricsText, mutatedOrRandom(fixtures('metrics-')).map((b) => b.toString('utf8'))), { maxLength: 2 }),
  listeners: fc.constantFrom<number[] | null>(null, [], [100], [900]),
  log: fc.option(fc.oneof(logText, mutatedOrRandom(fixtures('log-')).map((b) => b.toString('utf8')))),
  config: fc.option(config),
});

describe('attributeFramework over fuzzed sources', () => {
  it('every layer is one the sample schema accepts, every reason a field error', { timeout: FUZZ_TIMEOUT_MS }, () => {
    let layers = 0;
    fc.assert(
      fc.property(inputs, ({ pages, listeners, log, config: configJson }) => {
        const framework: FrameworkInputs = {
          endpoints: pages.map((page, i) => ({ metrics: readVllmMetricsText(`http://127.0.0.1:${8000 + i}/metrics`, page), listeners })),
          log: log === null ? null : { path: 'vllm.log', parsed: parseVllmLog(log) },
          geometry: configJson === null ? null : (tensorParallel, blockSize, cacheDtype) => kvGeometry(configJson, { tensorParallel, blockSize, cacheDtype }),
        };
        const { value: results, cpuMs } = timed(() => attributeFramework(processes, framework));
        expect(cpuMs).toBeLessThan(CALL_BOUND_MS);
        for (const [pid, result] of results) {
          if (result.layer === null) {
            expect(fieldErrorSchema.safeParse(result.reason).success).toBe(true);
            continue;
          }
          layers++;
          const parsed = frameworkLayerSchema.safeParse(result.layer);
          expect(parsed.success, `pid ${pid}: ${JSON.stringify(result.layer)}: ${parsed.error?.message}`).toBe(true);
          for (const error of Object.values(result.errors)) expect(fieldErrorSchema.safeParse(error).success).toBe(true);
        }
      }),
      fuzzParams(500),
    );
    expect(layers).toBeGreaterThan(0);
  });

  it('blocks x bytes per block past 2^53 is no size', () => {
    const page = 'vllm:cache_config_info{block_size="16",cache_dtype="auto",engine="0",num_gpu_blocks="9007199254740991"} 1\n';
    const results = attributeFramework(processes, {
      endpoints: [{ metrics: readVllmMetricsText('u', page), listeners: [100] }],
      log: null,
      geometry: (tensorParallel, blockSize, cacheDtype) => kvGeometry(llama, { tensorParallel, blockSize, cacheDtype }),
    });
    const layer = results.get(301)!.layer;
    expect(frameworkLayerSchema.safeParse(layer).success).toBe(true);
    expect(layer).toMatchObject({ kvCacheBytes: null, numGpuBlocks: 9007199254740991 });
  });
});
