/**
 * Fuzzing the cgroup memory parsers (/proc/PID/cgroup's membership, single-value files,
 * flat-keyed files) and the reading built from them: round trips from generated kernel-format
 * text back to the figures, mutated fixtures and random bytes (every figure null with a reason or
 * a whole number of bytes), adversarial runs for each pattern, and mutated cgroup trees read from
 * disk.
 */
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';

import type { FieldError } from '../../src/sample/schema.js';
import {
  type CgroupMemoryFiles,
  type CgroupMemoryReading,
  cgroupMemoryOf,
  parseCgroupMembership,
  parseCgroupValue,
  parseFlatKeyed,
  readCgroupMemory,
} from '../../src/sources/cgroup-memory.js';
import { repoRoot } from '../helpers/paths.js';
import { CALL_BOUND_MS, FUZZ_TIMEOUT_MS, fuzzParams, HOSTILE_KEYS, LONG_RUN, mutatedOrRandom, slowestOnPumpedInputs, treeFileCase, timed, timedAsync } from '../helpers/fuzz.js';

const work = mkdtempSync(path.join(tmpdir(), 'gpu-layers-cgroup-fuzz-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

const fixtures = path.join(repoRoot, 'test/fixtures/cgroup');
const CONTAINER = readdirSync(path.join(fixtures, 'v2/kubepods.slice/kubepods-burstable.slice'), { recursive: true, encoding: 'utf8' }).find((p) => p.endsWith('.scope'))!;
const V2_DIR = path.join(fixtures, 'v2/kubepods.slice/kubepods-burstable.slice', CONTAINER);
const V1_DIR = path.join(fixtures, 'v1/memory/gpu-layers-fixture-limited');
const V2_FILES = ['memory.current', 'memory.max', 'memory.stat', 'memory.events'] as const;
const V1_FILES = ['memory.usage_in_bytes', 'memory.limit_in_bytes', 'memory.stat', 'memory.oom_control'] as const;
const seedsOf = (dir: string, files: readonly string[]) => files.map((f) => readFileSync(path.join(dir, f)));
const SEEDS = [...seedsOf(V2_DIR, V2_FILES), ...seedsOf(V1_DIR, V1_FILES), readFileSync(path.join(fixtures, 'proc-self-cgroup.hybrid')), Buffer.from('0::/system.slice/vllm.service\n')];

const FIELDS = ['usageBytes', 'workingSetBytes', 'limitBytes', 'oomEvents', 'oomKills'] as const;

/** What every reading must be: each figure a whole number >= 0 or null with its reason, the working set at most the usage. */
function checkReading(reading: CgroupMemoryReading): void {
  for (const field of FIELDS) {
    const value = reading[field];
    if (value === null) {
      const error = reading.errors[field];
      expect(error, `${field} is null without a reason`).toBeDefined();
      expect(typeof error!.code === 'string' && error!.nvmlReturn === null && typeof error!.message === 'string').toBe(true);
    } else {
      expect(Number.isSafeInteger(value) && value >= 0, `${field}: ${value}`).toBe(true);
      expect(reading.errors[field], `${field} has a value and a reason`).toBeUndefined();
    }
  }
  if (reading.workingSetBytes !== null) expect(reading.workingSetBytes).toBeLessThanOrEqual(reading.usageBytes!);
  expect([1, 2]).toContain(reading.version);
  expect(reading.path.startsWith('/')).toBe(true);
}

/** Every pure parser on one text: each returns within the bound and says only plausible things. */
function parseAll(text: string): void {
  const membership = parseCgroupMembership(text);
  if (membership !== null) {
    expect([1, 2]).toContain(membership.version);
    expect(membership.path.startsWith('/') && !membership.path.includes('\n')).toBe(true);
  }
  const value = parseCgroupValue(text);
  expect(value === null || value === 'max' || (Number.isSafeInteger(value) && value >= 0), `${value}`).toBe(true);
  for (const [key, figure] of parseFlatKeyed(text)) {
    expect(key.length > 0 && !key.includes(' ') && !key.includes('\n')).toBe(true);
    expect(figure === null || (Number.isSafeInteger(figure) && figure >= 0), `${key} ${figure}`).toBe(true);
  }
  for (const version of [1, 2] as const) {
    const files: CgroupMemoryFiles = { usage: text, limit: text, stat: text, events: text };
    checkReading(cgroupMemoryOf({ version, path: '/x' }, files, '/sys/fs/cgroup/x'));
  }
}

describe('round trips: kernel-format text back to its figures', () => {
  const segment = fc.string({ unit: fc.constantFrom(...'abcdefghijklmnopqrstuvwxyz0123456789-_.:@ '), minLength: 1, maxLength: 20 });
  const cgroupPath = fc.array(segment, { maxLength: 6 }).map((parts) => `/${parts.join('/')}`);

  it('membership: the v1 memory line wins, else 0::, whatever the other lines and their order', { timeout: FUZZ_TIMEOUT_MS }, () => {
    const controller = fc.constantFrom('cpu', 'cpuacct', 'blkio', 'pids', 'devices', 'freezer', 'name=systemd', 'hugetlb', 'net_cls,net_prio');
    fc.assert(
      fc.property(cgroupPath, fc.option(cgroupPath), fc.option(fc.array(controller, { maxLength: 3 })), fc.array(fc.tuple(controller, cgroupPath), { maxLength: 6 }), fc.nat(), (unified, memory, withMemory, others, seed) => {
        const lines = others.map(([c, p], i) => `${i + 20}:${c}:${p}`);
        if (memory !== null) lines.push(`4:${[...(withMemory ?? []), 'memory'].join(',')}:${memory}`);
        lines.push(`0::${unified}`);
        lines.sort((a, b) => ((a.length * 31 + seed) % 5) - ((b.length * 31 + seed) % 5));
        const expected = memory !== null ? { version: 1, path: memory } : { version: 2, path: unified };
        expect(parseCgroupMembership(`${lines.join('\n')}\n`)).toEqual(expected);
      }),
      fuzzParams(200),
    );
  });

  it('single values: bytes below 2^53, "max", and the kernel\'s unlimited numbers', { timeout: FUZZ_TIMEOUT_MS }, () => {
    fc.assert(
      fc.property(fc.maxSafeNat(), fc.bigInt({ min: 2n ** 62n, max: 2n ** 64n - 1n }), fc.bigInt({ min: 2n ** 53n, max: 2n ** 62n - 1n }), (bytes, unlimited, between) => {
        expect(parseCgroupValue(`${bytes}\n`)).toBe(bytes);
        expect(parseCgroupValue(`${unlimited}\n`)).toBe('max');
        expect(parseCgroupValue('max\n')).toBe('max');
        expect(parseCgroupValue(`${between}\n`)).toBe(Number.isSafeInteger(Number(between)) ? Number(between) : null);
        expect(parseCgroupValue(`-${bytes}\n`)).toBeNull();
        expect(parseCgroupValue(`${bytes}.5\n`)).toBeNull();
      }),
      fuzzParams(300),
    );
  });

  it('flat-keyed files: each key its first value, whatever the keys are called', { timeout: FUZZ_TIMEOUT_MS }, () => {
    const key = fc.oneof(fc.string({ unit: fc.constantFrom(...'abcdefghijklmnopqrstuvwxyz_'), minLength: 1, maxLength: 24 }), fc.constantFrom(...HOSTILE_KEYS.filter((k) => k.length > 0 && !k.includes(' '))));
    fc.assert(
      fc.property(fc.array(fc.tuple(key, fc.maxSafeNat()), { maxLength: 30 }), (entries) => {
        const expected = new Map<string, number>();
        for (const [k, v] of entries) if (!expected.has(k)) expected.set(k, v);
        expect(new Map(parseFlatKeyed(entries.map(([k, v]) => `${k} ${v}\n`).join('')))).toEqual(expected);
      }),
      fuzzParams(300),
    );
  });

  it('the reading: usage, working set floored at 0, limit or NO_LIMIT, OOM counts, for either version', { timeout: FUZZ_TIMEOUT_MS }, () => {
    fc.assert(
      fc.property(
        fc.constantFrom(1 as const, 2 as const),
        fc.maxSafeNat(),
        fc.maxSafeNat(),
        fc.option(fc.maxSafeNat()),
        fc.nat(),
        fc.nat(),
        (version, usage, inactive, limit, oom, oomKill) => {
          const inactiveKey = version === 2 ? 'inactive_file' : 'total_inactive_file';
          const files: CgroupMemoryFiles = {
            usage: `${usage}\n`,
            limit: limit === null ? (version === 2 ? 'max\n' : '9223372036854771712\n') : `${limit}\n`,
            stat: `anon 1\nactive_file 2\n${inactiveKey} ${inactive}\nunevictable 0\n`,
            events: version === 2 ? `low 0\nhigh 0\nmax 5\noom ${oom}\noom_kill ${oomKill}\noom_group_kill 0\n` : `oom_kill_disable 0\nunder_oom 0\noom_kill ${oomKill}\n`,
          };
          const reading = cgroupMemoryOf({ version, path: '/a' }, files, '/sys/fs/cgroup/a');
          checkReading(reading);
          expect(reading).toMatchObject({
            usageBytes: usage,
            workingSetBytes: Math.max(0, usage - inactive),
            limitBytes: limit,
            oomEvents: version === 2 ? oom : null,
            oomKills: oomKill,
          });
          expect(reading.errors.limitBytes?.code).toBe(limit === null ? 'NO_LIMIT' : undefined);
        },
      ),
      fuzzParams(300),
    );
  });
});

describe('mutated and random text', () => {
  it('every parser returns plausible figures or null, within the bound', { timeout: FUZZ_TIMEOUT_MS }, () => {
    fc.assert(
      fc.property(mutatedOrRandom(SEEDS, 6), (bytes) => {
        const { cpuMs } = timed(() => parseAll(bytes.toString('utf8')));
        expect(cpuMs).toBeLessThan(CALL_BOUND_MS);
      }),
      fuzzParams(400),
    );
  });

  it('a reading from any mix of texts and read errors has a reason for every null', { timeout: FUZZ_TIMEOUT_MS }, () => {
    const error: FieldError = { code: 'NOT_A_REGULAR_FILE', nvmlReturn: null, message: 'x is not a regular file' };
    const file = fc.oneof(mutatedOrRandom(SEEDS, 4).map((b) => b.toString('utf8')), fc.constant(error));
    fc.assert(
      fc.property(fc.constantFrom(1 as const, 2 as const), fc.tuple(file, file, file, file), (version, [usage, limit, stat, events]) => {
        checkReading(cgroupMemoryOf({ version, path: '/' }, { usage, limit, stat, events }, '/sys/fs/cgroup'));
      }),
      fuzzParams(300),
    );
  });

  it('a mutated cgroup tree on disk reads as a FieldError or a sane reading', { timeout: FUZZ_TIMEOUT_MS }, async () => {
    const fileCase = treeFileCase;
    let run = 0;
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(1 as const, 2 as const), fc.tuple(fileCase, fileCase, fileCase, fileCase), fc.tuple(...SEEDS.slice(0, 4).map((s) => mutatedOrRandom([s]))), async (version, cases, mutated) => {
        const root = path.join(work, `tree-${run++}`);
        const dir = version === 2 ? root : path.join(root, 'memory');
        mkdirSync(dir, { recursive: true });
        const names = version === 2 ? V2_FILES : V1_FILES;
        names.forEach((name, i) => {
          // null: the file is missing; an empty buffer: empty; otherwise mutated.
          if (cases[i] !== null) writeFileSync(path.join(dir, name), cases[i] ?? mutated[i]!);
        });
        const { value, cpuMs } = await timedAsync(() => readCgroupMemory(version === 2 ? '0::/\n' : '4:memory:/\n', root));
        expect(cpuMs).toBeLessThan(CALL_BOUND_MS);
        if ('code' in value) expect(typeof value.message).toBe('string');
        else checkReading(value);
        rmSync(root, { recursive: true, force: true });
      }),
      fuzzParams(40),
    );
  });
});

describe('adversarial input for each pattern', () => {
  const PREFIXES = ['', '0::', '0::/', '4:memory:/', '1', 'oom_kill ', 'inactive_file ', 'max'];
  const PUMPS = [' ', ':', '1', '0:', '/', 'a ', ',memory', '\n', '1 '];
  const SUFFIXES = ['', 'x', '\n', ' kB\n'];
  const LENGTH = LONG_RUN ? 200_000 : 50_000;

  it(`no parser takes longer than the bound on ${LENGTH}-character runs`, { timeout: FUZZ_TIMEOUT_MS }, () => {
    const slowest = slowestOnPumpedInputs({ prefixes: PREFIXES, pumps: PUMPS, suffixes: SUFFIXES }, LENGTH, parseAll);
    expect(slowest.ms, slowest.input).toBeLessThan(CALL_BOUND_MS);
  });
});
