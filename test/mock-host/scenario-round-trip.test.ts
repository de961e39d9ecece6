/**
 * Round trip, as a property (fast-check): an arbitrary valid Scenario object (drawn to match
 * scenarioSchema) → writeScenario → the mock libraries → openProbe + sample. The sample's figures
 * must be the scenario's: versions, names, UUIDs, PCI, memory, BAR1, utilization, MIG mode and
 * devices, processes with pids, bytes, types and instance ids. Where the scenario holds something
 * NVML cannot hand over (NVML_VALUE_NOT_AVAILABLE, a value past 2^53, a string longer than the
 * buffer, an impossible pid), the field is null and its errors entry gives the expected code.
 * The expected sample is computed from the scenario alone (the oracle below), never from output.
 * GPU_LAYERS_FUZZ_RUNS=N runs it N times.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, expect, it } from 'vitest';

import type { Scenario, ScenarioDevice, ScenarioProcess } from '../../src/mock-host/scenario-schema.js';
import { scenarioSchema } from '../../src/mock-host/scenario-schema.js';
import { writeScenario } from '../../src/mock-host/scenario-text.js';
import { openProbe } from '../../src/probe/probe.js';
import type { Sample } from '../../src/sample/schema.js';
import { nodeGypBuild } from '../helpers/paths.js';
import { FUZZ_TIMEOUT_MS, fuzzParams } from '../helpers/fuzz.js';

// CUDA stays unloaded: the mock CUDA fixes its device list at the first cuInit of the process,
// so it could not follow scenarios that change from one run to the next.
const options = { nvmlLibrary: nodeGypBuild.mockNvml, cudaLibrary: false as const, timeoutMs: 5000 };
let dir: string;
let file: string;
const previousScenario = process.env.GPU_LAYERS_MOCK_SCENARIO;

beforeAll(() => {
  dir = mkdtempSync(path.join(tmpdir(), 'gpu-layers-round-trip-'));
  file = path.join(dir, 'round-trip.scenario');
  writeScenario(file, { devices: [] });
  process.env.GPU_LAYERS_MOCK_SCENARIO = file;
});
afterAll(() => {
  process.env.GPU_LAYERS_MOCK_SCENARIO = previousScenario;
  rmSync(dir, { recursive: true, force: true });
});

// ---------------------------------------------------------------------------------------------
// Arbitraries, within scenarioSchema

const NA = 2n ** 64n - 1n;
type U64 = number | bigint | 'na';
type U32 = number | 'na';

const ascii = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.:/()';
const textUnit = fc.oneof({ weight: 12, arbitrary: fc.constantFrom(...`${ascii}  `) }, { weight: 1, arbitrary: fc.constantFrom('é', 'ß', '中', 'Ω', '\t', '\v') });
const wordUnit = fc.oneof({ weight: 12, arbitrary: fc.constantFrom(...ascii) }, { weight: 1, arbitrary: fc.constantFrom('é', '中', 'Ω') });
const text = fc.string({ unit: textUnit, minLength: 1, maxLength: 110 });
const word = fc.string({ unit: wordUnit, minLength: 1, maxLength: 110 });
const u64: fc.Arbitrary<U64> = fc.oneof(
  { weight: 8, arbitrary: fc.maxSafeNat() },
  { weight: 1, arbitrary: fc.bigInt({ min: 2n ** 53n, max: NA }) },
  { weight: 1, arbitrary: fc.constant(NA) },
  { weight: 1, arbitrary: fc.constant('na' as const) },
);
const percent: fc.Arbitrary<U32> = fc.oneof(
  { weight: 8, arbitrary: fc.integer({ min: 0, max: 100 }) },
  { weight: 1, arbitrary: fc.integer({ min: 101, max: 0xfffffffe }) },
  { weight: 1, arbitrary: fc.constantFrom(0xffffffff, 'na' as const) },
);
const u32OrNa = (max: number): fc.Arbitrary<U32> => fc.oneof({ weight: 9, arbitrary: fc.integer({ min: 0, max }) }, { weight: 1, arbitrary: fc.constant('na' as const) });
const bit = fc.constantFrom(0 as const, 1 as const, 'na' as const);
/** Pids from 100 (below, a pid could pass for a MIG instance id); now and then past PID_MAX_LIMIT. */
const pid = fc.oneof({ weight: 12, arbitrary: fc.integer({ min: 100, max: 4_194_304 }) }, { weight: 1, arbitrary: fc.integer({ min: 4_194_305, max: 0xffffffff }) });
const processArb: fc.Arbitrary<ScenarioProcess> = fc.record({ type: fc.constantFrom('compute' as const, 'graphics' as const, 'mps' as const), pid, usedBytes: u64 });
const memory = fc.record({ total: u64, reserved: u64, used: u64, free: u64 });

