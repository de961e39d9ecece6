/** doctor's verdicts over gathered facts: each missing piece is named with its fix. */
import { describe, expect, it } from 'vitest';

import { doctorChecks, type DoctorFacts } from '../../src/doctor/doctor-checks.js';
import { GpuLayersError } from '../../src/errors.js';
import { joinLayers, type LayerInputs } from '../../src/layers/join.js';
import { attributeFramework } from '../../src/layers/vllm-attribution.js';
import { interpretOpen } from '../../src/probe/open-result.js';
import { buildSample } from '../../src/sample/build-sample.js';
import { kvGeometry } from '../../src/sources/hf-config.js';
import { readVllmMetricsText } from '../../src/sources/vllm-metrics.js';
import { context, rawDevice, rawOpen, rawSample } from '../helpers/raw-readings.js';

const NOT_REQUESTED = { code: 'NOT_REQUESTED', nvmlReturn: null, message: 'no' };

function inputs(overrides: Partial<LayerInputs> = {}): LayerInputs {
  return {
    host: null,
    companion: null,
    framework: new Map(),
    calibration: { entries: [], moduleLoading: 'LAZY', error: { code: 'NOT_CALIBRATED', nvmlReturn: null, message: 'no cache: run `gpu-layers calibrate`' } },
    sources: {
      companion: { location: null, ok: false, error: NOT_REQUESTED },
      vllmMetrics: [{ location: 'http://h:8000/metrics', ok: false, error: { code: 'VLLM_TIMEOUT', nvmlReturn: null, message: 'no answer within 2000 ms' } }],
      vllmLog: null,
      hfConfig: null,
      calibration: { location: '/c.json', ok: false, error: { code: 'NOT_CALIBRATED', nvmlReturn: null, message: 'no cache: run `gpu-layers calibrate`' } },
    },
    ...overrides,
  };
}

function facts(overrides: Partial<DoctorFacts> = {}): DoctorFacts {
  const sample = joinLayers(buildSample(rawSample([rawDevice(0)]), context()), inputs());
  return {
    addon: { ok: true, path: '/x/gpu_layers.node' },
    probe: { ok: true, info: interpretOpen(rawOpen(), {}).info, sample },
    deviceFiles: [{ path: '/dev/nvidiactl', access: 'ok' }],
    visiblePids: new Set([10]),
    cudaVisibleDevices: undefined,
    kvCache: null,
    ...overrides,
  };
}

const MiB = 2 ** 20;
const METRICS_URL = 'http://127.0.0.1:8000/metrics';
const LLAMA_3_1_8B = { num_hidden_layers: 32, num_attention_heads: 32, num_key_value_heads: 8, head_dim: 128, torch_dtype: 'bfloat16' };

/**
 * A vLLM server serving Llama-3.1-8B at METRICS_URL, its /metrics read by the real parser and its
 * GPU processes (pids 10, 11, ... one a GPU) attributed by the real rule: they listen on its port.
 */
function served(cacheConfig: string, gpus = 1, cacheDtype: string | null = 'auto'): DoctorFacts {
  const metrics = readVllmMetricsText(METRICS_URL, `vllm:kv_cache_usage_perc{engine="0"} 0.5\n${cacheConfig === '' ? '' : `vllm:cache_config_info{engine="0",${cacheConfig}} 1.0\n`}`);
  const pids = Array.from({ length: gpus }, (_, i) => 10 + i);
  const framework = attributeFramework(
    pids.map((pid) => ({ pid, ancestry: [pid, 1], commands: ['vllm serve meta-llama/Llama-3.1-8B', null] })),
    { endpoints: [{ metrics, listeners: pids }], log: null, geometry: null },
  );
  const sample = joinLayers(buildSample(rawSample(pids.map((_, i) => rawDevice(i))), context()), inputs({ framework }));
  return facts({
    probe: { ok: true, info: interpretOpen(rawOpen(), {}).info, sample },
    visiblePids: new Set(pids),
    kvCache: { geometry: (tp, blockSize, dtype) => kvGeometry(LLAMA_3_1_8B, { tensorParallel: tp, blockSize, cacheDtype: dtype }), metricsUrl: METRICS_URL, cacheDtype },
  });
}

const byId = (checks: ReturnType<typeof doctorChecks>, id: string) => checks.filter((c) => c.id === id);

