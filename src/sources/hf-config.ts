/**
 * KV-cache bytes per block from a Hugging Face config.json, the way vLLM sizes its pages
 * (shared/reference/frameworks.md section 6): per layer and block, K and V for each KV head,
 * times the layers a GPU holds. MLA models (DeepSeek) keep one compressed latent instead.
 * readHfConfig() reads the file (bounded) and checks it gives a geometry at all.
 */
import * as z from 'zod/mini';

import { sourceError } from '../sample/field-errors.js';
import type { FieldError } from '../sample/schema.js';
import { validate } from '../validation.js';
import { FileRefusedError, readTextFile } from './read-text-file.js';

/** Far more than any model's config.json (tens of KiB): a larger file is not read. */
export const MAX_HF_CONFIG_BYTES = 16 * 1024 * 1024;

const positive = z.optional(z.nullable(z.int().check(z.positive())));

const textConfigSchema = z.looseObject({
  num_hidden_layers: positive,
  num_attention_heads: positive,
  hidden_size: positive,
  head_dim: positive,
  hidden_size_per_head: positive,
  // The names models use for their KV head count, in vLLM's order of preference.
  n_head_kv: positive,
  num_kv_heads: positive,
  num_key_value_heads: positive,
  multi_query_group_num: positive,
  kv_lora_rank: positive,
  qk_rope_head_dim: positive,
  torch_dtype: z.optional(z.nullable(z.string())),
  dtype: z.optional(z.nullable(z.string())),
});

/** Multimodal configs keep the language model's figures under text_config. */
const configSchema = z.looseObject({ ...textConfigSchema.shape, text_config: z.optional(textConfigSchema) });

export interface KvGeometry {
  /** Layers this GPU holds (all of them with pipeline parallelism 1). */
  numLayers: number;
  /** KV heads per GPU: total / tensor parallel, at least 1 (replicated when fewer than ranks). */
  numKvHeads: number;
  headSize: number;
  dtypeBytes: number;
  blockSize: number;
  /** 2 for K and V; 1 for MLA's single latent. */
  kvFactor: number;
  bytesPerBlock: number;
}

export type KvGeometryResult = { ok: true; geometry: KvGeometry } | { ok: false; code: string; message: string };

export interface KvOptions {
  blockSize: number;
  tensorParallel: number;
  pipelineParallel?: number;
  /** vLLM's cache_dtype: "auto" follows the model dtype; fp8 variants take one byte. */
  cacheDtype: string;
}

// A Map, not an object: the names come from outside (a /metrics label, config.json), and
// "constructor" or "__proto__" must not find something on Object.prototype.
const DTYPE_BYTES: ReadonlyMap<string, number> = new Map([
  ['bfloat16', 2],
  ['float16', 2],
  ['half', 2],
  ['float32', 4],
  ['float', 4],
]);

function dtypeBytes(cacheDtype: string, modelDtype: string | null | undefined): number | null {
  if (cacheDtype.startsWith('fp8')) return 1;
  if (cacheDtype !== 'auto') return DTYPE_BYTES.get(cacheDtype) ?? null;
  return modelDtype === null || modelDtype === undefined ? null : (DTYPE_BYTES.get(modelDtype) ?? null);
}

export function kvGeometry(configJson: unknown, options: KvOptions): KvGeometryResult {
  const parsed = validate(configSchema, configJson);
  if (!parsed.ok) return { ok: false, code: 'HF_CONFIG_INVALID', message: `not a model config: ${parsed.message}` };
  const root = parsed.data;
  const c = { ...root, ...(root.text_config ?? {}) };
  const missing: string[] = [];
  if (c.num_hidden_layers == null) missing.push('num_hidden_layers');
  const mla = c.kv_lora_rank != null;
  let headSize: number | null | undefined;
  let totalKvHeads: number | null | undefined;
  if (mla) {
    if (c.qk_rope_head_dim == null) missing.push('qk_rope_head_dim');
    headSize = c.kv_lora_rank! + (c.qk_rope_head_dim ?? 0);
    totalKvHeads = 1;
  } else {
    totalKvHeads = c.n_head_kv ?? c.num_kv_heads ?? c.num_key_value_heads ?? c.multi_query_group_num ?? c.num_attention_heads;
    if (totalKvHeads == null) missing.push('num_key_value_heads or num_attention_heads');
    headSize = c.head_dim ?? c.hidden_size_per_head ?? (c.hidden_size != null && c.num_attention_heads != null ? c.hidden_size / c.num_attention_heads : null);
    if (headSize == null) missing.push('head_dim or hidden_size and num_attention_heads');
  }
  const bytes = dtypeBytes(options.cacheDtype, c.torch_dtype ?? c.dtype);
  if (bytes === null) missing.push(options.cacheDtype === 'auto' ? 'torch_dtype (for cache_dtype auto)' : `a known cache_dtype (got ${options.cacheDtype})`);
  if (missing.length > 0) {
    return { ok: false, code: 'HF_CONFIG_INCOMPLETE', message: `the config lacks ${missing.join(', ')}` };
  }
  if (!Number.isInteger(headSize)) {
    return { ok: false, code: 'HF_CONFIG_INCOMPLETE', message: `hidden_size / num_attention_heads is not a whole head size (${headSize})` };
  }
  const numLayers = Math.ceil(c.num_hidden_layers! / (options.pipelineParallel ?? 1));
  const numKvHeads = mla ? 1 : Math.max(1, Math.floor(totalKvHeads! / options.tensorParallel));
  const kvFactor = mla ? 1 : 2;
  const perLayer = kvFactor * options.blockSize * numKvHeads * headSize! * bytes!;
  if (!Number.isSafeInteger(perLayer * numLayers)) {
    return { ok: false, code: 'HF_CONFIG_INVALID', message: `not a model config: a KV page of ${perLayer * numLayers} bytes (${numLayers} layers of ${perLayer})` };
  }
  return {
    ok: true,
    geometry: { numLayers, numKvHeads, headSize: headSize!, dtypeBytes: bytes!, blockSize: options.blockSize, kvFactor, bytesPerBlock: perLayer * numLayers },
  };
}

/** The geometry for a tensor-parallel size, block size and cache dtype, as each engine runs it. */
export type KvGeometryOf = (tensorParallel: number, blockSize: number, cacheDtype: string) => KvGeometryResult;

export type HfConfigReading = { ok: true; geometry: KvGeometryOf } | { ok: false; error: FieldError };

export async function readHfConfig(file: string): Promise<HfConfigReading> {
  let text: string;
  try {
    text = await readTextFile(file, MAX_HF_CONFIG_BYTES, { regularOnly: true });
  } catch (error) {
    if (error instanceof FileRefusedError) return { ok: false, error: sourceError('HF_CONFIG_INVALID', `${error.message}: not a model config.json`) };
    return { ok: false, error: sourceError('HF_CONFIG_UNREADABLE', `${file}: ${(error as Error).message}`) };
  }
  let config: unknown;
  try {
    config = JSON.parse(text);
  } catch (error) {
    return { ok: false, error: sourceError('HF_CONFIG_INVALID', `${file} is not JSON: ${(error as Error).message}`) };
  }
  const geometry: KvGeometryOf = (tensorParallel, blockSize, cacheDtype) => kvGeometry(config, { tensorParallel, blockSize, cacheDtype });
  const check = geometry(1, 16, 'auto');
  return check.ok ? { ok: true, geometry } : { ok: false, error: sourceError(check.code, `${file}: ${check.message}`) };
}
