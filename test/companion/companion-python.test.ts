/**
 * The Python companion, run by real python3 inside a host program that imports a fake torch:
 * enabled through PYTHONPATH alone (sitecustomize), writes <pid>.json atomically with torch's
 * figures and the process start time, never touches CUDA before torch initialised it, never
 * raises into the host, reaches spawned workers, and removes its file at exit.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest';

import { companionFileSchema } from '../../src/sources/companion.js';
import { parseStatStartTime } from '../../src/sources/proc-files.js';
import { python, repoRoot } from '../helpers/paths.js';

const companionDir = path.join(repoRoot, 'python/gpu_layers_companion');
const fakeTorch = path.join(repoRoot, 'test/fixtures/fake-torch');
const GiB = 2 ** 30;

let work: string;
let statsDir: string;
let stateFile: string;
const children: ChildProcess[] = [];

function setState(state: unknown): void {
  writeFileSync(`${stateFile}.tmp`, JSON.stringify(state));
  // Atomic, like the companion's own files, so the fake never reads half a state.
  writeFileSync(stateFile, readFileSync(`${stateFile}.tmp`));
}

const stats = (reserved: number, allocated: number, extra: Record<string, number> = {}) => ({
  'reserved_bytes.all.current': reserved,
  'allocated_bytes.all.current': allocated,
  'active_bytes.all.current': allocated + 1024,
  'inactive_split_bytes.all.current': 3 * 1024 ** 2,
  'requested_bytes.all.current': allocated - 512,
  'reserved_bytes.all.peak': reserved,
  'allocated_bytes.all.peak': allocated,
  num_alloc_retries: 2,
  num_ooms: 0,
  'allocation.all.current': 1234, // a key the companion does not copy
  ...extra,
});

/** Runs `code` (as a script file) in python3 with the companion on PYTHONPATH, nothing imported by hand. */
function runHost(code: string, extraPath: string[] = [], env: Record<string, string> = {}): { child: ChildProcess; output: () => string; exited: Promise<number | null> } {
  // A file, not -c: multiprocessing's spawn re-imports the main module by path.
  const script = path.join(work, `host-${children.length}.py`);
  writeFileSync(script, code);
  const child = spawn(python, [script], {
    env: {
      ...process.env,
      PYTHONPATH: [companionDir, ...extraPath, fakeTorch].join(':'),
      GPU_LAYERS_STATS_DIR: statsDir,
      GPU_LAYERS_STATS_INTERVAL: '0.1',
      FAKE_TORCH_STATE: stateFile,
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.push(child);
  let output = '';
  child.stdout!.on('data', (chunk) => (output += chunk));
  child.stderr!.on('data', (chunk) => (output += chunk));
  const exited = new Promise<number | null>((resolve) => child.on('exit', resolve));
  return { child, output: () => output, exited };
}

async function waitFor<T>(probe: () => T | undefined | null | false, ms = 5000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const value = probe();
    if (value) return value;
    if (Date.now() > end) throw new Error('timed out waiting');
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

function readDocument(pid: number): ReturnType<typeof companionFileSchema.parse> | undefined {
  try {
    return companionFileSchema.parse(JSON.parse(readFileSync(path.join(statsDir, `${pid}.json`), 'utf8')));
  } catch {
    return undefined;
  }
}

beforeEach(() => {
  work = mkdtempSync(path.join(tmpdir(), 'gpu-layers-companion-'));
  statsDir = path.join(work, 'stats');
  stateFile = path.join(work, 'torch-state.json');
});
afterEach(() => {
  for (const child of children.splice(0)) child.kill('SIGKILL');
  rmSync(work, { recursive: true, force: true });
});
afterAll(() => {
  for (const child of children) child.kill('SIGKILL');
});

const SLEEPER = 'import time, torch\nprint("ready", flush=True)\ntime.sleep(30)\n';

describe('the companion', () => {
  it('writes torch figures, the UUID, private pools and its start time, and keeps them fresh', async () => {
    setState({
      initialized: true,
      devices: [
        {
          name: 'NVIDIA H100 80GB HBM3',
          uuid: '5d8a1e0c-7f3b-4a62-9c1e-2b8f0d4e6a17',
          stats: stats(60 * GiB, 52 * GiB, {
            'reserved_bytes_by_private_pools.0_1.all.current': 700 * 1024 ** 2,
            'reserved_bytes_by_private_pools.0_2.all.current': 100 * 1024 ** 2,
            'reserved_bytes_by_private_pools.0_1.all.peak': 9 * GiB,
          }),
        },
      ],
    });
    const host = runHost(SLEEPER);
    const pid = host.child.pid!;
    const first = await waitFor(() => readDocument(pid));
    expect(first).toMatchObject({
      format: 'gpu-layers-companion',
      version: 1,
      pid,
      intervalSeconds: 0.1,
      torchVersion: '2.5.1+fake',
      errors: [],
      devices: [{ index: 0, name: 'NVIDIA H100 80GB HBM3', uuid: '5d8a1e0c-7f3b-4a62-9c1e-2b8f0d4e6a17', privatePoolBytes: 800 * 1024 ** 2 }],
    });
    const expectedStats = stats(60 * GiB, 52 * GiB) as Record<string, number>;
    delete expectedStats['allocation.all.current'];
    expect(first.devices[0]!.stats).toEqual(expectedStats);
    expect(first.startTimeTicks).toBe(parseStatStartTime(readFileSync(`/proc/${pid}/stat`, 'utf8')));
    expect(Math.abs(first.writtenAt - Date.now() / 1000)).toBeLessThan(5);

    setState({ initialized: true, devices: [{ uuid: 'x', stats: stats(61 * GiB, 50 * GiB) }] });
    const later = await waitFor(() => {
      const d = readDocument(pid);
      return d !== undefined && d.devices[0]!.stats['reserved_bytes.all.current'] === 61 * GiB ? d : undefined;
    });
    expect(later.writtenAt).toBeGreaterThan(first.writtenAt);
    // No stray temporary files next to the result.
    expect(readdirSync(statsDir)).toEqual([`${pid}.json`]);
    expect(existsSync(`${stateFile}.violations`)).toBe(false);
  });

  it('writes nothing and touches nothing in torch.cuda until CUDA is initialised', async () => {
    setState({ initialized: false, devices: [{ uuid: 'u', stats: stats(1, 1) }] });
    const host = runHost(SLEEPER);
    await waitFor(() => host.output().includes('ready'));
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect(existsSync(path.join(statsDir, `${host.child.pid}.json`))).toBe(false);
    expect(existsSync(`${stateFile}.violations`)).toBe(false);
    setState({ initialized: true, devices: [{ uuid: 'u', stats: stats(1, 1) }] });
    await waitFor(() => readDocument(host.child.pid!));
  });

  it('privatePoolBytes is null when this torch does not break reserved bytes down by pool', async () => {
    setState({ initialized: true, devices: [{ uuid: 'u', stats: stats(5, 4) }] });
    const host = runHost(SLEEPER);
    expect((await waitFor(() => readDocument(host.child.pid!))).devices[0]!.privatePoolBytes).toBeNull();
  });

  it('reports the largest free block per device only when GPU_LAYERS_STATS_SEGMENTS=1', async () => {
    const segments = [
      { device: 0, blocks: [{ size: 6 * GiB, state: 'active_allocated' }, { size: 2 * GiB, state: 'inactive' }, { size: 3 * GiB, state: 'inactive' }] },
      { device: 0, blocks: [{ size: 1 * GiB, state: 'inactive' }] },
      { device: 1, blocks: [{ size: 4 * GiB, state: 'active_allocated' }] },
      { device: 1, segment_pool_id: [0, 1], total_size: 3 * GiB, blocks: [{ size: 2 * GiB, state: 'active_allocated' }, { size: 1 * GiB, state: 'inactive' }] },
    ];
    setState({ initialized: true, segments, devices: [{ uuid: 'a', stats: stats(10, 6) }, { uuid: 'b', stats: stats(4, 4) }] });
    const withSegments = runHost(SLEEPER, [], { GPU_LAYERS_STATS_SEGMENTS: '1' });
    const document = await waitFor(() => readDocument(withSegments.child.pid!));
    expect(document.devices.map((d) => d.largestFreeBlockBytes)).toEqual([3 * GiB, 1 * GiB]);
    // torch without per-pool keys in memory_stats (2.11): the pools come from the segments.
    expect(document.devices.map((d) => d.privatePoolBytes)).toEqual([0, 3 * GiB]);
    expect(document.devices.map((d) => d.privatePoolAllocatedBytes)).toEqual([0, 2 * GiB]);
    const without = runHost(SLEEPER);
    expect((await waitFor(() => readDocument(without.child.pid!))).devices[0]!.largestFreeBlockBytes).toBeUndefined();
  });

  it('never raises into the host program: a failing memory_stats goes into the file', async () => {
    setState({ initialized: true, devices: [{ uuid: 'u', raise: 'CUDA error: an illegal memory access' }] });
    const host = runHost('import time, torch\ntime.sleep(0.6)\nprint("still alive", flush=True)\n');
    expect(await host.exited).toBe(0);
    expect(host.output()).toBe('still alive\n');
  });

  it('records the failure in the file while the host runs on', async () => {
    setState({ initialized: true, devices: [{ uuid: 'u', raise: 'CUDA error: an illegal memory access' }] });
    const host = runHost(SLEEPER);
    const document = await waitFor(() => readDocument(host.child.pid!));
    expect(document.devices).toEqual([]);
    expect(document.errors.join()).toMatch(/illegal memory access/);
  });

  it('removes its file when the process exits', async () => {
    setState({ initialized: true, devices: [{ uuid: 'u', stats: stats(5, 4) }] });
    const host = runHost('import time, torch, os\ntime.sleep(0.5)\nprint(os.path.exists(os.path.join(os.environ["GPU_LAYERS_STATS_DIR"], "%d.json" % os.getpid())), flush=True)\n');
    expect(await host.exited).toBe(0);
    expect(host.output()).toBe('True\n');
    expect(readdirSync(statsDir)).toEqual([]);
  });

  it('reaches workers started with multiprocessing spawn (as vLLM starts them)', async () => {
    setState({ initialized: true, devices: [{ uuid: 'u', stats: stats(5, 4) }] });
    const code = [
      'import multiprocessing as mp, os, time',
      'def work(q):',
      '    import torch',
      '    q.put(os.getpid())',
      '    time.sleep(1.0)',
      'if __name__ == "__main__":',
      '    mp.set_start_method("spawn")',
      '    q = mp.Queue()',
      '    p = mp.Process(target=work, args=(q,))',
      '    p.start()',
      '    print(q.get(), flush=True)',
      '    p.join()',
    ].join('\n');
    const host = runHost(code);
    const worker = Number(await waitFor(() => /^(\d+)\n/.exec(host.output())?.[1]));
    expect(worker).not.toBe(host.child.pid);
    expect((await waitFor(() => readDocument(worker))).pid).toBe(worker);
  });

  it('still runs the sitecustomize it shadows', async () => {
    const other = path.join(work, 'other-site');
    mkdirSync(other);
    const marker = path.join(work, 'marker');
    writeFileSync(path.join(other, 'sitecustomize.py'), `open(${JSON.stringify(marker)}, "w").write("ran")\n`);
    setState({ initialized: false, devices: [] });
    const host = runHost('print("ok")', [other]);
    expect(await host.exited).toBe(0);
    expect(readFileSync(marker, 'utf8')).toBe('ran');
  });

  it('is off without GPU_LAYERS_STATS_DIR', async () => {
    setState({ initialized: true, devices: [{ uuid: 'u', stats: stats(5, 4) }] });
    const host = runHost('import time, torch, threading\ntime.sleep(0.4)\nprint([t.name for t in threading.enumerate()], flush=True)\n', [], { GPU_LAYERS_STATS_DIR: '' });
    expect(await host.exited).toBe(0);
    expect(host.output()).not.toMatch(/gpu-layers-companion/);
    expect(existsSync(statsDir)).toBe(false);
  });
});

describe("the companion's host part (glibc malloc and Python, read in-process)", () => {
  const MiB = 2 ** 20;
  type Document = NonNullable<ReturnType<typeof readDocument>>;
  const after = (pid: number, seconds: number, accept: (d: Document) => boolean = () => true) =>
    waitFor(() => {
      const d = readDocument(pid);
      return d !== undefined && d.writtenAt > seconds && accept(d) ? d : undefined;
    });

  it('follows the workload: an mmapped chunk, and a thread arena that mallinfo2 counts too', async () => {
    setState({ initialized: true, devices: [{ uuid: 'u', stats: stats(5, 4) }] });
    const go = path.join(work, 'go');
    const code = [
      'import ctypes, os, sys, threading, time, torch',
      `GO = ${JSON.stringify(go)}`,
      'def wait_for(name):',
      '    while not os.path.exists(name):',
      '        time.sleep(0.01)',
      'wait_for(GO)',
      'big = bytearray(200 * 2**20)  # above the mmap threshold: one mmapped chunk',
      'libc = ctypes.CDLL(None)',
      'libc.malloc.restype = ctypes.c_void_p',
      'libc.malloc.argtypes = [ctypes.c_size_t]',
      'kept, done, hold = [], threading.Event(), threading.Event()',
      'def allocate():  # 25 MiB in 64 KiB blocks, under the threshold: in this thread\'s own arena',
      '    for _ in range(400):',
      '        p = libc.malloc(65536)',
      '        ctypes.memset(p, 1, 65536)',
      '        kept.append(p)',
      '    done.set()',
      '    hold.wait()',
      'threading.Thread(target=allocate, daemon=True).start()',
      'done.wait()',
      'print("allocated %f" % time.time(), flush=True)',
      'wait_for(GO + ".2")',
      'print("tracemalloc loaded: %s" % ("tracemalloc" in sys.modules), flush=True)',
      'time.sleep(30)',
    ].join('\n');
    // Up to 8 arenas glibc makes a new one for each new thread, whatever the cores.
    const host = runHost(code, [], { MALLOC_ARENA_MAX: '8' });
    const pid = host.child.pid!;
    const before = await waitFor(() => readDocument(pid)?.host?.malloc?.arenaCount != null && readDocument(pid));
    writeFileSync(go, '');
    const allocatedAt = Number(await waitFor(() => /allocated ([\d.]+)/.exec(host.output())?.[1]));
    const later = await after(pid, allocatedAt, (d) => d.host?.malloc?.arenaCount != null);
    writeFileSync(`${go}.2`, '');
    const [b, a] = [before.host!.malloc!, later.host!.malloc!];
    expect(a.mmappedBytes - b.mmappedBytes).toBeGreaterThanOrEqual(200 * MiB);
    expect(a.mmappedChunks - b.mmappedChunks).toBeGreaterThanOrEqual(1);
    // The thread's 25 MiB is in its own heap: mallinfo2 covers it only if it sums every arena.
    expect(a.arenaCount! - b.arenaCount!).toBeGreaterThanOrEqual(1);
    expect(a.arenaBytes - b.arenaBytes).toBeGreaterThanOrEqual(25 * MiB);
    expect(a.inUseBytes - b.inUseBytes).toBeGreaterThanOrEqual(225 * MiB);
    expect(a.inUseBytes - b.inUseBytes).toBeLessThan(225 * MiB + 32 * MiB);
    expect(a.inUseBytes).toBeGreaterThanOrEqual(a.mmappedBytes);
    expect(a.arenaBytes).toBeGreaterThanOrEqual(a.inUseBytes - a.mmappedBytes);
    expect(later.host).toMatchObject({ mallocUnknownBecause: null, python: { tracedBytes: null } });
    expect(Number.isInteger(later.host!.python!.allocatedBlocks) && later.host!.python!.allocatedBlocks > 0).toBe(true);
    expect(later.errors).toEqual([]);
    // Read, never started: without the program's own import, tracemalloc is not even loaded.
    await waitFor(() => host.output().includes('tracemalloc loaded'));
    expect(host.output()).toMatch(/tracemalloc loaded: False/);
    expect(existsSync(`${stateFile}.violations`)).toBe(false);
  });

  it("reports tracemalloc's traced bytes when the program started it", async () => {
    setState({ initialized: true, devices: [{ uuid: 'u', stats: stats(5, 4) }] });
    const code = [
      'import time, tracemalloc',
      'tracemalloc.start()',
      'import torch',
      'kept = [bytes(1000) for _ in range(2000)]',
      'print("kept %f" % time.time(), flush=True)',
      'time.sleep(30)',
    ].join('\n');
    const host = runHost(code);
    const keptAt = Number(await waitFor(() => /kept ([\d.]+)/.exec(host.output())?.[1]));
    const document = await after(host.child.pid!, keptAt, (d) => d.host?.python != null);
    // 2,000 live objects of 1,000 bytes each, all traced.
    expect(document.host!.python!.tracedBytes).toBeGreaterThanOrEqual(2000 * 1000);
    expect(document.host!.python!.allocatedBlocks).toBeGreaterThan(0);
  });

  // ctypes.CDLL seen through a wrapper that hides symbols: the companion's own lookup then meets
  // a C library without them, as on glibc < 2.33 (mallinfo only) or musl (neither).
  it.each([
    ['glibc older than 2.33', ['mallinfo2'], /older than 2\.33 has only mallinfo\(\).*wrap past 2 GiB/],
    ['musl', ['mallinfo2', 'mallinfo'], /no glibc malloc statistics in this C library/],
  ])('without mallinfo2 (%s): malloc null with the reason, never mallinfo() figures', async (_, hidden, reason) => {
    setState({ initialized: true, devices: [{ uuid: 'u', stats: stats(5, 4) }] });
    const code = [
      'import ctypes, time',
      `HIDDEN = ${JSON.stringify(hidden)}`,
      'Real = ctypes.CDLL',
      'class Hiding:',
      '    def __init__(self, name, *args, **kwargs):',
      '        self._lib = Real(name, *args, **kwargs)',
      '    def __getattr__(self, name):',
      '        if name in HIDDEN:',
      '            raise AttributeError(name)',
      '        return getattr(self._lib, name)',
      'ctypes.CDLL = Hiding',
      'import torch',
      'time.sleep(30)',
    ].join('\n');
    const host = runHost(code);
    const document = await waitFor(() => readDocument(host.child.pid!));
    expect(document.host!.malloc).toBeNull();
    expect(document.host!.mallocUnknownBecause).toMatch(reason);
    expect(document.host!.python!.allocatedBlocks).toBeGreaterThan(0);
    expect(document.errors).toEqual([]);
    expect(document.devices).toHaveLength(1);
  });

  it('skips a read that overran its budget, and says so, instead of slowing every write', async () => {
    setState({ initialized: true, devices: [{ uuid: 'u', stats: stats(5, 4) }] });
    const code = [
      'import time, gpu_layers_companion',
      'gpu_layers_companion.HOST_READ_BUDGET_SECONDS = 1e-9  # every read overruns it',
      'import torch',
      'time.sleep(30)',
    ].join('\n');
    const host = runHost(code);
    const document = await waitFor(() => {
      const d = readDocument(host.child.pid!);
      return d?.host?.malloc === null ? d : undefined;
    });
    expect(document.host!.mallocUnknownBecause).toMatch(/^mallinfo2\(\) took [\d.]+ ms at the last read .* it is read once in \d+ writes$/);
    expect(document.host!.python).toBeNull();
    expect(document.devices[0]!.stats['reserved_bytes.all.current']).toBe(5);
    expect(document.errors).toEqual([]);
  });
});
