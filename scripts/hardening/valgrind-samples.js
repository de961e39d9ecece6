/*
 * The workload scripts/hardening/check-native-memory.sh runs under valgrind memcheck: the real (node-gyp)
 * addon against the mock NVML and CUDA libraries, sampling many times while the scenario file is
 * rewritten between samples with a different fault each time (injected return codes, strings
 * without a NUL, process lists that grow between the count and fill calls, 16/24/32-byte rows,
 * 'na' values, MIG devices, a broken file), reopening probes with hidden symbols and failing
 * opens, and closing everything at the end so that what is left at exit is a leak. The faults are
 * drawn from a seeded generator: a finding reproduces with the same --seed.
 *
 *   node scripts/hardening/valgrind-samples.js [--samples 1000] [--per-probe 50] [--seed 1]
 *
 * Prints one JSON line of counts (samples taken, rejected, probes opened, opens that failed) and
 * exits 1 when fewer samples than asked were attempted. The addon and the mocks default to
 * build/Release; GPU_LAYERS_ADDON, GPU_LAYERS_NVML_LIB and GPU_LAYERS_CUDA_LIB override them.
 */
import { mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

import { seededRandom } from './seeded-random.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const { values: args } = parseArgs({
  options: {
    samples: { type: 'string', default: '1000' },
    'per-probe': { type: 'string', default: '50' },
    seed: { type: 'string', default: '1' },
  },
});
const SAMPLES = Number(args.samples);
const PER_PROBE = Number(args['per-probe']);

const addonPath = process.env.GPU_LAYERS_ADDON || path.join(root, 'build/Release/gpu_layers.node');
const nvmlLibrary = process.env.GPU_LAYERS_NVML_LIB || path.join(root, 'build/Release/mock/libnvidia-ml.so.1');
const cudaLibrary = process.env.GPU_LAYERS_CUDA_LIB || path.join(root, 'build/Release/mock/libcuda.so.1');

const dir = mkdtempSync(path.join(tmpdir(), 'gpu-layers-valgrind-'));
const scenarioFile = path.join(dir, 'host.scenario');
// Set before the mocks are loaded: they read it with getenv on every pass.
process.env.GPU_LAYERS_MOCK_SCENARIO = scenarioFile;
delete process.env.GPU_LAYERS_MOCK_TRACE;

const { openProbe } = await import(path.join(root, 'dist/index.js'));
const { writeScenario } = await import(path.join(root, 'dist/mock.js'));
// The same module object openProbe loads (require caches by path): the symbol tables name every
// exported function the faults can target.
const addon = createRequire(import.meta.url)(addonPath);
const nvmlNames = Object.values(addon.nvmlSymbols).flat();
const cudaNames = Object.values(addon.cudaSymbols).flat();
const PROCESS_FNS = nvmlNames.filter((name) => name.includes('RunningProcesses'));
const STRING_FNS = ['nvmlDeviceGetName', 'nvmlDeviceGetUUID', 'nvmlSystemGetDriverVersion', 'nvmlSystemGetNVMLVersion'];
// NVML codes a driver really returns, plus an unknown (999) and a negative one. 0: the mock reports
// success without writing the outputs (where it supports that), so the addon must not read them
// uninitialised.
const RETURN_CODES = [0, 1, 2, 3, 4, 6, 7, 9, 13, 15, 18, 999, -1];
// Count-returning calls and what a faulty driver may claim there. `count` directives are newer
// than some builds of the mock: used only when this dist's scenario schema knows them.
const COUNT_FNS = ['nvmlDeviceGetCount_v2', 'nvmlDeviceGetMaxMigDeviceCount', 'cuDeviceGetCount', ...PROCESS_FNS];
const COUNTS = [0, 3, 1025, 70_000, 0xffffffff];
const countsSupported = (() => {
  try {
    writeScenario(scenarioFile, { count: [{ symbol: 'nvmlDeviceGetCount_v2', count: 1 }], devices: [] });
    return true;
  } catch {
    return false;
  }
})();

