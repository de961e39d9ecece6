/**
 * Fuzzing the /proc text parsers (status, smaps, cgroup, stat, meminfo, net/tcp) and the host
 * layer built from them: round trips from generated kernel-format text back to the figures,
 * mutated fixtures and random bytes (every figure null or a whole number of bytes the sample
 * schema accepts), and adversarial inputs for each regular expression (no backtracking blow-up).
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';

import { rekeyLogPids } from '../../src/layers/log-pid-namespaces.js';
import { hostLayerSchema } from '../../src/layers/schema.js';
import { hostLayerOf } from '../../src/layers/host-layer.js';
import { readProcessHost } from '../../src/sources/process-host.js';
import { parseMeminfo } from '../../src/sources/host-memory.js';
import { parseCgroupContainerId, parseCgroupPodUid, parseSmapsDriverRss, parseSmapsSplit, parseStatStartTime, parseStatus } from '../../src/sources/proc-files.js';
import { parsePortSockets } from '../../src/sources/port-listener.js';
import { parseParentPid } from '../../src/sources/process-tree.js';
import { repoRoot } from '../helpers/paths.js';
import { CALL_BOUND_MS, FUZZ_TIMEOUT_MS, fuzzParams, LONG_RUN, mutatedOrRandom, slowestOnPumpedInputs, treeFileCase, timed, timedAsync } from '../helpers/fuzz.js';

const work = mkdtempSync(path.join(tmpdir(), 'gpu-layers-proc-fuzz-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

const FILES = ['status', 'smaps', 'cgroup', 'stat'] as const;
const fixtures = Object.fromEntries(FILES.map((f) => [f, readFileSync(path.join(repoRoot, 'test/fixtures/proc/4242', f))])) as Record<(typeof FILES)[number], Buffer>;
/** A real smaps of a Python process with heap, thread arenas and mmaps (its README says how it was made). */
const PYTHON_SMAPS = readFileSync(path.join(repoRoot, 'test/fixtures/proc/smaps-python-threads/smaps'));
const MEMINFO = Buffer.from('MemTotal:       2113464100 kB\nMemFree:        1630411232 kB\nMemAvailable:   2003526608 kB\nBuffers:         1185444 kB\n');
const TCP = Buffer.from(
  '  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n' +
    '   0: 0100007F:1F40 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 51234 1 0000000000000000 100 0 0 10 0\n' +
    '   1: 0100007F:9C40 0100007F:1F40 01 00000000:00000000 00:00000000 00000000  1000        0 51300 1 0000000000000000 20 4 30 10 -1\n',
);

const KiB = 1024;
/** Whole bytes or unknown: what every byte figure of the host layer must be. */
function isBytes(value: number | null): boolean {
  return value === null || (Number.isSafeInteger(value) && value >= 0);
}

/** Every parser on one text: each returns within the bound and says only plausible things. */
function parseAll(text: string): void {
  const status = parseStatus(text);
  for (const value of [status.rssBytes, status.anonBytes, status.fileBytes, status.shmemBytes]) expect(isBytes(value), `${value}`).toBe(true);
  if (status.nspid !== null) for (const pid of status.nspid) expect(Number.isSafeInteger(pid), `${pid}`).toBe(true);
  expect(isBytes(parseSmapsDriverRss(text))).toBe(true);
  const split = parseSmapsSplit(text);
  if (split !== null) {
    for (const value of [split.driverMappedBytes, split.heapBytes, split.anonMappingsBytes, split.stackBytes]) expect(isBytes(value), `${value}`).toBe(true);
    expect(Number.isSafeInteger(split.anonMappingsCount) && split.anonMappingsCount >= 0).toBe(true);
  }
  expect(parseSmapsDriverRss(text)).toBe(split?.driverMappedBytes ?? null);
  const container = parseCgroupContainerId(text);
  if (container !== null) expect(container).toMatch(/^[0-9a-f]{64}$/);
  const pod = parseCgroupPodUid(text);
  if (pod !== null) expect(pod).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
  for (const value of [parseStatStartTime(text), parseParentPid(text)]) expect(value === null || Number.isSafeInteger(value)).toBe(true);
  const meminfo = parseMeminfo(text);
  expect(isBytes(meminfo.total) && isBytes(meminfo.available)).toBe(true);
  for (const socket of parsePortSockets(text, 8000)) expect(Number.isSafeInteger(socket.uid) && Number.isSafeInteger(socket.inode)).toBe(true);
}

