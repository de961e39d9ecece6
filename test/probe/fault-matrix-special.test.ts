/**
 * The faults of the matrix that are not a return code: a call slower than the deadline on every
 * symbol a sample calls (the trace proves no second native call starts while it is stuck), a
 * process list that grows on every call, every row size against every driver version and symbol
 * generation, strings that fill their buffer with no NUL, counts larger than any buffer, and
 * NVML_VALUE_NOT_AVAILABLE in every numeric field of the scenario. No crash, no hang, no value the
 * driver did not give: the fields concerned are null with a typed reason, the rest is intact.
 * The event loop's delay around every probe call is measured as in fault-matrix.test.ts.
 */
import { isDeepStrictEqual } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { GpuLayersError } from '../../src/errors.js';
import type { Scenario } from '../../src/mock-host/scenario-schema.js';
import { formatScenario } from '../../src/mock-host/scenario-text.js';
import { loadAddon } from '../../src/binding/addon.js';
import { resolveProbeOptions } from '../../src/probe/options.js';
import { openProbe, type Probe } from '../../src/probe/probe.js';
import type { ProbeInfo } from '../../src/probe/open-result.js';
import { sampleSchema, type GpuProcess, type Sample } from '../../src/sample/schema.js';
import { createMockHost, type MockHost } from '../helpers/mock-host.js';
import { nodeGypBuild } from '../helpers/paths.js';
import { GiB, MiB, h100 } from '../helpers/scenarios.js';
import {
  TraceReader,
  at,
  baselineHost,
  differences,
  dotted,
  hugeNumbers,
  measured,
  owner,
  ownDelay,
  reasonFor,
  settleLoopDelays,
  unexplainedNulls,
  unreasonedChanges,
  worst,
  type LoopDelay,
  type Remeasure,
} from '../helpers/fault-matrix.js';

const libraries = { nvmlLibrary: nodeGypBuild.mockNvml, cudaLibrary: nodeGypBuild.mockCuda };
const addon = loadAddon(resolveProbeOptions({}).addonPath);
const LOOP_BOUND_MS = 20;

const mock: MockHost = createMockHost(baselineHost(), { trace: true });
const trace = new TraceReader(mock.traceFile);
const loopDelays: LoopDelay[] = [];
/** Fresh-probe runs whose first measurement reached the bound, to be measured again. */
const remeasure = new Map<string, Remeasure>();
const unhandled: unknown[] = [];
const onUnhandled = (reason: unknown): void => {
  unhandled.push(reason);
};

beforeAll(() => {
  process.on('unhandledRejection', onUnhandled);
});
afterAll(() => {
  process.off('unhandledRejection', onUnhandled);
  mock.remove();
});

/**
 * Open, sample, close in a fresh probe, under the event-loop meter; a run whose own delay reaches
 * the bound is kept to be measured again (the last test).
 */
async function sampleFresh(scenario: Scenario, name: string, into: LoopDelay[] = loopDelays): Promise<{ sample: Sample; info: ProbeInfo }> {
  mock.write(scenario);
  const result = await measured(name, into, async () => {
    const probe = await openProbe({ ...libraries, timeoutMs: 5000 });
    try {
      return { sample: await probe.sample(), info: probe.info };
    } finally {
      await probe.close();
    }
  });
  if (into === loopDelays && ownDelay(into[into.length - 1]!) >= LOOP_BOUND_MS) remeasure.set(name, (again) => sampleFresh(scenario, name, again));
  return result;
}

