/** kvGeometry: vLLM's KV page arithmetic from Hugging Face configs (frameworks.md section 6). */
import { describe, expect, it } from 'vitest';

import { kvGeometry } from '../../src/sources/hf-config.js';

const llama8b = { num_hidden_layers: 32, num_attention_heads: 32, num_key_value_heads: 8, hidden_size: 4096, head_dim: 128, torch_dtype: 'bfloat16' };
const auto = { blockSize: 16, tensorParallel: 1, cacheDtype: 'auto' };

describe('kvGeometry', () => {
  it('the worked example: Llama-3.1-8B, bf16, TP 1, block 16 = 2 MiB a block', () => {
    const result = kvGeometry(llama8b, auto);
    expect(result).toEqual({
      ok: true,
      geometry: { numLayers: 32, numKvHeads: 8, headSize: 128, dtypeBytes: 2, blockSize: 16, kvFactor: 2, bytesPerBlock: 2 * 16 * 8 * 128 * 2 * 32 },
    });
    expect(result.ok && result.geometry.bytesPerBlock).toBe(2 * 1024 * 1024);
  });

  it('splits KV heads over tensor-parallel ranks, replicating when there are fewer heads than ranks', () => {
    const tp4 = kvGeometry(llama8b, { ...auto, tensorParallel: 4 });
    expect(tp4.ok && tp4.geometry.numKvHeads).toBe(2);
    const tp16 = kvGeometry(llama8b, { ...auto, tensorParallel: 16 });
    expect(tp16.ok && tp16.geometry.numKvHeads).toBe(1);
  });

  it('fp8 caches take one byte; head size from hidden_size / heads when head_dim is absent', () => {
    const { head_dim: _, ...noHeadDim } = llama8b;
    const result = kvGeometry(noHeadDim, { ...auto, cacheDtype: 'fp8_e4m3' });
    expect(result.ok && [result.geometry.headSize, result.geometry.dtypeBytes]).toEqual([128, 1]);
  });

  it('MLA (DeepSeek): one latent of kv_lora_rank + qk_rope_head_dim, no K/V factor', () => {
    const deepseek = { num_hidden_layers: 61, num_attention_heads: 128, num_key_value_heads: 128, kv_lora_rank: 512, qk_rope_head_dim: 64, torch_dtype: 'bfloat16' };
    const result = kvGeometry(deepseek, { ...auto, tensorParallel: 8 });
    expect(result).toMatchObject({ ok: true, geometry: { numKvHeads: 1, headSize: 576, kvFactor: 1, bytesPerBlock: 16 * 576 * 2 * 61 } });
  });

  it('reads a multimodal config from text_config', () => {
    const result = kvGeometry({ architectures: ['X'], text_config: llama8b }, auto);
    expect(result.ok && result.geometry.bytesPerBlock).toBe(2 * 1024 * 1024);
  });

  it.each([
    [{ num_attention_heads: 32, torch_dtype: 'bfloat16' }, 'HF_CONFIG_INCOMPLETE', /num_hidden_layers/],
    [{ ...llama8b, torch_dtype: undefined }, 'HF_CONFIG_INCOMPLETE', /torch_dtype/],
    [{ ...llama8b, num_hidden_layers: 'many' }, 'HF_CONFIG_INVALID', /num_hidden_layers/],
    [[1, 2, 3], 'HF_CONFIG_INVALID', /not a model config/],
    [{ num_hidden_layers: 2, num_attention_heads: 3, hidden_size: 10, torch_dtype: 'float16' }, 'HF_CONFIG_INCOMPLETE', /whole head size/],
  ])('refuses %j with %s', (config, code, message) => {
    expect(kvGeometry(config, auto)).toMatchObject({ ok: false, code, message: expect.stringMatching(message) });
  });
});