describe('round trips: kernel-format text back to its figures', () => {
  const kib = fc.integer({ min: 0, max: Math.floor(Number.MAX_SAFE_INTEGER / KiB) });
  const junk = fc.string({ maxLength: 40 }).map((s) => `Junk${s.replace(/[\n\r]/g, ' ')}`);

  it('status: the RSS split and NSpid, whatever the other lines and their order', { timeout: FUZZ_TIMEOUT_MS }, () => {
    const line = (key: string, value: number) => `${key}:\t${String(value).padStart(8)} kB`;
    fc.assert(
      fc.property(
        fc.record({ rss: fc.option(kib), anon: fc.option(kib), file: fc.option(kib), shmem: fc.option(kib) }),
        fc.option(fc.array(fc.integer({ min: 1, max: 4_194_304 }), { minLength: 1, maxLength: 5 })),
        fc.array(junk, { maxLength: 6 }),
        fc.nat(),
        (figures, nspid, others, seed) => {
          const lines = [
            ...others,
            ...(figures.rss !== null ? [line('VmRSS', figures.rss)] : []),
            ...(figures.anon !== null ? [line('RssAnon', figures.anon)] : []),
            ...(figures.file !== null ? [line('RssFile', figures.file)] : []),
            ...(figures.shmem !== null ? [line('RssShmem', figures.shmem)] : []),
            ...(nspid !== null ? [`NSpid:\t${nspid.join('\t')}`] : []),
          ];
          // A fixed shuffle from the seed: the kernel's order is not something to rely on.
          lines.sort((a, b) => ((a.length * 31 + seed) % 7) - ((b.length * 31 + seed) % 7));
          const times = (v: number | null) => (v === null ? null : v * KiB);
          expect(parseStatus(`${lines.join('\n')}\n`)).toEqual({
            rssBytes: times(figures.rss),
            anonBytes: times(figures.anon),
            fileBytes: times(figures.file),
            shmemBytes: times(figures.shmem),
            nspid,
          });
        },
      ),
      fuzzParams(200),
    );
  });

  it('stat: start time (field 22) and parent (field 4), whatever the command holds', { timeout: FUZZ_TIMEOUT_MS }, () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 4_194_304 }),
        fc.string({ maxLength: 15 }).filter((s) => !s.includes('\0')),
        fc.integer({ min: 0, max: 4_194_304 }),
        fc.maxSafeNat(),
        fc.array(fc.oneof(fc.maxSafeNat(), fc.constant(-1)), { minLength: 52 - 22, maxLength: 52 - 22 }),
        (pid, comm, ppid, start, rest) => {
          const fields = [pid, `(${comm})`, 'S', ppid, ...Array.from({ length: 22 - 5 }, (_, i) => i), start, ...rest];
          const text = `${fields.join(' ')}\n`;
          expect(parseStatStartTime(text)).toBe(start);
          expect(parseParentPid(text)).toBe(ppid);
        },
      ),
      fuzzParams(200),
    );
  });

  it('smaps: the Rss of the /dev/nvidia* mappings, and only theirs', { timeout: FUZZ_TIMEOUT_MS }, () => {
    const mapping = fc.record({
      start: fc.bigInt({ min: 0n, max: 2n ** 47n }),
      path: fc.constantFrom('/dev/nvidiactl', '/dev/nvidia0', '/dev/nvidia-uvm', '/dev/nvidia-uvm (deleted)', '/usr/lib/libcuda.so.1', '', '[heap]', '/home/u/dev/nvidia0', '/tmp/a b c'),
      rss: fc.integer({ min: 0, max: 2 ** 30 }),
    });
    fc.assert(
      fc.property(fc.array(mapping, { maxLength: 12 }), (mappings) => {
        const text = mappings
          .map((m) =>
            [
              `${m.start.toString(16)}-${(m.start + 4096n).toString(16)} rw-s 00000000 00:05 1024${m.path === '' ? '' : `                       ${m.path}`}`,
              `Size:             ${m.rss + 4} kB`,
              `Rss:              ${m.rss} kB`,
              `Pss:              ${m.rss} kB`,
              'VmFlags: rd wr sh mr mw me ms dc de dd sd',
            ].join('\n'),
          )
          .join('\n');
        const expected = mappings.filter((m) => m.path.startsWith('/dev/nvidia')).reduce((sum, m) => sum + m.rss * KiB, 0);
        expect(parseSmapsDriverRss(`${text}\n`)).toBe(expected);
      }),
      fuzzParams(200),
    );
  });

  it('smaps split: driver Rss, and the Anonymous pages of heap, anonymous mappings and stack, each in its bucket', { timeout: FUZZ_TIMEOUT_MS }, () => {
    const PATHS = {
      driver: ['/dev/nvidiactl', '/dev/nvidia0', '/dev/nvidia-uvm (deleted)'],
      heap: ['[heap]'],
      anon: ['', '[anon:pymalloc]', '[anon:a b (deleted)]'],
      stack: ['[stack]', '[stack:4242]'],
      none: ['/usr/lib/libcuda.so.1', '/tmp/a b c', '/tmp/x (deleted)', '/dev/zero (deleted)', '/home/u/dev/nvidia0', '[vdso]', '[vvar]', '[heap', '/[heap]'],
    } as const;
    const kinds = Object.keys(PATHS) as (keyof typeof PATHS)[];
    const mapping = fc.record({
      start: fc.bigInt({ min: 0n, max: 2n ** 47n }),
      kind: fc.constantFrom(...kinds),
      which: fc.nat(),
      rss: fc.integer({ min: 0, max: 2 ** 30 }),
      anonymous: fc.integer({ min: 0, max: 2 ** 30 }),
      pad: fc.integer({ min: 1, max: 30 }),
    });
    fc.assert(
      fc.property(fc.array(mapping, { maxLength: 16 }), (mappings) => {
        const pathOf = (m: (typeof mappings)[number]) => PATHS[m.kind][m.which % PATHS[m.kind].length]!;
        const text = mappings
          .map((m) => {
            const name = pathOf(m);
            return [
              `${m.start.toString(16)}-${(m.start + 4096n).toString(16)} rw-p 00000000 00:05 1024 ${name === '' ? '' : `${' '.repeat(m.pad)}${name}`}`,
              `Size:             ${m.rss + 4} kB`,
              `Rss:              ${m.rss} kB`,
              `Pss:              ${m.rss} kB`,
              `Anonymous:        ${m.anonymous} kB`,
              'VmFlags: rd wr mr mw me ac sd',
            ].join('\n');
          })
          .join('\n');
        const sum = (kind: keyof typeof PATHS, figure: 'rss' | 'anonymous') => mappings.filter((m) => m.kind === kind).reduce((total, m) => total + m[figure] * KiB, 0);
        expect(parseSmapsSplit(`${text}\n`)).toEqual({
          driverMappedBytes: sum('driver', 'rss'),
          heapBytes: sum('heap', 'anonymous'),
          anonMappingsBytes: sum('anon', 'anonymous'),
          anonMappingsCount: mappings.filter((m) => m.kind === 'anon').length,
          stackBytes: sum('stack', 'anonymous'),
        });
      }),
      fuzzParams(200),
    );
  });

  it('cgroup: the last container id and the pod UID of either driver', { timeout: FUZZ_TIMEOUT_MS }, () => {
    const hex = (n: number) => fc.string({ unit: fc.constantFrom(...'0123456789abcdef'), minLength: n, maxLength: n });
    fc.assert(
      fc.property(hex(64), fc.tuple(hex(8), hex(4), hex(4), hex(4), hex(12)), fc.boolean(), fc.constantFrom('docker-%.scope', 'cri-containerd-%.scope', 'crio-%.scope', 'libpod-%.scope', 'docker/%'), (id, uid, systemd, template) => {
        const pod = systemd ? `kubepods-burstable-pod${uid.join('_')}.slice` : `kubepods/burstable/pod${uid.join('-')}`;
        const text = `0::/${pod}/${template.replace('%', id)}\n`;
        expect(parseCgroupContainerId(text)).toBe(id);
        expect(parseCgroupPodUid(text)).toBe(uid.join('-'));
      }),
      fuzzParams(200),
    );
  });

  it('meminfo and net/tcp: total, available and the listening sockets', { timeout: FUZZ_TIMEOUT_MS }, () => {
    const socket = fc.record({ port: fc.integer({ min: 1, max: 65535 }), inode: fc.integer({ min: 1, max: 2 ** 32 }), state: fc.constantFrom('0A', '01', '06') });
    fc.assert(
      fc.property(kib, kib, fc.array(socket, { maxLength: 8 }), (total, available, sockets) => {
        expect(parseMeminfo(`MemTotal:       ${total} kB\nMemFree:  1 kB\nMemAvailable:   ${available} kB\n`)).toEqual({ total: total * KiB, available: available * KiB });
        const tcp = sockets.map(
          (s, i) =>
            `${String(i).padStart(4)}: 0100007F:${s.port.toString(16).toUpperCase().padStart(4, '0')} 00000000:0000 ${s.state} 00000000:00000000 00:00000000 00000000  1000        0 ${s.inode} 1 0000000000000000 100 0 0 10 0`,
        );
        const text = ['  sl  local_address rem_address   st', ...tcp, ''].join('\n');
        for (const port of new Set(sockets.map((s) => s.port))) {
          const listening = sockets.filter((s) => s.state === '0A' && s.port === port).map(({ inode }) => ({ inode, uid: 1000 }));
          expect(parsePortSockets(text, port)).toEqual(listening);
        }
      }),
      fuzzParams(200),
    );
  });
});

