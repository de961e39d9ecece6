/**
 * The diagnosis's evaluation set: hosts drawn from the host model (host-model.ts), each labelled
 * with the findings it must give, and as many look-alikes that must give none: a warm-up then
 * flat, a graph cache that plateaus, a LoRA adapter loaded once, an empty_cache() sawtooth, a
 * restart with the same figures, noise, a load-following KV cache, heap churn, recorder gaps,
 * failed scrapes, a driver layer without the companion. Written before the rules were changed
 * for them, from what such hosts do (one look-alike came after, and says so);
 * `scoreFindings` counts what a diagnosis got right.
 */
import { modelRecording, type EngineSpec, type HostModelSpec, type ModelRecording } from './host-model.js';

/** A finding a case must give: its id, on the first worker of `engine` as it was at `atHour`. */
export interface ExpectedFinding {
  id: string;
  engine: string;
  /** Which of the engine's processes (restarts make new ones); default the window's end. */
  atHour?: number;
}

export interface EvaluationCase {
  name: string;
  /** A failure pattern, or a look-alike that must stay silent. */
  kind: 'pattern' | 'look-alike';
  spec: HostModelSpec;
  expect: ExpectedFinding[];
}

const START = Date.UTC(2026, 10, 23, 0, 0, 0);
const H100_MIB = 81_559;
/** An 8B model on one H100: weights and the KV arena vLLM takes at gpu_memory_utilization 0.9. */
const small = (name: string, gpu: number, extra: Partial<EngineSpec> = {}): EngineSpec => ({ name, model: 'meta-llama/Llama-3.1-8B-Instruct', gpus: [gpu], weightsMiB: 15_320, kvMiB: 54_000, ...extra });
/** A 70B model, tensor parallel over `gpus`. */
const large = (name: string, gpus: number[], extra: Partial<EngineSpec> = {}): EngineSpec => ({
  name,
  model: 'meta-llama/Llama-3.1-70B-Instruct',
  gpus,
  weightsMiB: Math.round(135_000 / gpus.length),
  kvMiB: Math.round(69_000 - 135_000 / gpus.length),
  ...extra,
});
const busy = { peakRequestsPerSecond: 2, nightShare: 0.15, meanServiceSeconds: 12, maxBatch: 64 };
/** Quiet nights: about one request running at 03:00. */
const quietNights = { peakRequestsPerSecond: 2, nightShare: 0.03, meanServiceSeconds: 15, maxBatch: 64 };
/** Nights that empty out: the arrival rate falls to zero at 03:00 (a few requests still run around midnight). */
const emptyNights = { peakRequestsPerSecond: 1.5, nightShare: 0, meanServiceSeconds: 12, maxBatch: 64 };

function host(name: string, seed: number, fields: Omit<HostModelSpec, 'name' | 'seed' | 'startMs'> & { startHour?: number }): HostModelSpec {
  const { startHour, ...rest } = fields;
  return { name, seed, startMs: START + (startHour ?? 0) * 3_600_000, ...rest };
}

const pattern = (name: string, spec: HostModelSpec, expect: ExpectedFinding[]): EvaluationCase => ({ name, kind: 'pattern', spec, expect });
const lookAlike = (name: string, spec: HostModelSpec): EvaluationCase => ({ name, kind: 'look-alike', spec, expect: [] });