const migDevices = fc.uniqueArray(
  fc.record({
    slot: fc.oneof({ weight: 5, arbitrary: fc.integer({ min: 0, max: 6 }) }, { weight: 1, arbitrary: fc.integer({ min: 7, max: 70 }) }),
    // From 1: a MIG device with GPU and compute instance 0/0 whose driver writes rows of another
    // size than its version says is the one layout the addon cannot tell apart (see the report).
    gpuInstanceId: fc.integer({ min: 1, max: 14 }),
    computeInstanceId: fc.integer({ min: 0, max: 7 }),
    name: text,
    uuid: word,
    memory,
    processes: fc.array(processArb, { maxLength: 4 }),
  }),
  { selector: (mig) => mig.slot, maxLength: 3 },
);

const device: fc.Arbitrary<ScenarioDevice> = fc
  .record({
    name: text,
    uuid: word,
    pci: fc.record({ domain: u32OrNa(0xfffffffe), bus: u32OrNa(255), device: u32OrNa(31), pciDeviceId: u32OrNa(0xfffffffe), pciSubSystemId: u32OrNa(0xfffffffe) }),
    memory,
    bar1: fc.record({ total: u64, used: u64, free: u64 }),
    utilization: fc.record({ gpu: percent, memory: percent }),
    migMode: fc.record({ current: bit, pending: bit }),
    processes: fc.array(processArb, { maxLength: 5 }),
    migDevices,
  })
  // In MIG mode a GPU's processes are its MIG devices' (the mock gives the GPU's own none there).
  .map((d) => (d.migMode.current === 1 ? { ...d, processes: [] } : d));

const scenarioArb: fc.Arbitrary<Scenario> = fc
  .record({
    driverVersion: fc.oneof(word, fc.constantFrom('550.54.15', '535.54.03', '535.104.05')),
    nvmlVersion: word,
    cudaDriverVersion: fc.oneof(fc.integer({ min: -3, max: 20_000 }), fc.constant('na' as const)),
    devices: fc.array(device, { minLength: 1, maxLength: 3 }),
  })
  .map((s) => {
    // Every pid once on the host: a pid in two lists would be merged, which is fields.test.ts's subject.
    const seen = new Set<number>();
    const unique = (list: ScenarioProcess[] | undefined) => (list ?? []).filter((p) => !seen.has(p.pid) && seen.add(p.pid));
    // The rows a driver of that version writes (drivers 535.43-535.86: 32 bytes); rows of another
    // size than the version says are fault-matrix-special.test.ts's subject.
    const rows32 = /^535\.(4[3-9]|[5-8]\d|9[0-7])(\D|$)/.test(s.driverVersion);
    return {
      ...s,
      ...(rows32 ? { processRowBytes: 32 as const } : {}),
      devices: s.devices.map((d) => ({ ...d, processes: unique(d.processes), migDevices: d.migDevices?.map((m) => ({ ...m, processes: unique(m.processes) })) })),
    };
  });

// ---------------------------------------------------------------------------------------------
// The oracle: what the sample must say, from the scenario alone

type Errors = Record<string, string>;
const trimC = (s: string): string => s.replace(/^[ \t\n\v\f\r]+|[ \t\n\v\f\r]+$/g, '');
const PID_MAX_LIMIT = 4_194_304;
const isNa = (v: U64): boolean => v === 'na' || v === NA || v === 0xffffffff;

/** A string through an NVML buffer of `buffer` bytes (the NUL included). */
function viaBuffer(value: string, buffer: number, key: string, errors: Errors): string | null {
  if (Buffer.byteLength(value, 'utf8') + 1 > buffer) {
    errors[key] = 'NVML_ERROR_INSUFFICIENT_SIZE';
    return null;
  }
  return value;
}

function bytes(value: U64, key: string, errors: Errors): number | null {
  if (value === 'na' || value === NA) {
    errors[key] = 'VALUE_NOT_AVAILABLE';
    return null;
  }
  if (typeof value === 'bigint' || !Number.isSafeInteger(value)) {
    errors[key] = 'VALUE_OUT_OF_RANGE';
    return null;
  }
  return value;
}

