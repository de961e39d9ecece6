/** The pure join on hand-built inputs: which layer lands on which process, per-device figures, reasons. */
import { describe, expect, it } from 'vitest';

import { joinLayers } from '../../src/layers/join.js';
import { layeredSampleSchema } from '../../src/layers/schema.js';
import { buildSample } from '../../src/sample/build-sample.js';
import { validate } from '../../src/validation.js';
import type { CompanionResult } from '../../src/sources/companion.js';
import { host10, inputs, NOW_S, processOf, sample, vllmLayer } from '../helpers/layered-fixtures.js';
import { context, rawDevice, rawSample, rows } from '../helpers/raw-readings.js';

describe('joinLayers', () => {
  it('a process with every layer: figures and gaps from its own device and companion', () => {
    const p = processOf(joinLayers(sample(), inputs()), 10);
    expect(p.layers).toEqual({
      driverBytes: 200,
      contextBytes: 20,
      allocator: {
        reservedBytes: 120,
        allocatedBytes: 90,
        activeBytes: null,
        inactiveSplitBytes: 6,
        requestedBytes: null,
        numAllocRetries: null,
        numOoms: 0,
        privatePoolBytes: 10,
        largestFreeBlockBytes: null,
        privatePoolAllocatedBytes: null,
        lastOom: null,
        source: { file: '/stats/10.json', writtenAt: new Date((NOW_S - 1.5) * 1000).toISOString(), ageSeconds: 1.5, torchVersion: '2.5.1' },
      },
      framework: vllmLayer,
    });
    // 200 - 120 outside; graphs: 10 in pools + (80 - 20 context); cached 120 - 90 - 10.
    expect(p.gaps).toEqual({
      outsideAllocatorBytes: 80,
      cudaGraphs: { insideAllocatorBytes: 10, outsideAllocatorEstimateBytes: 60, totalEstimateBytes: 70 },
      allocatorCachedBytes: 20,
      fragmentationRatio: 6 / 120,
    });
    // This companion file is of a companion without host figures: malloc is unknown, and why.
    const { errors: hostErrors, ...hostFigures } = p.host!;
    const { errors: _none, ...expectedFigures } = host10;
    expect(hostFigures).toEqual(expectedFigures);
    expect(Object.keys(hostErrors).sort()).toEqual(['malloc', 'outsideMallocBytes', 'python']);
    expect(hostErrors.malloc?.code).toBe('COMPANION_TOO_OLD');
    expect(p.errors).toBeUndefined();
  });

  it("the host's allocator layers: malloc and Python from the process's companion, and the anonymous memory malloc does not hold", () => {
    const withHost = inputs();
    const file = withHost.companion!.get(10)!;
    if (!file.ok) throw new Error('fixture');
    const malloc = { source: 'mallinfo2' as const, arenaBytes: 1800, mmappedBytes: 700, mmappedChunks: 3, inUseBytes: 2300, freeBytes: 200, releasableBytes: 40, arenaCount: 4 };
    const python = { allocatedBlocks: 52_000, tracedBytes: null };
    (withHost.companion as Map<number, CompanionResult>).set(10, { ...file, document: { ...file.document, host: { malloc, mallocUnknownBecause: null, python } } });
    const p = processOf(joinLayers(sample(), withHost), 10);
    // host10's anonymous RSS (3000) less malloc's arenas and mmapped chunks (1800 + 700).
    expect(p.host).toEqual({ ...host10, malloc, python, outsideMallocBytes: 3000 - 1800 - 700 });

    (withHost.companion as Map<number, CompanionResult>).set(10, { ...file, document: { ...file.document, host: { malloc: null, mallocUnknownBecause: 'no glibc malloc statistics in this C library (musl?)', python } } });
    const unknown = processOf(joinLayers(sample(), withHost), 10).host!;
    expect(unknown.malloc).toBeNull();
    expect(unknown.errors.malloc).toMatchObject({ code: 'MALLOC_UNKNOWN', message: 'no glibc malloc statistics in this C library (musl?)' });
    expect(unknown.outsideMallocBytes).toBeNull();
    expect(unknown.python).toEqual(python);

    // Without a stats folder, the reason says where malloc's figures come from.
    const none = processOf(joinLayers(sample(), inputs({ companion: null })), 10).host!;
    expect(none.errors.malloc?.message).toMatch(/companion/);
  });

  it('per device: the calibrated context and the memory no process accounts for', () => {
    const layered = joinLayers(sample(), inputs());
    expect(layered.devices[0]).toMatchObject({ contextBytes: 20, unattributedBytes: 300 - 200 - 50 });
    expect(layered.devices[1]).toMatchObject({ contextBytes: null, unattributedBytes: 0 });
    expect(layered.devices[1]!.errors.contextBytes).toMatchObject({ code: 'NOT_CALIBRATED' });
  });

  it('each missing piece is null with its own reason, the rest of the process intact', () => {
    const layered = joinLayers(sample(), inputs());
    const p20 = processOf(layered, 20);
    expect(p20.layers).toEqual({ driverBytes: 50, contextBytes: 20, allocator: null, framework: null });
    expect(p20.errors!['layers.allocator']).toMatchObject({ code: 'COMPANION_MISSING', message: expect.stringContaining('/stats/20.json') });
    expect(p20.errors!['layers.framework']).toMatchObject({ code: 'NOT_REQUESTED' });
    expect(p20.errors!.gaps).toMatchObject({ code: 'INPUT_MISSING' });
    expect(p20.errors!.host).toMatchObject({ code: 'PROCESS_NOT_VISIBLE' });
    expect(p20.host).toBeNull();

    // pid 11's companion only knows device 0: no allocator on device 1, and no context there.
    const p11 = processOf(layered, 11);
    expect(p11.layers.allocator).toBeNull();
    expect(p11.errors!['layers.allocator']).toMatchObject({ code: 'COMPANION_NO_DEVICE' });
    expect(p11.errors!['layers.contextBytes']).toMatchObject({ code: 'NOT_CALIBRATED' });
  });

  it('sources not asked for: the reasons say so, and the sources block is passed through', () => {
    const layered = joinLayers(sample(), inputs({ host: null, companion: null, calibration: { entries: [], moduleLoading: 'LAZY', error: { code: 'NOT_CALIBRATED', nvmlReturn: null, message: 'run calibrate' } } }));
    const p10 = processOf(layered, 10);
    expect(p10.host).toBeNull();
    expect(p10.errors!.host).toMatchObject({ code: 'NOT_REQUESTED' });
    expect(p10.errors!['layers.allocator']).toMatchObject({ code: 'NOT_REQUESTED', message: expect.stringContaining('GPU_LAYERS_STATS_DIR') });
    expect(p10.errors!['layers.contextBytes']).toEqual({ code: 'NOT_CALIBRATED', nvmlReturn: null, message: 'run calibrate' });
    expect(layered.sources).toEqual({ ...inputs().sources, podResources: null });
  });

  it('validates against the published layered schema and leaves its input untouched', () => {
    const input = sample();
    const before = structuredClone(input);
    const layered = joinLayers(input, inputs());
    expect(input).toEqual(before);
    const checked = validate(layeredSampleSchema, JSON.parse(JSON.stringify(layered)));
    expect(checked.ok ? 'valid' : checked.message).toBe('valid');
  });

  it('a process whose used figure NVML does not give: driver null, and every gap says what it needs', () => {
    const layered = joinLayers(
      buildSample(rawSample([rawDevice(0, { processRows: rows([0, 10, NaN, NaN, NaN]) })]), context()),
      inputs(),
    );
    const p = processOf(layered, 10);
    expect(p.layers.driverBytes).toBeNull();
    expect(p.errors!['layers.driverBytes']).toBeDefined();
    expect(p.gaps.outsideAllocatorBytes).toBeNull();
    expect(p.errors!['gaps.outsideAllocatorBytes']!.message).toContain('the driver figure');
    // The allocator-only gaps still stand.
    expect(p.gaps.allocatorCachedBytes).toBe(20);
    expect(layered.devices[0]!.unattributedBytes).toBeNull();
  });
});
