/**
 * Fuzzing the mock's scenario-file parser through the real addon and probe (fast-check, run in
 * this process: a crash kills it and vitest reports the file failed). Valid files with bytes
 * changed, inserted, duplicated or cut, random bytes, and lines of random directives with huge
 * numbers, long tokens and missing fields: every input ends in a typed error or a sample that is
 * sound (schema-valid, safe integers, a reason for every null), never a hang or a native failure.
 * A file made unparseable on purpose makes every call fail with NVML_ERROR_UNKNOWN (CUDA 999),
 * which the probe turns into typed errors. GPU_LAYERS_FUZZ_RUNS=N runs each property N times.
 */
import { mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { GpuLayersError } from '../../src/errors.js';
import type { Scenario } from '../../src/mock-host/scenario-schema.js';
import { formatScenario } from '../../src/mock-host/scenario-text.js';
import { loadAddon } from '../../src/binding/addon.js';
import { resolveProbeOptions } from '../../src/probe/options.js';
import { openProbe } from '../../src/probe/probe.js';
import { sampleSchema, type Sample } from '../../src/sample/schema.js';
import { nodeGypBuild } from '../helpers/paths.js';
import { GiB, MiB, h100, host } from '../helpers/scenarios.js';
import { hugeNumbers, unexplainedNulls } from '../helpers/fault-matrix.js';
import { FUZZ_TIMEOUT_MS, HOSTILE_BYTES, HOSTILE_NUMBER_TOKENS, byteMutation, fuzzParams, mutateBytes } from '../helpers/fuzz.js';

const libraries = { nvmlLibrary: nodeGypBuild.mockNvml, cudaLibrary: nodeGypBuild.mockCuda, timeoutMs: 5000 };
const addon = loadAddon(resolveProbeOptions({}).addonPath);
const SYMBOLS = [...Object.values(addon.nvmlSymbols).flat(), ...Object.values(addon.cudaSymbols).flat()];
const MAGIC = 'gpu-layers-mock-scenario 1';

let dir: string;
let file: string;
const previousScenario = process.env.GPU_LAYERS_MOCK_SCENARIO;

beforeAll(() => {
  dir = mkdtempSync(path.join(tmpdir(), 'gpu-layers-scenario-fuzz-'));
  file = path.join(dir, 'fuzz.scenario');
  writeFileSync(file, formatScenario(host(1, 1)));
  process.env.GPU_LAYERS_MOCK_SCENARIO = file;
});
afterAll(() => {
  process.env.GPU_LAYERS_MOCK_SCENARIO = previousScenario;
  rmSync(dir, { recursive: true, force: true });
});

/** Valid files to mutate: plain hosts, MIG, and every fault directive. */
const seeds: Scenario[] = [
  host(2, 3),
  {
    driverVersion: '535.54.03',
    processRowBytes: 32,
    hide: ['nvmlDeviceGetMemoryInfo_v2'],
    unterminated: ['nvmlDeviceGetName'],
    rc: [{ symbol: 'nvmlDeviceGetBAR1MemoryInfo', rc: 3, device: 0 }, { symbol: '*', rc: 15, device: 1, migSlot: 2 }],
    delay: [{ symbol: 'nvmlDeviceGetUUID', ms: 1 }],
    count: [{ symbol: 'nvmlDeviceGetMaxMigDeviceCount', count: 9 }],
    grow: { processes: 2, calls: 3 },
    cudaOrder: [1, 0],
    devices: [
      h100(0, [{ type: 'graphics', pid: 77, usedBytes: 'na' }], { pci: { domain: 'na', bus: 3, device: 0, pciDeviceId: 0x233010de, pciSubSystemId: 1 } }),
      h100(1, [], {
        migMode: { current: 1, pending: 'na' },
        migDevices: [
          { slot: 2, gpuInstanceId: 3, computeInstanceId: 0, memory: { total: 20 * GiB, reserved: 0, used: 1 * GiB, free: 19 * GiB },
            processes: [{ type: 'compute', pid: 88, usedBytes: 1 * GiB }, { type: 'mps', pid: 89, usedBytes: 2n ** 60n }] },
          { slot: 5, gpuInstanceId: 'na', computeInstanceId: 1, contextBytes: 500 * MiB },
        ],
      }),
    ],
  },
];
const seedTexts = seeds.map((s) => Buffer.from(formatScenario(s)));

/** What the mock reads of a line: up to '#', surrounding whitespace trimmed, split at spaces and tabs. */
function tokensOf(line: string): string[] {
  return line.split('#')[0]!.replace(/^[ \t\n\v\f\r]+|[ \t\n\v\f\r]+$/g, '').split(/[ \t]+/);
}

/**
 * A delay is a hang by design; a fuzzed one is cut to at most 5 ms (every number in its value
 * becomes 5), so that a hang the test sees is the mock's or the probe's, not the scenario's.
 */
function withShortDelays(bytes: Buffer): Buffer {
  const text = bytes.toString('latin1');
  const lines = text.split('\n').map((line) => {
    const tokens = tokensOf(line);
    if (tokens[0] !== 'delay' || tokens.length < 3) return line;
    return [tokens[0], tokens[1], tokens[2]!.replace(/0[xX][0-9a-fA-F]+|[0-9]+/g, '5'), ...tokens.slice(3)].join(' ');
  });
  return Buffer.from(lines.join('\n'), 'latin1');
}

/** A line of a directive (or none) with tokens that are often out of range, malformed or missing. */
const directiveLine: fc.Arbitrary<string> = fc
  .tuple(
    fc.constantFrom(
      'driver_version', 'nvml_version', 'cuda_driver_version', 'nvml_init_rc', 'cuda_init_rc', 'process_row_bytes', 'hide', 'unterminated',
      'rc', 'delay', 'count', 'grow', 'cuda_order', 'device', 'name', 'uuid', 'pci', 'memory', 'bar1', 'utilization', 'mig_mode',
      'context_bytes', 'mig', 'process', 'no_such_directive', '',
    ),
    fc.array(
      fc.oneof(
        fc.constantFrom(...HOSTILE_NUMBER_TOKENS, 'na', '-1', '0', '1', '7', '0x', '0xffffffff', '0xffffffffffffffff', '18446744073709551616', '*', '0/0', '1/2', '4294967295/4294967295', '-1/-1', 'compute', 'graphics', 'mps'),
        fc.constantFrom(...SYMBOLS),
        fc.string({ maxLength: 24 }).map((s) => s.replace(/[\n#]/g, '')),
        fc.nat({ max: 300 }).map(String),
        fc.constantFrom('x'.repeat(2000), '9'.repeat(1500)),
      ),
      { maxLength: 7 },
    ),
  )
  .map(([directive, tokens]) => [directive, ...tokens].join(' '));

/** Whole files: mutated seeds, random bytes, and random directives after the magic line. */
const scenarioText: fc.Arbitrary<Buffer> = fc.oneof(
  { weight: 5, arbitrary: fc.tuple(fc.nat(), fc.array(byteMutation, { minLength: 1, maxLength: 4 })).map(([which, ms]) => mutateBytes(seedTexts[which % seedTexts.length]!, ms)) },
  { weight: 3, arbitrary: fc.tuple(fc.nat(), fc.array(directiveLine, { minLength: 1, maxLength: 12 }), fc.nat()).map(([which, lines, at]) => {
    const seed = seedTexts[which % seedTexts.length]!.toString('utf8').split('\n');
    const i = 1 + (at % seed.length);
    return Buffer.from([...seed.slice(0, i), ...lines, ...seed.slice(i)].join('\n'));
  }) },
  { weight: 2, arbitrary: fc.array(directiveLine, { maxLength: 20 }).map((lines) => Buffer.from([MAGIC, ...lines].join('\n'))) },
  { weight: 1, arbitrary: fc.uint8Array({ maxLength: 4096 }).map((a) => Buffer.from(a)) },
  { weight: 1, arbitrary: fc.nat().map((i) => Buffer.concat([Buffer.from(`${MAGIC}\n`), HOSTILE_BYTES[i % HOSTILE_BYTES.length]!])) },
);

/** Atomically, as writeScenario does: the mock never reads half a file. */
function writeRaw(bytes: Buffer): void {
  const temporary = path.join(dir, `.fuzz.${process.pid}.${Math.random().toString(36).slice(2)}.tmp`);
  writeFileSync(temporary, bytes);
  renameSync(temporary, file);
}

type Outcome = { error: unknown } | { sample: Sample };

async function probeOnce(): Promise<Outcome> {
  let probe;
  try {
    probe = await openProbe(libraries);
  } catch (error) {
    return { error };
  }
  try {
    return { sample: await probe.sample() };
  } catch (error) {
    return { error };
  } finally {
    await probe.close();
  }
}

/** A typed error the scenario may cause, never one that says the addon or the probe broke. */
function expectTypedError(error: unknown): void {
  expect(error).toBeInstanceOf(GpuLayersError);
  const code = (error as GpuLayersError).code;
  expect(['NATIVE_FAILURE', 'NATIVE_OUTPUT_INVALID', 'NVML_TIMEOUT', 'PROBE_CLOSED'], (error as Error).message).not.toContain(code);
}

function expectSoundSample(sample: Sample): void {
  const parsed = sampleSchema.safeParse(sample);
  expect(parsed.success, parsed.success ? '' : parsed.error.message).toBe(true);
  expect(hugeNumbers(sample, { allOnes32: true })).toEqual([]);
  expect(unexplainedNulls(sample)).toEqual([]);
  for (const code of collectCodes(sample)) expect(code).toMatch(/^[A-Z][A-Z0-9_]*$/);
}

function collectCodes(node: unknown): string[] {
  if (Array.isArray(node)) return node.flatMap(collectCodes);
  if (typeof node !== 'object' || node === null) return [];
  return Object.entries(node).flatMap(([key, value]) =>
    key === 'errors' && typeof value === 'object' && value !== null ? Object.values(value).map((e) => (e as { code: string }).code) : collectCodes(value),
  );
}

describe('the scenario-file parser, through the addon', () => {
  it('any file: a sound sample or a typed error, no crash, no hang', { timeout: FUZZ_TIMEOUT_MS }, async () => {
    let samples = 0;
    let errors = 0;
    await fc.assert(
      fc.asyncProperty(scenarioText, async (bytes) => {
        writeRaw(withShortDelays(bytes));
        const started = performance.now();
        const outcome = await probeOnce();
        expect(performance.now() - started).toBeLessThan(4000);
        if ('error' in outcome) {
          expectTypedError(outcome.error);
          errors++;
        } else {
          expectSoundSample(outcome.sample);
          samples++;
        }
      }),
      fuzzParams(250),
    );
    // Both ends are reached: files the mock accepts, and files it refuses.
    expect(samples).toBeGreaterThan(0);
    expect(errors).toBeGreaterThan(0);
  });

  /** Lines the parser must refuse wherever they stand. */
  const brokenLines = [
    'no_such_directive 1', 'memory 1 2', 'process compute', 'process nothing 1 1', 'pci 0 0 0', 'uuid', 'mig 1', 'grow -5',
    'process_row_bytes 20', 'rc nvmlInit_v2', 'delay nvmlInit_v2 -1', 'count nvmlDeviceGetCount_v2 4294967296',
    'memory 99999999999999999999999 0 0 0', 'cuda_order -1', 'mig 255 0 0', 'device extra', 'hide', 'mig_mode 1',
    'nam e x', 'process compute 1 18446744073709551616', 'bar1 1 2 3 4',
  ];
  const unparseable: fc.Arbitrary<Buffer> = fc.oneof(
    // A valid file with one broken line after the magic.
    fc.tuple(fc.nat(), fc.constantFrom(...brokenLines), fc.nat()).map(([which, line, at]) => {
      const lines = seedTexts[which % seedTexts.length]!.toString('utf8').split('\n');
      const i = 1 + (at % lines.length);
      return Buffer.from([...lines.slice(0, i), line, ...lines.slice(i)].join('\n'));
    }),
    // No magic line, a wrong version of it, or nothing at all.
    fc.tuple(fc.nat(), fc.constantFrom('', 'gpu-layers-mock-scenario 2', 'gpu-layers-mock-scenario', 'GPU-LAYERS-MOCK-SCENARIO 1', '# comment only')).map(([which, first]) => {
      const lines = seedTexts[which % seedTexts.length]!.toString('utf8').split('\n');
      return Buffer.from([first, ...lines.slice(1)].join('\n'));
    }),
    fc.uint8Array({ maxLength: 512 }).filter((a) => !Buffer.from(a).includes(MAGIC)).map((a) => Buffer.from(a)),
  );

  it('an unparseable file: nvmlInit fails with NVML_ERROR_UNKNOWN, cuInit with 999, as typed errors', { timeout: FUZZ_TIMEOUT_MS }, async () => {
    await fc.assert(
      fc.asyncProperty(unparseable, async (bytes) => {
        writeRaw(bytes);
        const error = await openProbe(libraries).then(
          async (probe) => {
            await probe.close();
            return null;
          },
          (e: unknown) => e,
        );
        expect(error, 'open must fail').toBeInstanceOf(GpuLayersError);
        expect(error).toMatchObject({ code: 'NVML_UNKNOWN', nvmlReturn: 999, message: expect.stringContaining('NVML_ERROR_UNKNOWN') });
        expect((error as GpuLayersError).cuda?.error?.code).toBe('CUDA_ERROR_UNKNOWN');
      }),
      fuzzParams(120),
    );
  });

  it('a file that becomes unparseable under an open probe: every call of the next sample fails with NVML_ERROR_UNKNOWN', { timeout: FUZZ_TIMEOUT_MS }, async () => {
    await fc.assert(
      fc.asyncProperty(unparseable, async (bytes) => {
        writeRaw(seedTexts[0]!);
        const probe = await openProbe(libraries);
        try {
          writeRaw(bytes);
          const sample = await probe.sample();
          expectSoundSample(sample);
          expect(sample.devices).toEqual([]);
          for (const key of ['driver.version', 'driver.nvmlVersion', 'driver.cudaDriverVersion', 'devices']) {
            expect(sample.errors[key], key).toMatchObject({ code: 'NVML_ERROR_UNKNOWN', nvmlReturn: 999 });
          }
          writeRaw(seedTexts[0]!);
          expect((await probe.sample()).devices).toHaveLength(2);
        } finally {
          await probe.close();
        }
      }),
      fuzzParams(60),
    );
  });
});