describe('doctorChecks', () => {
  it('names each missing layer source with its fix', () => {
    const checks = doctorChecks(facts());
    expect(byId(checks, 'nvml')[0]).toMatchObject({ ok: true, detail: expect.stringContaining('driver 550.54.15') });
    expect(byId(checks, 'pid-namespace')[0]).toMatchObject({ ok: true });
    expect(byId(checks, 'calibration')[0]).toMatchObject({ ok: false, fix: expect.stringContaining('gpu-layers calibrate') });
    expect(byId(checks, 'companion')[0]).toMatchObject({ ok: false, fix: expect.stringContaining('gpu-layers companion') });
    expect(byId(checks, 'vllm')[0]).toMatchObject({ ok: false, detail: 'no answer within 2000 ms', fix: expect.stringContaining('--vllm-timeout') });
  });

  it('a GPU process not in this /proc: the PID namespace, and how to share the host one', () => {
    expect(byId(doctorChecks(facts({ visiblePids: new Set() })), 'pid-namespace')[0]).toMatchObject({
      ok: false,
      detail: expect.stringContaining('1 of 1 GPU process(es) not in this /proc (pids 10)'),
      fix: expect.stringContaining('--pid=host'),
    });
  });

  it('NVML that cannot be used: its error and hints, and nothing that depends on it', () => {
    const error = new GpuLayersError('NVML_DRIVER_NOT_LOADED', 'NVML could not be initialised', { hints: ['load the kernel module'] });
    const checks = doctorChecks(facts({ probe: { ok: false, error } }));
    expect(byId(checks, 'nvml')[0]).toMatchObject({ ok: false, detail: 'NVML could not be initialised [NVML_DRIVER_NOT_LOADED]', fix: 'load the kernel module' });
    expect(byId(checks, 'companion')).toEqual([]);
  });

  it('device files this user may not open', () => {
    expect(byId(doctorChecks(facts({ deviceFiles: [{ path: '/dev/nvidiactl', access: 'ok' }, { path: '/dev/nvidia0', access: 'denied' }] })), 'permissions')[0]).toMatchObject({
      ok: false,
      detail: 'not accessible to this user: /dev/nvidia0',
    });
  });

  it('an addon that does not load stops everything after it', () => {
    const checks = doctorChecks(facts({ addon: { ok: false, error: new GpuLayersError('NATIVE_ADDON_UNAVAILABLE', 'cannot load', { hints: ['npm rebuild gpu-layers'] }) }, probe: null }));
    expect(checks.map((c) => c.id)).toEqual(['addon', 'permissions']);
    expect(checks[0]).toMatchObject({ ok: false, fix: 'npm rebuild gpu-layers' });
  });

  describe('KV block alignment (Llama-3.1-8B: 64 KiB a layer per 16-token block at bf16, TP 1)', () => {
    it('a pool whose per-layer tensors are whole 2 MiB segments: aligned', () => {
      // 27,008 x 64 KiB = 1688 MiB a layer.
      expect(byId(doctorChecks(served('block_size="16",cache_dtype="auto",num_gpu_blocks="27008"')), 'kv-alignment')).toEqual([
        { id: 'kv-alignment', ok: true, title: 'KV block alignment', detail: "aligned: 32 per-layer tensors of 27008 blocks of 64.0 KiB fill the allocator's segments exactly", fix: null },
      ]);
    });

    it('a small rounding loss is aligned within tolerance, with the figures and the threshold', () => {
      // 27,000 x 64 KiB = 1687.5 MiB, rounded up to 1688 MiB: 0.5 MiB x 32 layers = 16 MiB, 0.03% of the pool.
      expect(byId(doctorChecks(served('block_size="16",cache_dtype="auto",num_gpu_blocks="27000"')), 'kv-alignment')[0]).toMatchObject({
        ok: true,
        detail: 'aligned within tolerance: 32 per-layer tensors of 27000 blocks of 64.0 KiB lose 16.0 MiB to rounding (0.03% of the pool), under 1% and 256.0 MiB',
      });
    });

    it('a loss worth fixing: the advice, and the override that fills the same memory', () => {
      // 1,000 x 64 KiB = 62.5 MiB, rounded up to 64 MiB: 1.5 MiB x 32 = 48 MiB, 2.4% of the pool; 64 MiB holds 1,024 blocks.
      const [check] = byId(doctorChecks(served('block_size="16",cache_dtype="auto",num_gpu_blocks="1000"')), 'kv-alignment');
      expect(check).toMatchObject({ ok: false, fix: 'restart vLLM with --num-gpu-blocks-override 1024: the same memory, 24 more blocks' });
      expect(check!.detail).toMatch(/^The KV pool loses 48\.0 MiB \(2\.4% of 2\.0 GiB\)/);
      expect(check!.detail).toContain('blocks allocated one by one would lose nothing');
    });

    it('the GPU processes of the server are its tensor-parallel size, and the cache dtype is the one /metrics gives', () => {
      // TP 2: 4 KV heads a GPU, 32 KiB a page; 1,000 blocks = 31.25 MiB -> 32 MiB, 0.75 MiB x 32 = 24 MiB (2.4%).
      const tp2 = byId(doctorChecks(served('block_size="16",cache_dtype="auto",num_gpu_blocks="1000"', 2)), 'kv-alignment')[0]!;
      expect(tp2.detail).toMatch(/^The KV pool loses 24\.0 MiB .* tensors of 31\.3 MiB takes 32\.0 MiB/);
      // fp8 at TP 1: 1 B an element, 32 KiB a page too; 32,768 blocks = 1 GiB a layer exactly.
      const fp8 = byId(doctorChecks(served('block_size="16",cache_dtype="fp8",num_gpu_blocks="32768"', 1, 'fp8')), 'kv-alignment')[0]!;
      expect(fp8).toMatchObject({ ok: true, detail: expect.stringContaining('32768 blocks of 32.0 KiB fill') });
      expect(32_768 * 32 * 1024).toBe(1024 * MiB);
    });

    it('not applicable when the server gives no block_size or num_gpu_blocks; absent without --hf-config and one --vllm', () => {
      expect(byId(doctorChecks(served('')), 'kv-alignment')).toEqual([
        { id: 'kv-alignment', ok: null, title: 'KV block alignment', detail: `${METRICS_URL} gives no block_size (vllm:cache_config_info)`, fix: null },
      ]);
      expect(byId(doctorChecks(served('block_size="16",num_gpu_blocks="None"')), 'kv-alignment')[0]).toMatchObject({ ok: null, detail: expect.stringContaining('gives no num_gpu_blocks') });
      expect(byId(doctorChecks(facts()), 'kv-alignment')).toEqual([]);
    });
  });
});