describe('mutated and random text', () => {
  const seeds = [...Object.values(fixtures), PYTHON_SMAPS, MEMINFO, TCP];

  it('every parser returns plausible figures or null, within the bound', { timeout: FUZZ_TIMEOUT_MS }, () => {
    fc.assert(
      fc.property(mutatedOrRandom(seeds, 6), (bytes) => {
        const { cpuMs } = timed(() => parseAll(bytes.toString('utf8')));
        expect(cpuMs).toBeLessThan(CALL_BOUND_MS);
      }),
      fuzzParams(400),
    );
  });

  it.each([
    ['status', 'VmRSS:\t18446744073709551615 kB\nRssAnon:\t 99999999999999999999 kB\nNSpid:\t1\t' + '9'.repeat(400) + '\n'],
    ['smaps', '7f00-7f01 rw-s 00000000 00:05 1 /dev/nvidia0\nRss:  18446744073709551615 kB\n'],
    ['smaps heap', '7f00-7f01 rw-p 00000000 00:00 0 [heap]\nAnonymous:  ' + '9'.repeat(400) + ' kB\n'],
    ['meminfo', 'MemTotal:       18446744073709551615 kB\nMemAvailable:   ' + '9'.repeat(400) + ' kB\n'],
  ])('%s: a figure too large to be true (lxcfs has printed 2^64 - 1) is null, not Infinity', (_name, text) => {
    parseAll(text);
  });

  it('the host layer of a mutated /proc tree is one the sample schema accepts', { timeout: FUZZ_TIMEOUT_MS }, async () => {
    const fileCase = treeFileCase;
    let run = 0;
    await fc.assert(
      fc.asyncProperty(fc.tuple(fileCase, fileCase, fileCase, fileCase), fc.tuple(...FILES.map((f) => mutatedOrRandom([fixtures[f]]))), async (cases, mutated) => {
        const proc = path.join(work, `tree-${run++}`);
        mkdirSync(path.join(proc, '4242'), { recursive: true });
        FILES.forEach((file, i) => {
          const which = cases[i];
          // null: the file is missing; an empty buffer: empty; otherwise mutated.
          if (which !== null) writeFileSync(path.join(proc, '4242', file), which ?? mutated[i]!);
        });
        const { value, cpuMs } = await timedAsync(async () => hostLayerOf(await readProcessHost(4242, proc)));
        expect(cpuMs).toBeLessThan(CALL_BOUND_MS);
        const parsed = hostLayerSchema.safeParse(value);
        expect(parsed.success, `${JSON.stringify(value)}: ${parsed.error?.message}`).toBe(true);
        rmSync(proc, { recursive: true, force: true });
      }),
      fuzzParams(40),
    );
  });

  it('rekeyLogPids keeps every figure and adds one only for an unambiguous inner pid', { timeout: FUZZ_TIMEOUT_MS }, () => {
    const pid = fc.integer({ min: 1, max: 40 });
    fc.assert(
      fc.property(fc.array(fc.tuple(pid, fc.string()), { maxLength: 10 }), fc.array(fc.tuple(pid, pid), { maxLength: 10 }), (logged, namespaces) => {
        const byPid = new Map(logged);
        const innermost = new Map(namespaces);
        const rekeyed = rekeyLogPids(byPid, innermost);
        for (const [key, value] of byPid) expect(rekeyed.get(key)).toBe(value);
        for (const [key, value] of rekeyed) {
          if (byPid.has(key)) continue;
          const inner = innermost.get(key)!;
          expect(value).toBe(byPid.get(inner));
          expect([...innermost].filter(([outer, i]) => i === inner && outer !== i)).toHaveLength(1);
        }
      }),
      fuzzParams(300),
    );
  });
});

