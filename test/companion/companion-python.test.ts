/**
 * The Python companion, run by real python3 inside a host program that imports a fake torch:
 * enabled through PYTHONPATH alone (sitecustomize), writes <pid>.json atomically with torch's
 * figures and the process start time, never touches CUDA before torch initialised it, never
 * raises into the host, reaches spawned workers, and removes its file at exit. A CUDA
 * out-of-memory raised through the fake allocator's observer path is in the file at once.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest';

import { analyzeSnapshot } from '../../src/snapshot/analyze-snapshot.js';
import { companionFileSchema, companionOomSnapshotPath } from '../../src/sources/companion.js';
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

describe('a CUDA out-of-memory, through PyTorch\'s out-of-memory observer', () => {
  const MiB = 2 ** 20;
  const DEVICE = { uuid: 'u', total_memory: 80 * GiB, free: 300 * MiB, stats: stats(60 * GiB, 52 * GiB) };
  const MESSAGE = 'CUDA out of memory. Tried to allocate 3.00 GiB. GPU 0 has a total capacity of 80.00 GiB of which 300.00 MiB is free.';
  /** Python: waits until the companion attached its observer (at its first write), then defines oom(). */
  const PRELUDE = [
    'import json, os, sys, threading, time, torch',
    'import gpu_layers_companion as companion',
    'FILE = os.path.join(os.environ["GPU_LAYERS_STATS_DIR"], "%d.json" % os.getpid())',
    'deadline = time.time() + 20',
    'while not torch._C._oom_observers and time.time() < deadline:',
    '    time.sleep(0.01)',
    'print("attached %d" % len(torch._C._oom_observers), flush=True)',
    'def oom(alloc=3 * 2**30, device=0):',
    '    try:',
    '        torch.cuda._fake_oom(device, alloc)',
    '    except torch.cuda.OutOfMemoryError as error:',
    '        return "%s: %s" % (type(error).__name__, error)',
    '    return "not raised"',
    'def file_oom():',
    '    with open(FILE) as f:',
    '        return json.load(f)["oom"]',
  ].join('\n');
  const lines = (output: string, tag: string) =>
    output
      .split('\n')
      .filter((line) => line.startsWith(`${tag} `))
      .map((line) => JSON.parse(line.slice(tag.length + 1)) as unknown);
  const stateWith = (extra: Record<string, unknown> = {}) => setState({ initialized: true, devices: [DEVICE], ...extra });

  it('writes the file before the OutOfMemoryError reaches the workload, which sees it unaltered; a second OOM raises the count', async () => {
    stateWith();
    const code = [
      PRELUDE,
      'print("caught " + json.dumps(oom()), flush=True)',
      'print("file " + json.dumps(file_oom()), flush=True)  # read at once: no tick in between',
      'time.sleep(1.1)  # past the one write a second',
      'print("caught " + json.dumps(oom(5 * 2**30)), flush=True)',
      'print("file " + json.dumps(file_oom()), flush=True)',
      'print("done", flush=True)',
      'time.sleep(30)',
    ].join('\n');
    // Every 2 s: the observer is attached at the first write, and the second OOM comes before the next.
    const host = runHost(code, [], { GPU_LAYERS_STATS_INTERVAL: '2' });
    const pid = host.child.pid!;
    await waitFor(() => host.output().includes('done'), 15_000);
    expect(host.output()).toMatch(/^attached 1\n/);
    expect(lines(host.output(), 'caught')).toEqual([`OutOfMemoryError: ${MESSAGE}`, `OutOfMemoryError: ${MESSAGE.replace('3.00 GiB', '5.00 GiB')}`]);
    const [first, second] = lines(host.output(), 'file') as Array<Record<string, unknown>>;
    expect(first).toEqual({
      count: 1,
      at: expect.any(Number),
      device: 0,
      requestedBytes: 3 * GiB,
      deviceTotalBytes: 80 * GiB,
      deviceFreeBytes: 300 * MiB,
      snapshot: null,
      snapshotError: null,
    });
    expect(second).toMatchObject({ count: 2, requestedBytes: 5 * GiB, snapshot: null, snapshotError: null });
    expect(second!.at as number).toBeGreaterThan((first!.at as number) + 1);
    // The file as gpu-layers reads it: the allocator's figures of that moment (torch counted the OOMs).
    const document = readDocument(pid)!;
    expect(document.oom).toEqual(second);
    expect(document.devices[0]!.stats.num_ooms).toBe(2);
    expect(document.errors).toEqual([]);
    // Later ticks keep the last OOM, so a reader that samples every few seconds still sees it.
    const later = await waitFor(() => {
      const d = readDocument(pid);
      return d !== undefined && d.writtenAt > document.writtenAt + 1 ? d : undefined;
    }, 8000);
    expect(later.oom).toEqual(second);
    expect(readdirSync(statsDir)).toEqual([`${pid}.json`]);
    expect(existsSync(`${stateFile}.violations`)).toBe(false);
  });

  it('an OOM storm: one write at once, the rest coalesced into one more a second later, the count exact', async () => {
    stateWith();
    const code = [
      PRELUDE,
      'writes = []',
      'real_write = companion._write',
      'def counting(directory, document):',
      '    path = real_write(directory, document)',
      '    writes.append([threading.current_thread().name, (document.get("oom") or {}).get("count"), time.monotonic()])',
      '    return path',
      'companion._write = counting',
      'caught = [oom() for _ in range(25)]',
      'print("caught " + json.dumps(sorted(set(caught))), flush=True)',
      'print("burst " + json.dumps(writes), flush=True)',
      'deadline = time.time() + 10',
      'while not any(w[1] == 25 for w in writes) and time.time() < deadline:',
      '    time.sleep(0.02)',
      'print("writes " + json.dumps(writes), flush=True)',
      'time.sleep(30)',
    ].join('\n');
    // Every 3 s: no tick falls within the second after the storm.
    const host = runHost(code, [], { GPU_LAYERS_STATS_INTERVAL: '3' });
    await waitFor(() => host.output().includes('writes '), 15_000);
    expect(lines(host.output(), 'caught')).toEqual([[`OutOfMemoryError: ${MESSAGE}`]]);
    const [burst] = lines(host.output(), 'burst') as Array<Array<[string, number | null, number]>>;
    expect(burst!.map(([thread, count]) => [thread, count])).toEqual([['MainThread', 1]]);
    const [writes] = lines(host.output(), 'writes') as Array<Array<[string, number | null, number]>>;
    const carried = writes!.find(([, count]) => count === 25)!;
    // Written by the companion's thread, one second after the first (not by the next tick, 3 s on).
    expect(carried[0]).toBe('gpu-layers-companion');
    expect(carried[2] - burst![0]![2]).toBeGreaterThanOrEqual(0.95);
    expect(carried[2] - burst![0]![2]).toBeLessThan(2.5);
    expect(writes!.filter(([, count]) => count !== null && count < 25)).toHaveLength(1);
    expect(readDocument(host.child.pid!)!.oom).toMatchObject({ count: 25, snapshot: null });
  });

  it('GPU_LAYERS_OOM_SNAPSHOT=1: a snapshot without stack traces beside the file, gpu-layers reads it, and at most 3 per process', async () => {
    stateWith();
    const code = [
      PRELUDE,
      'companion.OOM_MIN_WRITE_SECONDS = 0  # every OOM written at once, to reach the bound quickly',
      'for n in range(5):',
      '    oom(2**30 * (n + 1))',
      '    print("file " + json.dumps(file_oom()), flush=True)',
      'print("done", flush=True)',
      'time.sleep(30)',
    ].join('\n');
    const host = runHost(code, [], { GPU_LAYERS_STATS_INTERVAL: '1', GPU_LAYERS_OOM_SNAPSHOT: '1' });
    const pid = host.child.pid!;
    await waitFor(() => host.output().includes('done'), 15_000);
    const files = lines(host.output(), 'file') as Array<{ count: number; snapshot: string | null; snapshotError: string | null }>;
    expect(files.map((f) => [f.count, f.snapshot, f.snapshotError])).toEqual([
      [1, `${pid}.oom-1.pickle`, null],
      [2, `${pid}.oom-2.pickle`, null],
      [3, `${pid}.oom-3.pickle`, null],
      // The newest snapshot stays named; why this OOM has none of its own.
      [4, `${pid}.oom-3.pickle`, 'not taken: this process already tried 3 snapshots, the most it writes'],
      [5, `${pid}.oom-3.pickle`, 'not taken: this process already tried 3 snapshots, the most it writes'],
    ]);
    // Only the results: no temporary left behind.
    expect(readdirSync(statsDir).sort()).toEqual([`${pid}.json`, `${pid}.oom-1.pickle`, `${pid}.oom-2.pickle`, `${pid}.oom-3.pickle`]);
    const document = readDocument(pid)!;
    const snapshot = companionOomSnapshotPath(path.join(statsDir, `${pid}.json`), document.oom!)!;
    // gpu-layers' own reader (`gpu-layers snapshot`) takes it: the fake's 20 MiB segment, 2 MiB allocated.
    const report = await analyzeSnapshot(snapshot);
    expect(report.protocol).toBe(4);
    expect(report.devices).toHaveLength(1);
    expect(report.devices[0]).toMatchObject({ device: 0, segmentCount: 1, reservedBytes: 20 * MiB, allocatedBytes: 2 * MiB, freeBytes: 18 * MiB });
    // Read back by Python's own pickle: no stack anywhere.
    const check = spawn(python, ['-c', [
      'import pickle, sys',
      'data = pickle.load(open(sys.argv[1], "rb"))',
      'frames = [b["frames"] for s in data["segments"] for b in s["blocks"]] + [s["frames"] for s in data["segments"]]',
      'print(sorted(data), all(f == [] for f in frames), data["device_traces"])',
    ].join('\n'), snapshot], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    check.stdout!.on('data', (chunk) => (out += chunk));
    await new Promise((resolve) => check.on('exit', resolve));
    expect(out.trim()).toBe("['allocator_settings', 'device_traces', 'segments'] True [[]]");
    expect(existsSync(`${stateFile}.violations`)).toBe(false);
  });

  it('no snapshot while the program records memory history (it would carry stack traces), nor above the byte bound', async () => {
    stateWith({ historyEnabled: true });
    const withHistory = runHost([PRELUDE, 'oom()', 'print("file " + json.dumps(file_oom()), flush=True)', 'time.sleep(30)'].join('\n'), [], {
      GPU_LAYERS_STATS_INTERVAL: '1',
      GPU_LAYERS_OOM_SNAPSHOT: '1',
    });
    await waitFor(() => hasLine(withHistory.output(), 'file'), 15_000);
    expect(lines(withHistory.output(), 'file')[0]).toMatchObject({ count: 1, snapshot: null, snapshotError: expect.stringMatching(/^not taken: this program records memory history/) });

    stateWith();
    const tooLarge = runHost(
      [PRELUDE, 'companion.OOM_SNAPSHOT_MAX_BYTES = 64', 'oom()', 'print("file " + json.dumps(file_oom()), flush=True)', 'time.sleep(30)'].join('\n'),
      [],
      { GPU_LAYERS_STATS_INTERVAL: '1', GPU_LAYERS_OOM_SNAPSHOT: '1' },
    );
    await waitFor(() => hasLine(tooLarge.output(), 'file'), 15_000);
    expect(lines(tooLarge.output(), 'file')[0]).toMatchObject({
      count: 1,
      snapshot: null,
      snapshotError: 'not written: the snapshot is larger than 64 bytes, the most the companion writes',
    });
    // Neither left a pickle, nor a temporary of one.
    expect(readdirSync(statsDir).sort()).toEqual([`${withHistory.child.pid}.json`, `${tooLarge.child.pid}.json`].sort());
  });

  it('an observer whose writes fail (the folder is refused) does not raise into the workload', async () => {
    stateWith();
    const code = [
      PRELUDE,
      '# Another user could now replace the files: the companion refuses the folder from here on.',
      'os.chmod(os.environ["GPU_LAYERS_STATS_DIR"], 0o777)',
      'print("caught " + json.dumps(oom()), flush=True)',
      'time.sleep(1.2)',
      'print("caught " + json.dumps(oom()), flush=True)',
      'print("alive", flush=True)',
    ].join('\n');
    const host = runHost(code, [], { GPU_LAYERS_STATS_INTERVAL: '1', GPU_LAYERS_OOM_SNAPSHOT: '1' });
    expect(await host.exited).toBe(0);
    expect(lines(host.output(), 'caught')).toEqual([`OutOfMemoryError: ${MESSAGE}`, `OutOfMemoryError: ${MESSAGE}`]);
    expect(host.output()).toMatch(/alive\n/);
    expect(host.output()).not.toMatch(/Traceback/);
    // The folder holds only what was there before the refusal (the first file, removed at exit).
    expect(readdirSync(statsDir).filter((name) => name.includes('.oom-') || name.endsWith('.tmp'))).toEqual([]);
  });

  it('a torch without the private API: nothing registered, no error, the OOM raised as usual', async () => {
    stateWith();
    const code = [
      'import json, os, time, torch',
      'del torch._C._cuda_attach_out_of_memory_observer  # before the companion\'s first write',
      'FILE = os.path.join(os.environ["GPU_LAYERS_STATS_DIR"], "%d.json" % os.getpid())',
      'while not os.path.exists(FILE):',
      '    time.sleep(0.01)',
      'try:',
      '    torch.cuda._fake_oom(0, 3 * 2**30)',
      'except torch.cuda.OutOfMemoryError as error:',
      '    print("caught %s" % error, flush=True)',
      'print("observers %d" % len(torch._C._oom_observers), flush=True)',
      'time.sleep(30)',
    ].join('\n');
    const host = runHost(code, [], { GPU_LAYERS_STATS_INTERVAL: '0.2' });
    await waitFor(() => host.output().includes('observers'), 15_000);
    expect(host.output()).toBe(`caught ${MESSAGE}\nobservers 0\n`);
    const pid = host.child.pid!;
    const first = readDocument(pid)!;
    const later = await waitFor(() => {
      const d = readDocument(pid);
      return d !== undefined && d.writtenAt > first.writtenAt + 0.3 ? d : undefined;
    });
    expect(later.oom).toBeNull();
    expect(later.errors).toEqual([]);
  });

  it('is not attached before CUDA is initialised (attaching initialises it)', async () => {
    setState({ initialized: false, devices: [DEVICE] });
    const host = runHost('import time, torch\nprint("ready", flush=True)\ntime.sleep(0.6)\nprint("observers %d" % len(torch._C._oom_observers), flush=True)\ntime.sleep(30)\n');
    await waitFor(() => host.output().includes('observers'));
    expect(host.output()).toBe('ready\nobservers 0\n');
    stateWith();
    const document = await waitFor(() => readDocument(host.child.pid!));
    expect(document.oom).toBeNull();
    expect(existsSync(`${stateFile}.violations`)).toBe(false);
  });
});

function hasLine(output: string, tag: string): boolean {
  return output.split('\n').some((line) => line.startsWith(`${tag} `));
}