export const EVALUATION_SET: readonly EvaluationCase[] = [
  // Patterns.
  pattern('creep-steady-5s', host('creep-steady-5s', 101, { hours: 8, startHour: 8, intervalSeconds: 5, gpus: 1, gpuMiB: H100_MIB, traffic: busy, engines: [small('a', 0, { effects: [{ kind: 'graph-creep', fromHour: 0, mibPerHour: 250 }] })] }), [{ id: 'cuda-graph-creep', engine: 'a' }]),
  pattern(
    'creep-midwindow-30s',
    host('creep-midwindow-30s', 102, {
      hours: 24,
      intervalSeconds: 30,
      gpus: 3,
      gpuMiB: H100_MIB,
      traffic: busy,
      engines: [small('a', 0, { loadShare: 0.4 }), small('b', 1, { loadShare: 0.3, effects: [{ kind: 'graph-creep', fromHour: 12, mibPerHour: 150 }] }), small('c', 2, { loadShare: 0.3 })],
    }),
    [{ id: 'cuda-graph-creep', engine: 'b' }],
  ),
  pattern(
    'creep-after-restart-15s',
    host('creep-after-restart-15s', 103, { hours: 10, startHour: 6, intervalSeconds: 15, gpus: 1, gpuMiB: H100_MIB, traffic: busy, engines: [small('a', 0, { restartHours: [2], effects: [{ kind: 'graph-creep', fromHour: 4, mibPerHour: 200 }] })] }),
    [{ id: 'cuda-graph-creep', engine: 'a' }],
  ),
  pattern(
    'creep-tp4-10s',
    host('creep-tp4-10s', 104, { hours: 12, startHour: 6, intervalSeconds: 10, gpus: 4, gpuMiB: H100_MIB, traffic: busy, engines: [large('a', [0, 1, 2, 3], { effects: [{ kind: 'graph-creep', fromHour: 2, mibPerHour: 120 }] })] }),
    [{ id: 'cuda-graph-creep', engine: 'a' }],
  ),
  pattern(
    'creep-mig-slice-20s',
    host('creep-mig-slice-20s', 105, {
      hours: 6,
      startHour: 9,
      intervalSeconds: 20,
      gpus: 1,
      gpuMiB: 9_830,
      mig: true,
      traffic: { ...busy, peakRequestsPerSecond: 0.5 },
      // About 1 GiB free: 204 MiB of creep is a fifth of the headroom.
      engines: [{ name: 'a', model: 'Qwen/Qwen2.5-1.5B-Instruct', gpus: [0], weightsMiB: 3_000, kvMiB: 3_300, effects: [{ kind: 'graph-creep', fromHour: 0, mibPerHour: 34, captureMiB: [4, 12] }] }],
    }),
    [{ id: 'cuda-graph-creep', engine: 'a' }],
  ),
  pattern('creep-slow-3d-60s', host('creep-slow-3d-60s', 106, { hours: 72, intervalSeconds: 60, gpus: 1, gpuMiB: H100_MIB, traffic: busy, engines: [small('a', 0, { effects: [{ kind: 'graph-creep', fromHour: 0, mibPerHour: 40 }] })] }), [{ id: 'cuda-graph-creep', engine: 'a' }]),
  pattern(
    'fragmentation-night-10s',
    host('fragmentation-night-10s', 107, { hours: 24, startHour: 12, intervalSeconds: 10, gpus: 1, gpuMiB: H100_MIB, traffic: quietNights, engines: [small('a', 0, { effects: [{ kind: 'fragmentation', fromHour: 0, mibPerHour: 300 }] })] }),
    [{ id: 'allocator-fragmentation', engine: 'a' }],
  ),
  pattern(
    'fragmentation-stale-companion-30s',
    host('fragmentation-stale-companion-30s', 108, {
      hours: 24,
      startHour: 12,
      intervalSeconds: 30,
      gpus: 2,
      gpuMiB: H100_MIB,
      traffic: quietNights,
      staleCompanion: [[10, 11.5]],
      engines: [small('a', 0, { loadShare: 0.5 }), small('b', 1, { loadShare: 0.5, effects: [{ kind: 'fragmentation', fromHour: 0, mibPerHour: 250 }] })],
    }),
    [{ id: 'allocator-fragmentation', engine: 'b' }],
  ),
  pattern(
    'creep-smooth-5s',
    host('creep-smooth-5s', 119, { hours: 8, startHour: 8, intervalSeconds: 5, gpus: 1, gpuMiB: H100_MIB, traffic: busy, engines: [small('a', 0, { effects: [{ kind: 'graph-creep', fromHour: 0, mibPerHour: 150, captureMiB: [2, 6] }] })] }),
    [{ id: 'cuda-graph-creep', engine: 'a' }],
  ),
  pattern(
    'heap-leak-with-churn-5s',
    host('heap-leak-with-churn-5s', 120, {
      hours: 8,
      startHour: 8,
      intervalSeconds: 5,
      gpus: 1,
      gpuMiB: H100_MIB,
      traffic: busy,
      engines: [small('a', 0, { effects: [{ kind: 'heap-leak', fromHour: 0, mibPerHour: 150 }, { kind: 'heap-churn', mib: 20, periodMinutes: 1 }] })],
    }),
    [{ id: 'host-heap-leak', engine: 'a' }],
  ),
  pattern('heap-leak-5s', host('heap-leak-5s', 109, { hours: 6, startHour: 10, intervalSeconds: 5, gpus: 1, gpuMiB: H100_MIB, traffic: busy, engines: [small('a', 0, { effects: [{ kind: 'heap-leak', fromHour: 0, mibPerHour: 200 }] })] }), [{ id: 'host-heap-leak', engine: 'a' }]),
  pattern('heap-leak-2d-60s', host('heap-leak-2d-60s', 110, { hours: 48, intervalSeconds: 60, gpus: 1, gpuMiB: H100_MIB, traffic: busy, engines: [small('a', 0, { effects: [{ kind: 'heap-leak', fromHour: 0, mibPerHour: 30 }] })] }), [{ id: 'host-heap-leak', engine: 'a' }]),
  pattern(
    'rss-file-pages-20s',
    host('rss-file-pages-20s', 111, { hours: 12, startHour: 6, intervalSeconds: 20, gpus: 1, gpuMiB: H100_MIB, traffic: busy, engines: [small('a', 0, { effects: [{ kind: 'rss-growth', fromHour: 0, mibPerHour: 150, part: 'file' }] })] }),
    [{ id: 'rss-not-malloc', engine: 'a' }],
  ),
  pattern(
    'rss-driver-mapped-5s',
    host('rss-driver-mapped-5s', 112, { hours: 6, startHour: 9, intervalSeconds: 5, gpus: 1, gpuMiB: H100_MIB, traffic: busy, engines: [small('a', 0, { effects: [{ kind: 'rss-growth', fromHour: 0, mibPerHour: 100, part: 'driverMapped' }] })] }),
    [{ id: 'rss-not-malloc', engine: 'a' }],
  ),
  // Added with the host's malloc layer and the OOM recorder (2026-12-07), before the rules ran on them.
  pattern(
    'rss-anon-mmaps-flat-malloc-15s',
    host('rss-anon-mmaps-flat-malloc-15s', 123, { hours: 8, startHour: 7, intervalSeconds: 15, gpus: 1, gpuMiB: H100_MIB, traffic: busy, engines: [small('a', 0, { effects: [{ kind: 'rss-growth', fromHour: 0, mibPerHour: 180, part: 'anonMappings' }] })] }),
    [{ id: 'rss-not-malloc', engine: 'a' }],
  ),
  pattern(
    'rss-anon-mmaps-no-companion-30s',
    host('rss-anon-mmaps-no-companion-30s', 124, { hours: 10, startHour: 5, intervalSeconds: 30, gpus: 1, gpuMiB: H100_MIB, traffic: busy, companion: false, engines: [small('a', 0, { effects: [{ kind: 'rss-growth', fromHour: 0, mibPerHour: 150, part: 'anonMappings' }] })] }),
    // Without malloc's figures the anonymous growth cannot be told from a heap leak: named as one,
    // worded as unmeasured.
    [{ id: 'host-heap-leak', engine: 'a' }],
  ),
  pattern(
    'oom-kill-after-heap-leak-10s',
    host('oom-kill-after-heap-leak-10s', 125, {
      hours: 8,
      startHour: 8,
      intervalSeconds: 10,
      gpus: 1,
      gpuMiB: H100_MIB,
      traffic: busy,
      // A working set of about 7.5 GiB at the start, +900 MiB/h: the 13,000 MiB limit is reached
      // near 6 h (the first worker's end), and not again before the window's.
      engines: [small('a', 0, { containerLimitMiB: 13_000, effects: [{ kind: 'heap-leak', fromHour: 0, mibPerHour: 900 }, { kind: 'oom-kill' }] })],
    }),
    [
      { id: 'oom-killed', engine: 'a', atHour: 5.5 },
      { id: 'host-heap-leak', engine: 'a', atHour: 5.5 },
      { id: 'host-heap-leak', engine: 'a' },
    ],
  ),
  pattern(
    'idle-growth-in-the-night-trickle-20s',
    host('idle-growth-in-the-night-trickle-20s', 126, {
      hours: 24,
      intervalSeconds: 20,
      gpus: 1,
      gpuMiB: H100_MIB,
      // About one request every five minutes at 03:00.
      traffic: { peakRequestsPerSecond: 1.2, nightShare: 0.003, meanServiceSeconds: 12, maxBatch: 64 },
      engines: [small('a', 0, { effects: [{ kind: 'idle-growth', mibPerIdleHour: 120 }] })],
    }),
    [{ id: 'idle-growth', engine: 'a' }],
  ),
  pattern(
    'lazy-init-5s',
    host('lazy-init-5s', 113, { hours: 4, startHour: 9, intervalSeconds: 5, gpus: 1, gpuMiB: H100_MIB, traffic: { ...busy, quietHours: 1 }, engines: [small('a', 0, { startHour: 0.25, effects: [{ kind: 'lazy-init', mib: 1024, rampSeconds: 25 }] })] }),
    [{ id: 'lazy-init', engine: 'a' }],
  ),
  pattern(
    'lazy-init-60s',
    host('lazy-init-60s', 114, { hours: 6, startHour: 9, intervalSeconds: 60, gpus: 2, gpuMiB: H100_MIB, traffic: { ...busy, quietHours: 1.5 }, engines: [small('a', 0, { loadShare: 0.5 }), small('b', 1, { loadShare: 0.5, startHour: 0.5, effects: [{ kind: 'lazy-init', mib: 768, rampSeconds: 25 }] })] }),
    [{ id: 'lazy-init', engine: 'b' }],
  ),
  pattern('idle-growth-30s', host('idle-growth-30s', 115, { hours: 48, intervalSeconds: 30, gpus: 1, gpuMiB: H100_MIB, traffic: emptyNights, engines: [small('a', 0, { effects: [{ kind: 'idle-growth', mibPerIdleHour: 120 }] })] }), [{ id: 'idle-growth', engine: 'a' }]),
  pattern(
    'tensor-leak-10s',
    host('tensor-leak-10s', 116, { hours: 12, startHour: 8, intervalSeconds: 10, gpus: 1, gpuMiB: H100_MIB, traffic: busy, engines: [small('a', 0, { effects: [{ kind: 'tensor-leak', fromHour: 1, kibPerRequest: 48 }] })] }),
    [{ id: 'gpu-tensor-leak', engine: 'a' }],
  ),
  pattern(
    'driver-only-creep-10s',
    host('driver-only-creep-10s', 117, { hours: 8, startHour: 8, intervalSeconds: 10, gpus: 1, gpuMiB: H100_MIB, traffic: busy, companion: false, engines: [small('a', 0, { effects: [{ kind: 'graph-creep', fromHour: 0, mibPerHour: 250 }] })] }),
    [{ id: 'device-memory-growth', engine: 'a' }],
  ),
  pattern(
    'driver-only-tensor-leak-30s',
    host('driver-only-tensor-leak-30s', 118, { hours: 24, intervalSeconds: 30, gpus: 1, gpuMiB: H100_MIB, traffic: busy, companion: false, engines: [small('a', 0, { effects: [{ kind: 'tensor-leak', fromHour: 2, kibPerRequest: 32 }] })] }),
    [{ id: 'device-memory-growth', engine: 'a' }],
  ),

  // Look-alikes: each must give no finding at all.
  lookAlike('warm-up-then-flat-5s', host('warm-up-then-flat-5s', 201, { hours: 6, startHour: 9, intervalSeconds: 5, gpus: 1, gpuMiB: H100_MIB, traffic: busy, engines: [small('a', 0, { startHour: 0.2 })] })),
  lookAlike('graph-cache-plateau-10s', host('graph-cache-plateau-10s', 202, { hours: 8, startHour: 9, intervalSeconds: 10, gpus: 1, gpuMiB: H100_MIB, traffic: busy, engines: [small('a', 0, { effects: [{ kind: 'graph-creep', fromHour: 0, toHour: 2, mibPerHour: 400 }] })] })),
  lookAlike(
    'lora-adapter-step-20s',
    host('lora-adapter-step-20s', 203, {
      hours: 10,
      startHour: 8,
      intervalSeconds: 20,
      gpus: 1,
      gpuMiB: H100_MIB,
      traffic: busy,
      engines: [small('a', 0, { effects: [{ kind: 'step', atHour: 4, mib: 600, where: 'outside' }, { kind: 'step', atHour: 4.01, mib: 320, where: 'allocated' }] })],
    }),
  ),
  lookAlike('empty-cache-sawtooth-5s', host('empty-cache-sawtooth-5s', 204, { hours: 8, startHour: 8, intervalSeconds: 5, gpus: 1, gpuMiB: H100_MIB, traffic: busy, engines: [small('a', 0, { effects: [{ kind: 'sawtooth', periodMinutes: 30, mib: 1536 }] })] })),
  lookAlike('restart-same-figures-15s', host('restart-same-figures-15s', 205, { hours: 10, startHour: 8, intervalSeconds: 15, gpus: 1, gpuMiB: H100_MIB, traffic: busy, engines: [small('a', 0, { restartHours: [3, 7] })] })),
  lookAlike('noisy-flat-5s', host('noisy-flat-5s', 206, { hours: 8, startHour: 8, intervalSeconds: 5, gpus: 1, gpuMiB: H100_MIB, traffic: busy, engines: [small('a', 0, { effects: [{ kind: 'jitter', mib: 48 }] })] })),
  lookAlike('load-following-kv-30s', host('load-following-kv-30s', 207, { hours: 48, intervalSeconds: 30, gpus: 2, gpuMiB: H100_MIB, traffic: { ...busy, peakRequestsPerSecond: 4 }, engines: [small('a', 0, { loadShare: 0.6 }), small('b', 1, { loadShare: 0.4 })] })),
  lookAlike('busy-hour-cache-warm-up-10s', host('busy-hour-cache-warm-up-10s', 208, { hours: 24, intervalSeconds: 10, gpus: 1, gpuMiB: H100_MIB, traffic: busy, engines: [small('a', 0, { effects: [{ kind: 'cache-warmup', mib: 2048 }] })] })),
  lookAlike('heap-churn-5s', host('heap-churn-5s', 209, { hours: 6, startHour: 10, intervalSeconds: 5, gpus: 1, gpuMiB: H100_MIB, traffic: busy, engines: [small('a', 0, { effects: [{ kind: 'heap-churn', mib: 400, periodMinutes: 20 }] })] })),
  lookAlike('driver-only-flat-10s', host('driver-only-flat-10s', 210, { hours: 8, startHour: 8, intervalSeconds: 10, gpus: 1, gpuMiB: H100_MIB, traffic: busy, companion: false, engines: [small('a', 0)] })),
  lookAlike('recorder-gaps-and-drops-60s', host('recorder-gaps-and-drops-60s', 211, { hours: 24, intervalSeconds: 60, gpus: 2, gpuMiB: H100_MIB, traffic: busy, recorder: { dropShare: 0.1, pauses: [[6, 8.5]] }, engines: [small('a', 0, { loadShare: 0.5 }), small('b', 1, { loadShare: 0.5 })] })),
  lookAlike('failed-scrapes-20s', host('failed-scrapes-20s', 212, { hours: 12, startHour: 6, intervalSeconds: 20, gpus: 1, gpuMiB: H100_MIB, traffic: busy, failedScrapeShare: 0.2, engines: [small('a', 0)] })),
  lookAlike('driver-only-warm-up-5s', host('driver-only-warm-up-5s', 213, { hours: 6, startHour: 9, intervalSeconds: 5, gpus: 1, gpuMiB: H100_MIB, traffic: busy, companion: false, engines: [small('a', 0, { startHour: 0.3 })] })),
  lookAlike(
    'mig-slice-noisy-flat-20s',
    host('mig-slice-noisy-flat-20s', 214, {
      hours: 8,
      startHour: 8,
      intervalSeconds: 20,
      gpus: 2,
      gpuMiB: 9_830,
      mig: true,
      traffic: { ...busy, peakRequestsPerSecond: 0.5 },
      engines: [0, 1].map((gpu) => ({ name: `m${gpu}`, model: 'Qwen/Qwen2.5-1.5B-Instruct', gpus: [gpu], weightsMiB: 3_000, kvMiB: 3_300, loadShare: 0.5, effects: [{ kind: 'jitter' as const, mib: 16 }] })),
    }),
  ),
  lookAlike('tp8-flat-30s', host('tp8-flat-30s', 215, { hours: 24, intervalSeconds: 30, gpus: 8, gpuMiB: H100_MIB, traffic: busy, engines: [large('a', [0, 1, 2, 3, 4, 5, 6, 7])] })),
  lookAlike('plateau-after-an-hour-3d-60s', host('plateau-after-an-hour-3d-60s', 216, { hours: 72, intervalSeconds: 60, gpus: 1, gpuMiB: H100_MIB, traffic: busy, engines: [small('a', 0, { effects: [{ kind: 'graph-creep', fromHour: 0, toHour: 1, mibPerHour: 800 }] })] })),
  lookAlike(
    'driver-only-lora-step-15s',
    host('driver-only-lora-step-15s', 217, { hours: 8, startHour: 8, intervalSeconds: 15, gpus: 1, gpuMiB: H100_MIB, traffic: busy, companion: false, engines: [small('a', 0, { effects: [{ kind: 'step', atHour: 3, mib: 1024, where: 'outside' }] })] }),
  ),
  lookAlike(
    'smooth-warm-up-plateau-5s',
    host('smooth-warm-up-plateau-5s', 219, {
      hours: 6,
      startHour: 9,
      intervalSeconds: 5,
      gpus: 1,
      gpuMiB: H100_MIB,
      traffic: busy,
      engines: [small('a', 0, { startHour: 0.1, effects: [{ kind: 'graph-creep', fromHour: 0.1, toHour: 1.2, mibPerHour: 300, captureMiB: [2, 6] }] })],
    }),
  ),
  lookAlike('split-churn-busy-hours-10s', host('split-churn-busy-hours-10s', 220, { hours: 24, intervalSeconds: 10, gpus: 1, gpuMiB: H100_MIB, traffic: busy, engines: [small('a', 0, { effects: [{ kind: 'split-churn', mib: 900 }] })] })),
  lookAlike('start-up-under-load-60s', host('start-up-under-load-60s', 221, { hours: 6, startHour: 12, intervalSeconds: 60, gpus: 1, gpuMiB: H100_MIB, traffic: busy, engines: [small('a', 0, { startHour: 0.5 })] })),
  // Added after a rule change (device-memory-growth leaving out growth the load explains): the
  // allocator's cache warming up as the morning's load climbs, seen through the driver layer alone.
  lookAlike(
    'driver-only-cache-warming-with-the-morning-10s',
    host('driver-only-cache-warming-with-the-morning-10s', 222, { hours: 6, startHour: 6, intervalSeconds: 10, gpus: 1, gpuMiB: H100_MIB, traffic: busy, companion: false, engines: [small('a', 0, { effects: [{ kind: 'cache-warmup', mib: 3072 }] })] }),
  ),
  // Added with the host's malloc layer and the OOM recorder (2026-12-07), before the rules ran on them.
  lookAlike(
    'restart-is-not-an-oom-kill-10s',
    host('restart-is-not-an-oom-kill-10s', 223, { hours: 6, startHour: 9, intervalSeconds: 10, gpus: 1, gpuMiB: H100_MIB, traffic: busy, engines: [small('a', 0, { containerLimitMiB: 16_384, restartHours: [2.5] })] }),
  ),
  lookAlike(
    'night-trickle-flat-20s',
    host('night-trickle-flat-20s', 224, { hours: 24, intervalSeconds: 20, gpus: 1, gpuMiB: H100_MIB, traffic: { peakRequestsPerSecond: 1.2, nightShare: 0.003, meanServiceSeconds: 12, maxBatch: 64 }, engines: [small('a', 0)] }),
  ),
  lookAlike(
    'anon-mappings-fill-then-flat-15s',
    // A registration cache that fills in the first hour and stays: a plateau, not growth.
    host('anon-mappings-fill-then-flat-15s', 225, { hours: 8, startHour: 7, intervalSeconds: 15, gpus: 1, gpuMiB: H100_MIB, traffic: busy, engines: [small('a', 0, { effects: [{ kind: 'rss-growth', fromHour: 0, toHour: 1, mibPerHour: 600, part: 'anonMappings' }] })] }),
  ),
  lookAlike('idle-nights-flat-30s', host('idle-nights-flat-30s', 218, { hours: 48, intervalSeconds: 30, gpus: 1, gpuMiB: H100_MIB, traffic: emptyNights, engines: [small('a', 0)] })),
];