const random = seededRandom(Number(args.seed));
const int = (n) => Math.floor(random() * n);
const pick = (list) => list[int(list.length)];
const chance = (p) => random() < p;

const GiB = 1024 ** 3;
let nextPid = 1000;

function bytes() {
  if (chance(0.08)) return 'na';
  if (chance(0.03)) return 2n ** 60n; // implausible: above 2^53, the addon must reject the rows
  return int(80) * GiB + int(1 << 20);
}

function processes(count, mig) {
  return Array.from({ length: count }, () => {
    const p = { type: pick(['compute', 'compute', 'graphics', 'mps']), pid: chance(0.02) ? 4194305 + int(10) : ++nextPid, usedBytes: bytes() };
    if (mig !== undefined && chance(0.3)) Object.assign(p, { gpuInstanceId: chance(0.1) ? 'na' : mig.gpuInstanceId, computeInstanceId: mig.computeInstanceId });
    return p;
  });
}

function device(index) {
  const total = 80 * GiB;
  const d = {
    name: `Mock GPU ${index} ${'x'.repeat(int(90))}`,
    uuid: `GPU-${(0x10000000 + index).toString(16)}-0000-4000-8000-${index.toString(16).padStart(12, '0')}`,
    pci: { domain: 0, bus: 0x18 + index, device: 0, pciDeviceId: 0x233010de, pciSubSystemId: 0x16c110de },
    memory: chance(0.1) ? { total: 'na', reserved: 'na', used: 'na', free: 'na' } : { total, reserved: int(GiB), used: bytes(), free: bytes() },
    bar1: chance(0.1) ? { total: 'na', used: 'na', free: 'na' } : { total: 128 * GiB, used: int(GiB), free: 127 * GiB },
    utilization: chance(0.1) ? { gpu: 'na', memory: 'na' } : { gpu: int(101), memory: int(101) },
    migMode: { current: 0, pending: int(2) },
    contextBytes: 512 * 1024 * 1024,
    processes: processes(chance(0.1) ? 0 : int(chance(0.05) ? 300 : 12), undefined),
  };
  if (chance(0.25)) {
    d.migMode = { current: 1, pending: 1 };
    d.migDevices = Array.from({ length: int(4) }, (_, i) => {
      const mig = { slot: chance(0.1) ? 9 + i : i, gpuInstanceId: 1 + i, computeInstanceId: int(3) };
      return { ...mig, memory: { total: 10 * GiB, reserved: 0, used: bytes(), free: bytes() }, processes: processes(int(5), mig) };
    });
  }
  return d;
}

function target(devices) {
  if (chance(0.4) || devices === 0) return {};
  const device = int(devices + 1); // sometimes a device past the last
  return chance(0.3) ? { device, migSlot: int(4) } : { device };
}

/** The scenario of one sample: a host of 0-5 GPUs and a handful of faults. */
function sampleScenario(base) {
  const count = chance(0.05) ? 0 : 1 + int(5);
  const devices = Array.from({ length: count }, (_, i) => device(i));
  const s = { ...base, devices };
  const rc = [];
  for (let i = int(4); i > 0; --i) rc.push({ symbol: pick(nvmlNames), rc: pick(RETURN_CODES), ...target(count) });
  if (chance(0.05)) rc.push({ symbol: '*', rc: pick(RETURN_CODES), ...target(count) });
  if (chance(0.1)) rc.push({ symbol: pick(PROCESS_FNS), rc: 7, ...target(count) }); // INSUFFICIENT_SIZE forever
  if (rc.length > 0) s.rc = rc;
  if (countsSupported && chance(0.1)) s.count = [{ symbol: pick(COUNT_FNS), count: pick(COUNTS), ...target(count) }];
  if (chance(0.3)) s.unterminated = STRING_FNS.filter(() => chance(0.5));
  if (chance(0.3)) s.grow = { processes: 1 + int(chance(0.2) ? 400 : 5), calls: chance(0.3) ? 'always' : 1 + int(6) };
  s.processRowBytes = pick([16, 24, 24, 32]);
  return s;
}

