/**
 * Fuzzing the Hugging Face config.json reader (kvGeometry): real model configs mutated as JSON
 * (hostile numbers, wrong types, deleted and repeated keys, __proto__, deep nesting) and as
 * bytes, read with any cache_dtype a /metrics page may name ("__proto__" included). Each ends in
 * an HF_CONFIG_* reason or in a geometry of whole positive numbers, within a bound; a generated
 * valid config gives vLLM's page size; a config.json of 1 GiB is refused without being read.
 */
import { mkdtempSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';

import { readFramework } from '../../src/layers/read-framework.js';
import { kvGeometry, type KvGeometryResult } from '../../src/sources/hf-config.js';
import { assertNoPollution, CALL_BOUND_MS, FUZZ_TIMEOUT_MS, fuzzParams, mutatedJsonText, mutatedOrRandom, timed, timedAsync } from '../helpers/fuzz.js';

const work = mkdtempSync(path.join(tmpdir(), 'gpu-layers-hf-config-fuzz-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

const llama8b = { architectures: ['LlamaForCausalLM'], num_hidden_layers: 32, num_attention_heads: 32, num_key_value_heads: 8, hidden_size: 4096, head_dim: 128, torch_dtype: 'bfloat16', rope_scaling: { factor: 8.0, rope_type: 'llama3' } };
const deepseek = { num_hidden_layers: 61, num_attention_heads: 128, num_key_value_heads: 128, kv_lora_rank: 512, qk_rope_head_dim: 64, torch_dtype: 'bfloat16' };
const gpt2ish = { n_head_kv: 4, num_attention_heads: 16, hidden_size: 2048, num_hidden_layers: 24, dtype: 'float16' };
const multimodal = { architectures: ['Gemma3ForConditionalGeneration'], vision_config: { hidden_size: 1152 }, text_config: { ...llama8b, torch_dtype: undefined }, torch_dtype: 'bfloat16' };
const configs = [llama8b, deepseek, gpt2ish, multimodal];

const DTYPES = ['auto', 'fp8', 'fp8_e5m2', 'bfloat16', 'float16', 'half', 'float32', 'float', 'int8', '', '__proto__', 'constructor', 'toString', 'hasOwnProperty', 'valueOf'];
const options = fc.record({
  blockSize: fc.constantFrom(1, 8, 16, 32, 128, 2 ** 20),
  tensorParallel: fc.integer({ min: 1, max: 64 }),
  pipelineParallel: fc.option(fc.integer({ min: 1, max: 8 }), { nil: undefined }),
  cacheDtype: fc.oneof(fc.constantFrom(...DTYPES), fc.string({ maxLength: 10 })),
});

/** A reason, or a geometry of whole positive numbers whose page size is their product. */
function checkGeometry(result: KvGeometryResult): void {
  if (!result.ok) {
    expect(['HF_CONFIG_INVALID', 'HF_CONFIG_INCOMPLETE']).toContain(result.code);
    expect(typeof result.message).toBe('string');
    return;
  }
  const g = result.geometry;
  for (const [key, value] of Object.entries(g)) expect(Number.isSafeInteger(value) && value > 0, `${key}: ${value}`).toBe(true);
  expect(g.bytesPerBlock).toBe(g.kvFactor * g.blockSize * g.numKvHeads * g.headSize * g.dtypeBytes * g.numLayers);
}

describe('kvGeometry', () => {
  it('mutated configs with any cache_dtype: a reason or a whole geometry, within the bound', { timeout: FUZZ_TIMEOUT_MS }, () => {
    let accepted = 0;
    fc.assert(
      fc.property(mutatedJsonText(configs), options, (text, kvOptions) => {
        let config: unknown;
        try {
          config = JSON.parse(text);
        } catch {
          return; // read-framework says HF_CONFIG_INVALID for what is not JSON
        }
        const { value, cpuMs } = timed(() => kvGeometry(config, kvOptions));
        expect(cpuMs).toBeLessThan(CALL_BOUND_MS);
        checkGeometry(value);
        assertNoPollution();
        if (value.ok) accepted++;
      }),
      fuzzParams(600),
    );
    expect(accepted).toBeGreaterThan(0);
  });

  it('random values and byte-mutated files: the same', { timeout: FUZZ_TIMEOUT_MS }, () => {
    const seeds = configs.map((c) => Buffer.from(JSON.stringify(c)));
    fc.assert(
      fc.property(fc.oneof(fc.jsonValue(), mutatedOrRandom(seeds).map((b) => b.toString('utf8'))), options, (input, kvOptions) => {
        let config: unknown = input;
        if (typeof input === 'string') {
          try {
            config = JSON.parse(input);
          } catch {
            return;
          }
        }
        checkGeometry(timed(() => kvGeometry(config, kvOptions)).value);
      }),
      fuzzParams(300),
    );
  });

  it.each([
    ['a cache_dtype of "__proto__"', llama8b, '__proto__'],
    ['a cache_dtype of "constructor"', llama8b, 'constructor'],
    ['a torch_dtype of "toString" with cache_dtype auto', { ...llama8b, torch_dtype: 'toString' }, 'auto'],
    ['figures whose product passes 2^53', { ...llama8b, num_hidden_layers: 2 ** 40, head_dim: 2 ** 40 }, 'auto'],
  ])('%s gives a reason, not NaN or an inexact size', (_name, config, cacheDtype) => {
    const result = kvGeometry(config, { blockSize: 16, tensorParallel: 1, cacheDtype });
    checkGeometry(result);
    expect(result.ok).toBe(false);
  });

  it('a generated valid config gives vLLM page size, under whichever key names the KV heads', { timeout: FUZZ_TIMEOUT_MS }, () => {
    const KV_KEYS = ['n_head_kv', 'num_kv_heads', 'num_key_value_heads', 'multi_query_group_num'];
    const BYTES: Record<string, number> = { bfloat16: 2, float16: 2, float32: 4 };
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 200 }),
        fc.integer({ min: 1, max: 128 }),
        fc.integer({ min: 1, max: 64 }),
        fc.constantFrom(64, 80, 96, 128, 256),
        fc.constantFrom('bfloat16', 'float16', 'float32'),
        fc.nat(KV_KEYS.length - 1),
        fc.boolean(),
        fc.record({ blockSize: fc.constantFrom(16, 32), tensorParallel: fc.integer({ min: 1, max: 16 }) }),
        (layers, heads, kvHeads, headDim, dtype, key, nested, { blockSize, tensorParallel }) => {
          const text = { num_hidden_layers: layers, num_attention_heads: heads, [KV_KEYS[key]!]: kvHeads, hidden_size: heads * headDim, torch_dtype: dtype };
          const config = nested ? { architectures: ['X'], text_config: text } : text;
          const result = kvGeometry(config, { blockSize, tensorParallel, cacheDtype: 'auto' });
          expect(result).toEqual({
            ok: true,
            geometry: {
              numLayers: layers,
              numKvHeads: Math.max(1, Math.floor(kvHeads / tensorParallel)),
              headSize: headDim,
              dtypeBytes: BYTES[dtype],
              blockSize,
              kvFactor: 2,
              bytesPerBlock: 2 * blockSize * Math.max(1, Math.floor(kvHeads / tensorParallel)) * headDim * BYTES[dtype]! * layers,
            },
          });
        },
      ),
      fuzzParams(200),
    );
  });
});