/** What a diagnosis gave for one case, against its labels. */
export interface CaseScore {
  name: string;
  kind: EvaluationCase['kind'];
  expected: number;
  found: number;
  /** Expected findings that did not come, as "id on engine". */
  missed: string[];
  /** Findings that were not expected, as "id on GPU n pid p". */
  falseFindings: string[];
}

export interface FindingLike {
  id: string;
  subject: { deviceIndex: number; pid: number | null };
}

/**
 * A finding counts when its id, device and pid are a label's. Anything else is a false finding,
 * a second finding of the same label included.
 */
export function scoreFindings(testCase: EvaluationCase, recording: ModelRecording, findings: readonly FindingLike[]): CaseScore {
  const lastHour = testCase.spec.hours;
  const remaining = [...findings];
  const missed: string[] = [];
  for (const label of testCase.expect) {
    const subject = recording.subjectAt(label.engine, label.atHour ?? lastHour - 1e-6);
    const index = subject === null ? -1 : remaining.findIndex((f) => f.id === label.id && f.subject.deviceIndex === subject.deviceIndex && f.subject.pid === subject.pid);
    if (index === -1) missed.push(`${label.id} on ${label.engine}`);
    else remaining.splice(index, 1);
  }
  return {
    name: testCase.name,
    kind: testCase.kind,
    expected: testCase.expect.length,
    found: testCase.expect.length - missed.length,
    missed,
    falseFindings: remaining.map((f) => `${f.id} on GPU ${f.subject.deviceIndex} pid ${f.subject.pid ?? '-'}`),
  };
}