/** What a probe opens with: symbols only matter at open (dlsym), CUDA is read only at open. */
function openScenario(round) {
  const base = { driverVersion: '550.54.15', nvmlVersion: '12.550.54.15', cudaDriverVersion: 12040 };
  switch (round % 6) {
    case 1: // an older driver: every newest generation hidden
      return { ...base, hide: nvmlNames.filter((n) => /_v[23]$/.test(n)).concat(['cuDeviceGetUuid_v2']) };
    case 2: // the oldest: only the plain names, and calls that do not exist at all
      return { ...base, hide: nvmlNames.filter((n) => /_v[23]$|Mig|BAR1|Utilization|Graphics/.test(n)) };
    case 3: // drivers 535.43-535.86 write 32-byte _v3 rows; the version string decides
      return { ...base, driverVersion: '535.54.03', processRowBytes: 32 };
    case 4: // no version string: the row size comes from which symbols exist
      return { ...base, hide: ['nvmlSystemGetDriverVersion', 'nvmlDeviceGetRunningProcessDetailList'], cudaOrder: [2, 0, 1] };
    case 5: // CUDA faults at open
      return { ...base, rc: [{ symbol: pick(cudaNames), rc: pick([1, 100, 101, 999]) }], unterminated: ['nvmlSystemGetDriverVersion'] };
    default:
      return base;
  }
}

function writeBroken() {
  const temporary = `${scenarioFile}.broken.tmp`;
  writeFileSync(temporary, 'gpu-layers-mock-scenario 1\ndevice\nmemory 1 2\n');
  renameSync(temporary, scenarioFile);
}

const counts = { countDirectives: countsSupported, samples: 0, sampleErrors: 0, opens: 0, failedOpens: 0, devicesSeen: 0, processesSeen: 0, errorCodes: {}, fieldErrors: {} };
// Field errors (a failed call inside a sample that still succeeded) show the faults reached the
// native code; their total is reported, by code.
const countFieldError = (error) => {
  const code = error?.code ?? 'UNCODED';
  counts.fieldErrors[code] = (counts.fieldErrors[code] ?? 0) + 1;
};
const countError = (error) => {
  const code = error?.code ?? 'UNCODED';
  counts.errorCodes[code] = (counts.errorCodes[code] ?? 0) + 1;
};

const options = { addonPath, nvmlLibrary, cudaLibrary, timeoutMs: 60_000 };
let round = 0;
try {
  while (counts.samples < SAMPLES) {
    // Every third round first tries an open that must fail (init refused, or init itself failing).
    if (round % 3 === 2) {
      writeScenario(scenarioFile, { nvmlInitRc: pick([9, 18, 999]), devices: [device(0)] });
      try {
        const probe = await openProbe(options);
        await probe.close();
        counts.opens++;
      } catch (error) {
        counts.failedOpens++;
        countError(error);
      }
    }
    const base = openScenario(round);
    writeScenario(scenarioFile, { ...base, devices: [device(0), device(1), device(2)] });
    let probe;
    try {
      probe = await openProbe(options);
      counts.opens++;
    } catch (error) {
      counts.failedOpens++;
      countError(error);
      round++;
      continue;
    }
    try {
      for (let i = 0; i < PER_PROBE && counts.samples < SAMPLES; ++i) {
        if (chance(0.03)) writeBroken();
        else writeScenario(scenarioFile, sampleScenario(base));
        counts.samples++;
        try {
          const sample = await probe.sample();
          counts.devicesSeen += sample.devices.length;
          for (const d of sample.devices) {
            counts.processesSeen += d.processes?.length ?? 0;
            for (const error of Object.values(d.errors ?? {})) countFieldError(error);
          }
          for (const error of Object.values(sample.errors ?? {})) countFieldError(error);
        } catch (error) {
          counts.sampleErrors++;
          countError(error);
        }
      }
    } finally {
      await probe.close();
    }
    round++;
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
console.log(JSON.stringify(counts));
process.exitCode = counts.samples === SAMPLES ? 0 : 1;