function expectSound(sample: Sample): void {
  const parsed = sampleSchema.safeParse(sample);
  expect(parsed.success, parsed.success ? '' : parsed.error.message).toBe(true);
  expect(hugeNumbers(sample), 'numbers the driver cannot have meant').toEqual([]);
  expect(unexplainedNulls(sample), 'null fields without a reason').toEqual([]);
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

// ---------------------------------------------------------------------------------------------

const DEADLINE_MS = 150;
const WEDGE_MS = 350;
/** One GPU in MIG mode with one MIG device (the driver claims one slot): every per-sample call once or twice. */
const wedgeHost: Scenario = {
    ...baselineHost(),
    devices: [
      h100(0, [], {
        migMode: { current: 1, pending: 1 },
        migDevices: [
          {
            slot: 0,
            gpuInstanceId: 1,
            computeInstanceId: 0,
            uuid: 'MIG-cccccccc-0000-4000-8000-000000000001',
            processes: [
              { type: 'compute', pid: 3101, usedBytes: 1 * GiB },
              { type: 'graphics', pid: 3102, usedBytes: 8 * MiB },
              { type: 'mps', pid: 3103, usedBytes: 1 * GiB },
            ],
          },
        ],
      }),
    ],
  count: [{ symbol: 'nvmlDeviceGetMaxMigDeviceCount', count: 1 }],
};

/** The calls one sample of the wedge host makes, in order, read from the mock's trace. */
async function callsOfOneSample(): Promise<string[]> {
  mock.write(wedgeHost);
  const probe = await openProbe(libraries);
  try {
    trace.mark();
    await probe.sample();
    return trace.read();
  } finally {
    await probe.close();
  }
}
const sampleCalls = await callsOfOneSample();
const wedgeSymbols = [...new Set(sampleCalls.map((line) => line.split(' ')[0]!))];

describe('a call slower than the deadline, on every symbol a sample calls', () => {
  const host = wedgeHost;
  let probe: Probe;
  let baseline: Sample;

  beforeAll(async () => {
    mock.write(host);
    probe = await openProbe({ ...libraries, timeoutMs: DEADLINE_MS });
    baseline = await probe.sample();
  });
  afterAll(() => probe.close());

  it('the symbols come from the trace of a sample, and cover every per-sample call', () => {
    const perSample = ['nvmlSystemGetDriverVersion', 'nvmlDeviceGetCount_v2', 'nvmlDeviceGetHandleByIndex_v2', 'nvmlDeviceGetMigDeviceHandleByIndex', 'nvmlDeviceGetComputeInstanceId', 'nvmlDeviceGetMPSComputeRunningProcesses_v3'];
    for (const symbol of perSample) expect(wedgeSymbols).toContain(symbol);
  });

  it.each(wedgeSymbols)('%s: NVML_TIMEOUT at the deadline, no second native call, then recovery', { timeout: 20_000 }, (symbol) => wedge(symbol));

  async function wedge(symbol: string): Promise<void> {
    mock.write({ ...host, delay: [{ symbol, ms: WEDGE_MS }] });
    trace.mark();
    const stuckCalls: string[] = [];
    let refused = 0;
    let worstRefusalMs = 0;
    const recovered = await measured(`wedged ${symbol}`, loopDelays, async () => {
      const started = performance.now();
      const error = await probe.sample().then(
        () => null,
        (e: unknown) => e,
      );
      const elapsed = performance.now() - started;
      // At the deadline, not when the call returns: the native sample has not finished yet (its
      // last call is not in the trace). The bound on the time is loose: the cores are shared.
      const callsSoFar = trace.read();
      expect(error, `${symbol} delayed ${WEDGE_MS} ms`).toBeInstanceOf(GpuLayersError);
      expect((error as GpuLayersError).code).toBe('NVML_TIMEOUT');
      expect(elapsed).toBeGreaterThanOrEqual(DEADLINE_MS - 2);
      expect(elapsed).toBeLessThan(DEADLINE_MS + 1000);
      expect(callsSoFar.length, 'calls the stuck sample had made at the deadline').toBeLessThan(sampleCalls.length);
      stuckCalls.push(...callsSoFar);
      mock.write(host); // the call after the stuck one finds no delay
      // While the call is stuck, every sample fails at once without a native call of its own.
      for (;;) {
        const asked = performance.now();
        const outcome = await probe.sample().then(
          (sample) => sample,
          (e: unknown) => e,
        );
        if (outcome instanceof GpuLayersError && /earlier sample/.test(outcome.message)) {
          refused++;
          worstRefusalMs = Math.max(worstRefusalMs, performance.now() - asked);
          await sleep(10);
          continue;
        }
        return outcome;
      }
    });
    expect(refused, 'samples refused while the call was stuck').toBeGreaterThan(0);
    expect(worstRefusalMs).toBeLessThan(250);
    expect(recovered, 'the sample after the stuck call returned').not.toBeInstanceOf(Error);
    expect(differences(baseline, recovered)).toEqual([]);
    // Exactly two native samples ran, one after the other: the stuck one and the recovery.
    expect([...stuckCalls, ...trace.read()]).toEqual([...sampleCalls, ...sampleCalls]);
  }
});

// ---------------------------------------------------------------------------------------------

describe('a process list that grows on every call', () => {
  const processSymbols = Object.values(addon.nvmlSymbols).flat().filter((s) => /RunningProcesses_v3$/.test(s));

  it('grows by one: bounded retries, the list as of the call that fit', async () => {
    const scenario: Scenario = { ...baselineHost(), grow: { processes: 1, calls: 'always' } };
    const baseline = (await sampleFresh(baselineHost(), 'grow baseline')).sample;
    trace.mark();
    const { sample } = await sampleFresh(scenario, 'grow 1 always');
    const calls = trace.read();
    expectSound(sample);
    for (const symbol of processSymbols) {
      // Two GPUs and two MIG devices: at most five calls per list.
      expect(calls.filter((line) => line.startsWith(`${symbol} `)).length).toBeLessThanOrEqual(4 * 5);
    }
    const grown = (p: GpuProcess): boolean => p.pid >= 3_000_000;
    for (const [d, device] of sample.devices.entries()) {
      const before = baseline.devices[d]!.processes!;
      expect(device.processes!.filter((p) => !grown(p))).toEqual(before);
      expect(device.processes!.filter(grown).length).toBeGreaterThan(0);
    }
  });

  it('grows past any buffer: a typed error after bounded retries, never a hang', { timeout: 20_000 }, async () => {
    const scenario: Scenario = { ...baselineHost(), grow: { processes: 30_000, calls: 'always' } };
    trace.mark();
    const started = performance.now();
    const { sample } = await sampleFresh(scenario, 'grow 30000 always');
    expect(performance.now() - started).toBeLessThan(5000);
    const calls = trace.read();
    expectSound(sample);
    for (const symbol of processSymbols) expect(calls.filter((line) => line.startsWith(`${symbol} `)).length).toBeLessThanOrEqual(4 * 5);
    for (const device of sample.devices) {
      expect(device.processes).toBeNull();
      expect(device.errors.processes?.code).toBe('NVML_ERROR_INSUFFICIENT_SIZE');
      expect(device.errors['processes.graphics']).toBeDefined();
    }
  });
});

// ---------------------------------------------------------------------------------------------

describe('process row size against driver version and symbol generation', () => {
  const kinds = ['Compute', 'Graphics', 'MPSCompute'];
  const v3 = kinds.map((k) => `nvmlDeviceGet${k}RunningProcesses_v3`);
  const v2 = kinds.map((k) => `nvmlDeviceGet${k}RunningProcesses_v2`);
  const drivers = [
    { version: '550.54.15', v3Rows: 24 },
    { version: '535.54.03', v3Rows: 32 },
    { version: '535.104.05', v3Rows: 24 },
    // Unreadable at open: the symbol rule decides (the mock exports both dating symbols: 24).
    { version: null, v3Rows: 24 },
  ];
  const generations = [
    { name: '_v3', hide: [] as string[], rows: (v3Rows: number) => v3Rows, writes: [16, 24, 32] },
    { name: '_v2', hide: v3, rows: () => 24, writes: [24] },
    { name: 'v1', hide: [...v3, ...v2], rows: () => 16, writes: [16] },
  ];
  /** Lists of one, two and five rows, with pids and sizes that look alike across row sizes. */
  const processSets: Scenario['devices'][] = [1, 2, 5].map((n) => [
    h100(0, Array.from({ length: n }, (_, i) => ({ type: (['compute', 'graphics', 'mps'] as const)[i % 3]!, pid: 4000 + i, usedBytes: (i + 1) * 4096 }))),
    h100(1, [], {
      migMode: { current: 1, pending: 0 },
      migDevices: [
        { slot: 1, gpuInstanceId: 7, computeInstanceId: 0, processes: Array.from({ length: n }, (_, i) => ({ type: 'compute' as const, pid: 5000 + i, usedBytes: 24 + i })) },
      ],
    }),
  ]);
  const cases = drivers.flatMap((driver) =>
    generations.flatMap((generation) =>
      generation.writes.flatMap((writes) => processSets.map((devices, set) => ({ driver, generation, writes, devices, set }))),
    ),
  );

  it.each(cases.map((c) => [`${c.driver.version ?? 'unknown version'} ${c.generation.name} writing ${c.writes}-byte rows, set ${c.set}`, c] as const))(
    '%s: the right processes or ROWS_IMPLAUSIBLE, never wrong ones',
    async (name, c) => {
      const base: Scenario = {
        driverVersion: c.driver.version ?? '550.54.15',
        hide: c.generation.hide,
        devices: c.devices,
        ...(c.driver.version === null ? { rc: [{ symbol: 'nvmlSystemGetDriverVersion', rc: 3 }] } : {}),
      };
      const expectedRows = c.generation.rows(c.driver.v3Rows);
      // The truth: the same host with the rows the addon expects; 16-byte rows carry no instance
      // ids, so for them the truth is what the v1 call gives.
      const truthHost: Scenario =
        c.writes === 16 ? { ...base, hide: [...v3, ...v2] } : { ...base, processRowBytes: expectedRows === 16 ? 24 : (expectedRows as 24 | 32) };
      const truth = (await sampleFresh(truthHost, `${name} truth`)).sample;
      const { sample } = await sampleFresh({ ...base, processRowBytes: c.writes as 16 | 24 | 32 }, name);
      expectSound(sample);
      expect(sample.library.processRowBytes).toEqual({ compute: expectedRows, graphics: expectedRows, mps: expectedRows });
      const devices = (s: Sample) => s.devices.flatMap((d) => [d, ...(d.mig?.devices ?? [])]);
      const truthDevices = devices(truth);
      for (const [i, device] of devices(sample).entries()) {
        const want = truthDevices[i]!;
        if (isDeepStrictEqual(device.processes, want.processes)) continue;
        // Not the processes: then the list that went wrong says so.
        const implausible = Object.entries(device.errors).filter(([key, e]) => key.startsWith('processes') && e.code === 'ROWS_IMPLAUSIBLE');
        expect(implausible.length, `${name}: processes ${JSON.stringify(device.processes)} vs ${JSON.stringify(want.processes)}`).toBeGreaterThan(0);
        const failed = implausible.map(([key]) => key.split('.')[1]).filter((k) => k !== undefined);
        if (device.processes !== null) {
          const kept = (want.processes ?? []).map((p) => ({ ...p, types: p.types.filter((t) => !failed.includes(t)) })).filter((p) => p.types.length > 0);
          expect(device.processes).toEqual(kept);
        }
      }
    },
  );
});

// ---------------------------------------------------------------------------------------------

describe('strings that fill their buffer with no NUL', () => {
  const all = [...Object.values(addon.nvmlSymbols).flat(), ...Object.values(addon.cudaSymbols).flat()];
  /** Where the string of each string call lands. */
  const fields: Record<string, (s: Sample, info: ProbeInfo) => { value: unknown; error?: string }[]> = {
    nvmlSystemGetDriverVersion: (s) => [{ value: s.driver.version, error: s.errors['driver.version']?.code }],
    nvmlSystemGetNVMLVersion: (s) => [{ value: s.driver.nvmlVersion, error: s.errors['driver.nvmlVersion']?.code }],
    nvmlDeviceGetName: (s) => s.devices.flatMap((d) => [d, ...(d.mig?.devices ?? [])]).map((d) => ({ value: d.name, error: d.errors.name?.code })),
    nvmlDeviceGetUUID: (s) => s.devices.flatMap((d) => [d, ...(d.mig?.devices ?? [])]).map((d) => ({ value: d.uuid, error: d.errors.uuid?.code })),
    cuDeviceGetName: (_, info) => info.cudaDevices.map((d) => ({ value: d.name })),
  };
  let baseline: { sample: Sample; info: ProbeInfo };
  beforeAll(async () => {
    baseline = await sampleFresh(baselineHost(), 'unterminated baseline');
  });

  it.each(all)('unterminated %s', async (symbol) => {
    const { sample, info } = await sampleFresh({ ...baselineHost(), unterminated: [symbol] }, `unterminated ${symbol}`);
    expectSound(sample);
    const field = fields[symbol];
    if (field === undefined) {
      // Not a string call: nothing changes.
      expect(differences(baseline.sample, sample)).toEqual([]);
      expect(differences(baseline.info, info)).toEqual([]);
      return;
    }
    const values = field(sample, info);
    expect(values.length).toBeGreaterThan(0);
    for (const { value, error } of values) {
      expect(value).toBeNull();
      if (!symbol.startsWith('cu')) expect(error).toBe('STRING_UNTERMINATED');
    }
    // The cut-off name changes the CUDA side only in probe.info; the sample is otherwise intact.
    expect(unreasonedChanges(baseline.sample, sample)).toEqual([]);
  });
});

// ---------------------------------------------------------------------------------------------

describe('counts larger than any buffer', () => {
  const huge = [0xffffffff, 0x80000000, 65_537];
  let baseline: Sample;
  beforeAll(async () => {
    baseline = (await sampleFresh(baselineHost(), 'count baseline')).sample;
  });

  /** The heap and the resident set may not grow by anything like the count claims. */
  async function bounded<T>(work: () => Promise<T>): Promise<T> {
    const before = process.memoryUsage().rss;
    const started = performance.now();
    const value = await work();
    expect(performance.now() - started).toBeLessThan(5000);
    expect(process.memoryUsage().rss - before).toBeLessThan(64 * 1024 * 1024);
    return value;
  }

  it.each(huge)('nvmlDeviceGetCount_v2 claiming %i: the first 1024 read, VALUE_OUT_OF_RANGE', async (count) => {
    const { sample } = await bounded(() => sampleFresh({ ...baselineHost(), count: [{ symbol: 'nvmlDeviceGetCount_v2', count }] }, `device count ${count}`));
    expectSound(sample);
    expect(sample.errors.devices).toMatchObject({ code: 'VALUE_OUT_OF_RANGE', message: expect.stringContaining(String(count)) });
    expect(sample.devices).toHaveLength(1024);
    expect(sample.devices.slice(0, 2)).toEqual(baseline.devices);
    for (const device of sample.devices.slice(2)) expect(device).toMatchObject({ uuid: null, errors: { device: { code: 'NVML_ERROR_INVALID_ARGUMENT' } } });
  });

  const processSymbols = Object.values(addon.nvmlSymbols).flat().filter((s) => /RunningProcesses_v3$/.test(s));
  it.each(processSymbols.flatMap((symbol) => [...huge, 100].map((count) => [symbol, count] as const)))('%s claiming %i rows: a typed error, no huge buffer', async (symbol, count) => {
    const { sample } = await bounded(() => sampleFresh({ ...baselineHost(), count: [{ symbol, count }] }, `${symbol} count ${count}`));
    expectSound(sample);
    const kind = symbol.includes('Compute') && !symbol.includes('MPS') ? 'compute' : symbol.includes('Graphics') ? 'graphics' : 'mps';
    for (const device of sample.devices.flatMap((d) => [d, ...(d.mig?.devices ?? [])])) {
      expect(device.errors[`processes.${kind}`]?.code).toBe(count > 65_536 ? 'VALUE_OUT_OF_RANGE' : 'ROWS_IMPLAUSIBLE');
    }
    expect(unreasonedChanges(baseline, sample)).toEqual([]);
  });

  it.each(huge)('nvmlDeviceGetMaxMigDeviceCount claiming %i: the first 64 slots read, VALUE_OUT_OF_RANGE', async (count) => {
    const { sample } = await bounded(() => sampleFresh({ ...baselineHost(), count: [{ symbol: 'nvmlDeviceGetMaxMigDeviceCount', count }] }, `max MIG ${count}`));
    expectSound(sample);
    // All ones is also NVML's "not available".
    expect(sample.devices[1]!.errors['mig.devices']?.code).toBe(count === 0xffffffff ? 'VALUE_NOT_AVAILABLE' : 'VALUE_OUT_OF_RANGE');
    expect(sample.devices[1]!.mig!.devices).toEqual(baseline.devices[1]!.mig!.devices);
    expect(unreasonedChanges(baseline, sample)).toEqual([]);
  });

  it.each([...huge, 100_000])('cuDeviceGetCount claiming %i: CUDA says it cannot be, ordinals stay right or null', async (count) => {
    const { sample, info } = await bounded(() => sampleFresh({ ...baselineHost(), count: [{ symbol: 'cuDeviceGetCount', count }] }, `CUDA count ${count}`));
    expectSound(sample);
    expect(sample.cuda.error).toMatchObject({ code: 'VALUE_OUT_OF_RANGE' });
    expect(sample.cuda.deviceCount).toBeNull();
    expect(info.cudaDevices.length).toBeLessThanOrEqual(1024);
    expect(unreasonedChanges(baseline, sample, (path) => path.startsWith('cuda.'))).toEqual([]);
  });
});

// ---------------------------------------------------------------------------------------------

describe('NVML_VALUE_NOT_AVAILABLE in every numeric field', () => {
  type Path = (string | number)[];
  /** Every number of the baseline scenario, by path. */
  function numericLeaves(node: unknown, path: Path = []): Path[] {
    if (typeof node === 'number') return [path];
    if (Array.isArray(node)) return node.flatMap((item, i) => numericLeaves(item, [...path, i]));
    if (typeof node === 'object' && node !== null) return Object.entries(node).flatMap(([key, value]) => numericLeaves(value, [...path, key]));
    return [];
  }
  function withValue(scenario: Scenario, path: Path, value: unknown): Scenario {
    const copy = structuredClone(scenario) as unknown as Record<string | number, unknown>;
    let node = copy;
    for (const key of path.slice(0, -1)) node = node[key] as Record<string | number, unknown>;
    node[path[path.length - 1]!] = value;
    return copy as unknown as Scenario;
  }
  /** The scenario with NVML's "not available" at `path`: 'na', or all ones where the field takes no 'na'. */
  function notAvailableAt(path: Path): Scenario | null {
    for (const value of ['na', 0xffffffff]) {
      const scenario = withValue(baselineHost(), path, value);
      try {
        formatScenario(scenario);
        return scenario;
      } catch {
        // this field takes no such value
      }
    }
    return null;
  }

  const host = baselineHost();
  const leaves = numericLeaves(host);
  const slotOf = (d: number, m: number): number => host.devices[d]!.migDevices![m]!.slot;
  /** Where a scenario field shows in a sample: the field that must be null, and its errors map. */
  function target(path: Path, sample: Sample): { value: unknown; reason: string | null } | 'process gone' {
    const p = dotted(path);
    const sampleBytes = (s: string): string => ({ total: 'totalBytes', reserved: 'reservedBytes', used: 'usedBytes', free: 'freeBytes' })[s] ?? s;
    let m: RegExpMatchArray | null;
    const reasonAt = (samplePath: Path): { value: unknown; reason: string | null } => {
      const { errors, rest } = owner(sample, samplePath);
      const key = reasonFor(errors, rest);
      return { value: at(sample, samplePath), reason: key === null ? null : errors[key]!.code };
    };
    if (p === 'cudaDriverVersion') return reasonAt(['driver', 'cudaDriverVersion']);
    if ((m = p.match(/^devices\.(\d+)\.(memory|bar1)\.(\w+)$/))) return reasonAt(['devices', +m[1]!, m[2]!, sampleBytes(m[3]!)]);
    if ((m = p.match(/^devices\.(\d+)\.utilization\.(gpu|memory)$/))) return reasonAt(['devices', +m[1]!, 'utilization', `${m[2]}Percent`]);
    if ((m = p.match(/^devices\.(\d+)\.pci\.\w+$/))) return reasonAt(['devices', +m[1]!, 'pci']);
    if ((m = p.match(/^devices\.(\d+)\.migMode\.current$/))) return reasonAt(['devices', +m[1]!, 'mig']);
    if ((m = p.match(/^devices\.(\d+)\.migMode\.pending$/))) return reasonAt(['devices', +m[1]!, 'mig', 'pendingEnabled']);
    const processAt = (devicePath: Path, pid: number, field: string): { value: unknown; reason: string | null } | 'process gone' => {
      const processes = at(sample, [...devicePath, 'processes']) as GpuProcess[] | null;
      const i = processes?.findIndex((proc) => proc.pid === pid) ?? -1;
      if (i < 0) return 'process gone';
      return reasonAt([...devicePath, 'processes', i, field]);
    };
    if ((m = p.match(/^devices\.(\d+)\.processes\.(\d+)\.(usedBytes|pid)$/))) {
      const pid = host.devices[+m[1]!]!.processes![+m[2]!]!.pid;
      return processAt(['devices', +m[1]!], pid, m[3]!);
    }
    const migPath = (d: string, mig: string): Path => {
      const slot = slotOf(+d, +mig);
      const index = (sample.devices[+d]!.mig?.devices ?? []).findIndex((x) => x.slot === slot);
      return ['devices', +d, 'mig', 'devices', index];
    };
    if ((m = p.match(/^devices\.(\d+)\.migDevices\.(\d+)\.memory\.(\w+)$/))) return reasonAt([...migPath(m[1]!, m[2]!), 'memory', sampleBytes(m[3]!)]);
    if ((m = p.match(/^devices\.(\d+)\.migDevices\.(\d+)\.(gpuInstanceId|computeInstanceId)$/))) return reasonAt([...migPath(m[1]!, m[2]!), m[3]!]);
    if ((m = p.match(/^devices\.(\d+)\.migDevices\.(\d+)\.processes\.(\d+)\.(usedBytes|pid)$/))) {
      const pid = host.devices[+m[1]!]!.migDevices![+m[2]!]!.processes![+m[3]!]!.pid;
      return processAt(migPath(m[1]!, m[2]!), pid, m[4]!);
    }
    throw new Error(`no rule says where ${p} shows in a sample`);
  }

  let baseline: Sample;
  beforeAll(async () => {
    baseline = (await sampleFresh(host, 'na baseline')).sample;
  });

  it('every numeric field of the scenario takes NVML_VALUE_NOT_AVAILABLE, except a MIG slot', () => {
    const without = leaves.filter((path) => notAvailableAt(path) === null).map(dotted);
    expect(without).toEqual(['devices.1.migDevices.0.slot', 'devices.1.migDevices.1.slot']);
  });

  it.each(leaves.filter((path) => notAvailableAt(path) !== null).map((path) => [dotted(path), path] as const))('%s not available: null with a reason, never a huge number', async (name, path) => {
    const { sample } = await sampleFresh(notAvailableAt(path)!, `na ${name}`);
    expectSound(sample);
    const shown = target(path, sample);
    if (shown === 'process gone') {
      // A pid of all ones: the list's rows are impossible, and say so.
      const codes = Object.values(sample.devices.flatMap((d) => [d, ...(d.mig?.devices ?? [])]).flatMap((d) => Object.values(d.errors))).map((e) => e.code);
      expect(codes).toContain('ROWS_IMPLAUSIBLE');
    } else {
      expect(shown.value ?? null, `${name} in the sample`).toBeNull();
      expect(shown.reason, `${name}'s reason`).toMatch(/^(VALUE_NOT_AVAILABLE|ROWS_IMPLAUSIBLE|NVML_ERROR_NOT_SUPPORTED)$/);
    }
    // The rest is intact. A MIG mode the driver cannot give changes what the mock reports for
    // that GPU (no MIG view at all), so that GPU is left out of the comparison.
    const migModeOf = name.match(/^devices\.(\d+)\.migMode\.current$/);
    const skip = (p: string): boolean => migModeOf !== null && p.startsWith(`devices.${migModeOf[1]}.`);
    expect(unreasonedChanges(baseline, sample, skip)).toEqual([]);
  });
});

// ---------------------------------------------------------------------------------------------

describe('throughout', () => {
  // A fresh-probe run over the bound is measured again and counts by its best run (settleLoopDelays).
  it(`the event loop never waited ${LOOP_BOUND_MS} ms on the probe's own work, and no rejection went unhandled`, { timeout: 60_000 }, async () => {
    const settled = await settleLoopDelays(loopDelays, remeasure, LOOP_BOUND_MS);
    const max = Math.max(...settled.map(ownDelay));
    console.info(
      `fault-matrix special cases: ${loopDelays.length} measured probe runs; event-loop delay max ${Math.max(...loopDelays.map((d) => d.maxMs)).toFixed(1)} ms ` +
        `(worst: ${worst(loopDelays, 3)}); ${remeasure.size} run(s) over ${LOOP_BOUND_MS} ms of own CPU measured again; ` +
        `the part the process's own CPU time accounts for, after that: max ${max.toFixed(1)} ms (${worst(settled, 3, ownDelay)})`,
    );
    expect(max, worst(settled, 5, ownDelay)).toBeLessThan(LOOP_BOUND_MS);
    expect(unhandled).toEqual([]);
  });
});