export function evaluationRecording(testCase: EvaluationCase): ModelRecording {
  return modelRecording(testCase.spec);
}

/** Per finding id: labels found (true positives), labels missed, and findings nobody expected. */
export interface IdScore {
  id: string;
  found: number;
  missed: number;
  falseFindings: number;
  /** found / (found + falseFindings); null with neither. */
  precision: number | null;
  /** found / (found + missed); null without labels. */
  recall: number | null;
}

export function scoresById(cases: readonly EvaluationCase[], scores: readonly CaseScore[]): IdScore[] {
  const byId = new Map<string, { found: number; missed: number; falseFindings: number }>();
  const entry = (id: string) => {
    let e = byId.get(id);
    if (e === undefined) byId.set(id, (e = { found: 0, missed: 0, falseFindings: 0 }));
    return e;
  };
  scores.forEach((score, i) => {
    const testCase = cases[i]!;
    const missedIds = score.missed.map((m) => m.split(' on ')[0]!);
    for (const label of testCase.expect) {
      const index = missedIds.indexOf(label.id);
      if (index === -1) entry(label.id).found++;
      else {
        entry(label.id).missed++;
        missedIds.splice(index, 1);
      }
    }
    for (const f of score.falseFindings) entry(f.split(' on ')[0]!).falseFindings++;
  });
  return [...byId].sort(([a], [b]) => a.localeCompare(b)).map(([id, e]) => ({
    id,
    ...e,
    precision: e.found + e.falseFindings === 0 ? null : e.found / (e.found + e.falseFindings),
    recall: e.found + e.missed === 0 ? null : e.found / (e.found + e.missed),
  }));
}