function expectedMemory(m: NonNullable<ScenarioDevice['memory']>, errors: Errors) {
  return {
    totalBytes: bytes(m.total, 'memory.totalBytes', errors),
    usedBytes: bytes(m.used, 'memory.usedBytes', errors),
    freeBytes: bytes(m.free, 'memory.freeBytes', errors),
    reservedBytes: bytes(m.reserved, 'memory.reservedBytes', errors),
    version: 2,
  };
}

const KINDS = ['compute', 'graphics', 'mps'] as const;

/** One device's three lists, as NVML gives them: rows with the instance ids of `ids`. */
function expectedProcesses(rows: { process: ScenarioProcess; ids: [number, number] | null }[], errors: Errors) {
  const out: unknown[] = [];
  for (const kind of KINDS) {
    const list = rows.filter((r) => r.process.type === kind);
    const implausible = list.some((r) => r.process.pid > PID_MAX_LIMIT || (typeof r.process.usedBytes === 'bigint' && r.process.usedBytes !== NA));
    if (implausible) {
      errors[`processes.${kind}`] = 'ROWS_IMPLAUSIBLE';
      continue;
    }
    for (const { process, ids } of list) {
      const processErrors: Errors = {};
      const usedBytes = bytes(process.usedBytes, 'usedBytes', processErrors);
      out.push({
        pid: process.pid,
        usedBytes,
        types: [kind],
        gpuInstanceId: ids?.[0] ?? null,
        computeInstanceId: ids?.[1] ?? null,
        ...(Object.keys(processErrors).length > 0 ? { errors: processErrors } : {}),
      });
    }
  }
  // Without the compute list (where CUDA workloads are) the processes are unknown.
  if (errors['processes.compute'] !== undefined) {
    errors.processes = errors['processes.compute'];
    return null;
  }
  return out;
}

function hex(value: number, digits: number): string {
  return value.toString(16).toUpperCase().padStart(digits, '0');
}

function expectedDevice(d: ScenarioDevice, index: number) {
  const errors: Errors = { cudaOrdinal: 'CUDA_UNAVAILABLE' };
  const migOn = d.migMode!.current === 1;
  const migs = migOn ? [...(d.migDevices ?? [])].sort((a, b) => a.slot - b.slot) : [];
  const maxSlots = Math.max(7, ...migs.map((m) => m.slot + 1));
  const pci = d.pci!;
  const pciFields = [pci.domain, pci.bus, pci.device, pci.pciDeviceId, pci.pciSubSystemId];
  const util = d.utilization!;
  const percentOf = (value: U32, key: string): number | null => {
    if (isNa(value)) {
      errors[key] = 'VALUE_NOT_AVAILABLE';
      return null;
    }
    if ((value as number) > 100) {
      errors[key] = 'VALUE_OUT_OF_RANGE';
      return null;
    }
    return value as number;
  };
  const rows = migOn
    ? migs.flatMap((m) => (m.processes ?? []).map((process) => ({ process, ids: [m.gpuInstanceId as number, m.computeInstanceId as number] as [number, number] })))
    : (d.processes ?? []).map((process) => ({ process, ids: null }));
  const out = {
    index,
    uuid: viaBuffer(d.uuid!, 96, 'uuid', errors),
    name: viaBuffer(trimC(d.name!), 96, 'name', errors),
    cudaOrdinal: null,
    pci: pciFields.some((v) => isNa(v))
      ? ((errors.pci = 'VALUE_NOT_AVAILABLE'), null)
      : {
          busId: `${hex(pci.domain as number, 8)}:${hex(pci.bus as number, 2)}:${hex(pci.device as number, 2)}.0`,
          domain: pci.domain,
          bus: pci.bus,
          device: pci.device,
          pciDeviceId: pci.pciDeviceId,
          pciSubSystemId: pci.pciSubSystemId,
        },
    memory: expectedMemory(d.memory!, errors),
    bar1: { totalBytes: bytes(d.bar1!.total, 'bar1.totalBytes', errors), usedBytes: bytes(d.bar1!.used, 'bar1.usedBytes', errors), freeBytes: bytes(d.bar1!.free, 'bar1.freeBytes', errors) },
    // Not supported on a GPU in MIG mode.
    utilization: migOn ? ((errors.utilization = 'NVML_ERROR_NOT_SUPPORTED'), null) : { gpuPercent: percentOf(util.gpu, 'utilization.gpuPercent'), memoryPercent: percentOf(util.memory, 'utilization.memoryPercent') },
    mig:
      d.migMode!.current === 'na'
        ? ((errors.mig = 'VALUE_NOT_AVAILABLE'), null)
        : {
            enabled: migOn,
            pendingEnabled: d.migMode!.pending === 'na' ? ((errors['mig.pendingEnabled'] = 'VALUE_NOT_AVAILABLE'), null) : d.migMode!.pending === 1,
            devices: migs
              .filter((m) => m.slot < Math.min(maxSlots, 64))
              .map((m) => {
                const migErrors: Errors = { cudaOrdinal: 'CUDA_UNAVAILABLE' };
                return {
                  slot: m.slot,
                  uuid: viaBuffer(m.uuid!, 96, 'uuid', migErrors),
                  name: viaBuffer(trimC(m.name!), 96, 'name', migErrors),
                  gpuInstanceId: m.gpuInstanceId,
                  computeInstanceId: m.computeInstanceId,
                  cudaOrdinal: null,
                  memory: expectedMemory(m.memory!, migErrors),
                  processes: expectedProcesses((m.processes ?? []).map((process) => ({ process, ids: [m.gpuInstanceId as number, m.computeInstanceId as number] })), migErrors),
                  errors: migErrors,
                };
              }),
          },
    processes: expectedProcesses(rows, errors),
    errors,
  };
  if (migOn && maxSlots > 64) errors['mig.devices'] = 'VALUE_OUT_OF_RANGE';
  return out;
}