describe('config.json files', () => {
  it('a 1 GiB config.json is refused without being read into memory', { timeout: FUZZ_TIMEOUT_MS }, async () => {
    const config = path.join(work, 'config.json');
    writeFileSync(config, JSON.stringify(llama8b));
    truncateSync(config, 2 ** 30); // sparse: no disk used
    const log = path.join(work, 'vllm.log');
    writeFileSync(log, 'Available KV cache memory: 1.00 GiB\n');
    const before = process.resourceUsage().maxRSS;
    const { value: reading, cpuMs } = await timedAsync(() => readFramework([], { vllmLog: log, hfConfig: config }, work));
    expect(reading.hf).toMatchObject({ location: config, ok: false, error: { code: 'HF_CONFIG_INVALID', message: expect.stringMatching(/larger than/) } });
    expect(cpuMs).toBeLessThan(CALL_BOUND_MS);
    // maxRSS is the peak in KiB: reading the file would have added a GiB or two.
    expect(process.resourceUsage().maxRSS - before).toBeLessThan(64 * 1024);
  });

  it('mutated config.json files: a status that says ok, or an HF_CONFIG_* reason', { timeout: FUZZ_TIMEOUT_MS }, async () => {
    const config = path.join(work, 'mutated.json');
    const log = path.join(work, 'mutated.log');
    writeFileSync(log, 'Available KV cache memory: 1.00 GiB\n');
    const seeds = configs.map((c) => Buffer.from(JSON.stringify(c)));
    await fc.assert(
      fc.asyncProperty(mutatedOrRandom(seeds), async (bytes) => {
        writeFileSync(config, bytes);
        const { hf } = await readFramework([], { vllmLog: log, hfConfig: config }, work);
        expect(hf).not.toBeNull();
        if (!hf!.ok) expect(hf!.error!.code).toMatch(/^HF_CONFIG_(INVALID|INCOMPLETE)$/);
      }),
      fuzzParams(60),
    );
  });
});