describe('adversarial input for each regular expression', () => {
  // Each prefix a parser looks for, a run of what its patterns repeat, and an ending that makes
  // the match fail at the last moment: the shape that sends a backtracking matcher quadratic.
  const PREFIXES = ['', 'NSpid:', 'NSpid:\t1', 'VmRSS:', 'RssAnon:\t', 'MemTotal:', 'Rss:', 'pod', '0::/docker-', 'a-b ', '1 (', '0: '];
  const PUMPS = [' ', '\t', '1', '1 ', ' \n', '0', 'a-', '(', ') ', '_0', '0000000-', 'pod0'];
  const SUFFIXES = ['', 'x', ' kB\n'];
  const LENGTH = LONG_RUN ? 200_000 : 50_000;

  it('NSpid: followed by a long run of blanks and no pid ends at once (it took 1.8 s at 40,000 blanks, growing with the square)', () => {
    const { value, cpuMs } = timed(() => parseStatus(`NSpid:${' '.repeat(LENGTH)}x\nNSpid:\t${'\t'.repeat(LENGTH)}\n`));
    expect(value.nspid).toBeNull();
    expect(cpuMs).toBeLessThan(CALL_BOUND_MS);
  });

  it('a 20 MB smaps (a big process, read every sample) is split within the bound', () => {
    const text = PYTHON_SMAPS.toString('utf8').repeat(Math.ceil(20e6 / PYTHON_SMAPS.length));
    const one = parseSmapsSplit(PYTHON_SMAPS.toString('utf8'))!;
    const { value, cpuMs } = timed(() => parseSmapsSplit(text));
    const copies = text.length / PYTHON_SMAPS.length;
    expect(value?.heapBytes).toBe(one.heapBytes * copies);
    expect(value?.anonMappingsCount).toBe(one.anonMappingsCount * copies);
    expect(cpuMs).toBeLessThan(CALL_BOUND_MS);
  });

  it(`no parser takes longer than the bound on ${LENGTH}-character runs`, { timeout: FUZZ_TIMEOUT_MS }, () => {
    const slowest = slowestOnPumpedInputs({ prefixes: PREFIXES, pumps: PUMPS, suffixes: SUFFIXES }, LENGTH, parseAll);
    expect(slowest.ms, slowest.input).toBeLessThan(CALL_BOUND_MS);
  });
});