function expectedSample(s: Scenario) {
  const errors: Errors = {};
  const cuda = s.cudaDriverVersion!;
  const cudaDriverVersion =
    cuda === 'na' || cuda === -1 ? ((errors['driver.cudaDriverVersion'] = 'VALUE_NOT_AVAILABLE'), null) : cuda < 0 ? ((errors['driver.cudaDriverVersion'] = 'VALUE_OUT_OF_RANGE'), null) : cuda;
  return {
    driver: {
      version: viaBuffer(s.driverVersion!, 80, 'driver.version', errors),
      nvmlVersion: viaBuffer(s.nvmlVersion!, 80, 'driver.nvmlVersion', errors),
      cudaDriverVersion,
    },
    devices: s.devices.map(expectedDevice),
    errors,
  };
}

/** The sample with every errors entry reduced to its code, and processes in pid order. */
function comparable(sample: Sample) {
  const codes = (errors: Record<string, { code: string }>): Errors => Object.fromEntries(Object.entries(errors).map(([k, e]) => [k, e.code]));
  const processes = (list: Sample['devices'][number]['processes']) =>
    list === null ? null : [...list].sort((a, b) => a.pid - b.pid).map((p) => (p.errors === undefined ? p : { ...p, errors: codes(p.errors) }));
  return {
    driver: sample.driver,
    devices: sample.devices.map((d) => ({
      ...d,
      mig: d.mig === null ? null : { ...d.mig, devices: d.mig.devices.map((m) => ({ ...m, processes: processes(m.processes), errors: codes(m.errors) })) },
      processes: processes(d.processes),
      errors: codes(d.errors),
    })),
    errors: codes(sample.errors),
  };
}

function sortedExpectation(expected: ReturnType<typeof expectedSample>) {
  const byPid = (list: unknown[] | null) => (list === null ? null : [...(list as { pid: number }[])].sort((a, b) => a.pid - b.pid));
  return {
    ...expected,
    devices: expected.devices.map((d) => ({
      ...d,
      processes: byPid(d.processes),
      mig: d.mig === null ? null : { ...d.mig, devices: d.mig.devices.map((m) => ({ ...m, processes: byPid(m.processes) })) },
    })),
  };
}

it('every drawn scenario is valid for scenarioSchema', () => {
  fc.assert(fc.property(scenarioArb, (s) => scenarioSchema.safeParse(s).success), fuzzParams(200));
});

it('a sample reads back the scenario it was given', { timeout: FUZZ_TIMEOUT_MS }, async () => {
  await fc.assert(
    fc.asyncProperty(scenarioArb, async (scenario) => {
      writeScenario(file, scenario);
      const probe = await openProbe(options);
      let sample: Sample;
      try {
        sample = await probe.sample();
      } finally {
        await probe.close();
      }
      expect(comparable(sample)).toEqual(sortedExpectation(expectedSample(scenario)));
    }),
    fuzzParams(150),
  );
});
