/**
 * The hand-written reading of a process's figures (figuresOf, for speed on streamed recordings)
 * gives exactly what the zod schema it follows gives, on valid processes and on anything a
 * damaged or hostile recording can hold in their place.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';

import { figuresOf, processFiguresSchema } from '../../src/diagnosis/process-figures.js';
import { readRecording } from '../../src/recording/read-recording.js';
import { repoRoot } from '../helpers/paths.js';

type Json = Record<string, unknown>;
const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * The input processFiguresSchema reads: a recorded process with its allocator reason moved up,
 * and the nested figures it keeps (malloc, the container, vLLM's counters) moved into the object
 * above them under the names the figures give them.
 */
function figuresInput(process: unknown): unknown {
  if (!isObject(process)) return process;
  const errors = isObject(process.errors) ? process.errors : null;
  const reason = errors !== null && isObject(errors['layers.allocator']) ? errors['layers.allocator'].message : null;
  let { host, layers } = process;
  if (isObject(host)) {
    const malloc = isObject(host.malloc) ? host.malloc : {};
    const container = isObject(host.container) ? host.container : {};
    host = {
      ...host,
      mallocInUseBytes: malloc.inUseBytes,
      mallocFreeBytes: malloc.freeBytes,
      containerPath: container.path,
      containerUsageBytes: container.usageBytes,
      containerWorkingSetBytes: container.workingSetBytes,
      containerLimitBytes: container.limitBytes,
      containerOomKills: container.oomKills,
    };
  }
  if (isObject(layers) && isObject(layers.framework)) {
    const counters = isObject(layers.framework.counters) ? layers.framework.counters : {};
    layers = {
      ...layers,
      framework: { ...layers.framework, requestsFinished: counters.requestsFinished, promptTokens: counters.promptTokens, generationTokens: counters.generationTokens },
    };
  }
  return { ...process, host, layers, allocatorReason: reason };
}

/** What zod gives: the figures, or null when the value is not a process at all. */
function bySchema(value: unknown): unknown {
  const parsed = processFiguresSchema.safeParse(figuresInput(value));
  return parsed.success ? parsed.data : null;
}

const oddValue = fc.oneof(
  fc.constant(null),
  fc.constant(undefined),
  fc.integer({ min: -5, max: 2 ** 40 }),
  fc.double(),
  fc.constant(2 ** 53),
  fc.string({ maxLength: 4 }),
  fc.boolean(),
  fc.constant([]),
  fc.constant({}),
);
const maybe = <T>(arb: fc.Arbitrary<T>) => fc.oneof(arb, oddValue);
const bytes = maybe(fc.nat({ max: 2 ** 40 }));
const recordedProcess = fc.record(
  {
    pid: maybe(fc.integer({ min: 1, max: 2 ** 22 })),
    command: maybe(fc.string({ maxLength: 8 })),
    layers: maybe(
      fc.record(
        {
          driverBytes: bytes,
          allocator: maybe(fc.record({ reservedBytes: bytes, allocatedBytes: bytes, inactiveSplitBytes: bytes, privatePoolBytes: bytes, largestFreeBlockBytes: bytes, numAllocRetries: bytes, numOoms: bytes }, { requiredKeys: [] })),
          framework: maybe(
            fc.record(
              {
                requestsRunning: maybe(fc.nat({ max: 500 })),
                requestsWaiting: maybe(fc.double({ min: 0, max: 50, noNaN: true })),
                counters: maybe(fc.record({ requestsFinished: maybe(fc.nat()), promptTokens: maybe(fc.double({ min: 0, max: 1e12, noNaN: true })), generationTokens: bytes }, { requiredKeys: [] })),
              },
              { requiredKeys: [] },
            ),
          ),
        },
        { requiredKeys: [] },
      ),
    ),
    gaps: maybe(fc.record({ outsideAllocatorBytes: maybe(fc.integer({ min: -(2 ** 33), max: 2 ** 33 })) }, { requiredKeys: [] })),
    host: maybe(
      fc.record(
        {
          rssBytes: bytes,
          anonBytes: bytes,
          fileBytes: bytes,
          shmemBytes: bytes,
          driverMappedBytes: bytes,
          heapBytes: bytes,
          anonMappingsBytes: bytes,
          outsideMallocBytes: maybe(fc.integer({ min: -(2 ** 33), max: 2 ** 33 })),
          malloc: maybe(fc.record({ inUseBytes: bytes, freeBytes: bytes }, { requiredKeys: [] })),
          container: maybe(fc.record({ path: maybe(fc.string({ maxLength: 6 })), usageBytes: bytes, workingSetBytes: bytes, limitBytes: bytes, oomKills: bytes }, { requiredKeys: [] })),
          startTimeTicks: bytes,
        },
        { requiredKeys: [] },
      ),
    ),
    errors: maybe(fc.record({ 'layers.allocator': maybe(fc.record({ message: maybe(fc.string({ maxLength: 6 })) })) }, { requiredKeys: [] })),
  },
  { requiredKeys: [] },
);

describe('figuresOf', () => {
  it('agrees with processFiguresSchema on anything in a process\'s place', () => {
    fc.assert(
      fc.property(fc.oneof(recordedProcess, oddValue), (value) => {
        const figures = figuresOf(value);
        expect(figures).toEqual(bySchema(value));
        // Where the reason comes from, read a third way.
        const message = (value as { errors?: { 'layers.allocator'?: { message?: unknown } } } | null)?.errors?.['layers.allocator']?.message;
        if (figures !== null) expect(figures.allocatorReason).toBe(typeof message === 'string' ? message : null);
      }),
      { numRuns: Number(process.env.GPU_LAYERS_FUZZ_RUNS ?? 2000) },
    );
  });

  it('reads every process of a real recording as the schema does', async () => {
    const { samples } = await readRecording(`${repoRoot}/assets/overnight.recording.jsonl.gz`);
    for (const p of samples.flatMap((s) => s.devices.flatMap((d) => d.processes ?? []))) expect(figuresOf(p)).toEqual(bySchema(p));
  });
});
