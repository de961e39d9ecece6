/** The `gpu-layers watch` views: the terminal frame over a history, and the plain line per sample for a pipe. */
import { describe, expect, it } from 'vitest';

import { formatBytes } from '../../src/format-bytes.js';
import { makeStyle } from '../../src/cli/render/style.js';
import { renderWatchFrame, renderWatchLine } from '../../src/cli/render/watch-view.js';
import { findingSchema, type Finding } from '../../src/diagnosis/finding-schema.js';
import { joinLayers } from '../../src/layers/join.js';
import { layeredSampleSchema, type LayeredSample } from '../../src/layers/schema.js';
import { buildSample } from '../../src/sample/build-sample.js';
import { missingCompanion, type CompanionResult } from '../../src/sources/companion.js';
import { validate } from '../../src/validation.js';
import { calibration, companion, inputs, UUID0 } from '../helpers/layered-fixtures.js';
import { context, rawDevice, rawSample, rows } from '../helpers/raw-readings.js';

const plain = makeStyle(false);
const colour = makeStyle(true);
const MiB = 2 ** 20;
const GiB = 2 ** 30;
const T0 = Date.UTC(2026, 10, 26, 12, 0, 0);
const ANSI = /\u001b\[[0-9;]*m/g;

/**
 * Step `step` of a CUDA-graph creep, 2 s apart. GPU 0: pid 10 holds 10 GiB + 512 MiB per step,
 * with a flat allocator (reserved 8 GiB = 6.25 GiB live + 256 MiB graph pools + 1.5 GiB cached)
 * and a 512 MiB context, so outside = 2 GiB + 512 MiB/step and graphs = outside - 256 MiB;
 * pid 20 holds 50 MiB, no companion. GPU 1: the same pid 10 holds 300 MiB (no allocator for
 * that device), and pid 11 shows up at step 2.
 */
function creepSample(step: number): LayeredSample {
  const p10 = 10 * GiB + step * 512 * MiB;
  const gpu1Rows: [number, number, number, number, number][] = [[0, 10, 300 * MiB, Number.NaN, Number.NaN]];
  if (step >= 2) gpu1Rows.push([0, 11, 100 * MiB, Number.NaN, Number.NaN]);
  const gpu1Used = gpu1Rows.reduce((sum, r) => sum + r[2], 0);
  const raw = rawSample(
    [
      rawDevice(0, {
        memory: { version: 2, total: 80 * GiB, reserved: GiB, free: 79 * GiB - p10 - 50 * MiB, used: p10 + 50 * MiB },
        processRows: rows([0, 10, p10, Number.NaN, Number.NaN], [0, 20, 50 * MiB, Number.NaN, Number.NaN]),
      }),
      rawDevice(1, {
        memory: { version: 2, total: 80 * GiB, reserved: GiB, free: 79 * GiB - gpu1Used, used: gpu1Used },
        processRows: rows(...gpu1Rows),
      }),
    ],
    { startedAtMs: T0 + step * 2000 },
  );
  const stats = { 'reserved_bytes.all.current': 8 * GiB, 'allocated_bytes.all.current': 6.25 * GiB, 'inactive_split_bytes.all.current': 0 };
  const layered = joinLayers(
    buildSample(raw, context()),
    inputs({
      companion: new Map<number, CompanionResult>([
        [10, companion(10, UUID0, stats, 256 * MiB)],
        [20, missingCompanion('/stats', 20)],
      ]),
      framework: new Map(),
      calibration: { entries: [{ ...calibration, contextBytes: 512 * MiB }], moduleLoading: 'LAZY', error: null },
    }),
  );
  const checked = validate(layeredSampleSchema, JSON.parse(JSON.stringify(layered)));
  if (!checked.ok) throw new Error(checked.message);
  return checked.data;
}

const history = [0, 1, 2, 3, 4].map(creepSample);

function finding(overrides: Partial<Finding> = {}): Finding {
  const value: Finding = {
    id: 'cuda-graph-creep',
    severity: 'warning',
    confidence: 0.9,
    title: 'Driver memory creeps outside the allocator',
    summary: 'pid 10 grew 2.0 GiB outside the PyTorch allocator while reserved stayed flat.',
    subject: { deviceIndex: 0, uuid: UUID0, pid: 10, command: 'python -m vllm.entrypoints.openai.api_server' },
    window: { from: history[0]!.takenAt, to: history.at(-1)!.takenAt },
    at: history[0]!.takenAt,
    evidence: [],
    fix: 'Capture fewer graph sizes (--max-seq-len-to-capture) or disable graphs for this batch size.',
    ...overrides,
  };
  const checked = validate(findingSchema, value);
  if (!checked.ok) throw new Error(checked.message);
  return checked.data;
}

function displayWidth(line: string): number {
  return [...line.replace(ANSI, '')].length;
}

/** The lines of one process block: from its "pid N" line to the next process, device or blank line. */
function block(frame: string, device: number, pid: number): string[] {
  const lines = frame.split('\n');
  const deviceAt = lines.findIndex((l) => l.startsWith(`GPU ${device} `));
  const start = lines.findIndex((l, i) => i > deviceAt && l.startsWith(`  pid ${pid} `));
  expect(deviceAt).toBeGreaterThanOrEqual(0);
  expect(start).toBeGreaterThan(deviceAt);
  const end = lines.findIndex((l, i) => i > start && !l.startsWith('    '));
  return lines.slice(start, end === -1 ? undefined : end);
}

function row(lines: string[], label: string): string {
  const found = lines.find((l) => l.trimStart().startsWith(label));
  if (found === undefined) throw new Error(`no row ${label} in\n${lines.join('\n')}`);
  return found;
}

describe('renderWatchFrame', () => {
  const frame = renderWatchFrame(history, { style: plain, width: 100, intervalMs: 2000 });

  it('title: the last sample time, the count, the interval and the span the graphs cover', () => {
    expect(frame.split('\n')[0]).toBe('gpu-layers watch  2026-11-26T12:00:08.000Z  5 samples  every 2s  graphs: last 5 over 8s');
  });

  it('a line per device with its name and used of total', () => {
    const lines = frame.split('\n');
    expect(lines).toContain(`GPU 0  NVIDIA H100 80GB HBM3  ${formatBytes(12 * GiB + 50 * MiB)} / 80.0 GiB used`);
    expect(lines).toContain('GPU 1  NVIDIA H100 80GB HBM3  400.0 MiB / 80.0 GiB used');
  });

  it('a growing gap: sparkline from ▁ to █, the current value and the change over the window', () => {
    const p10 = block(frame, 0, 10);
    expect(p10[0]).toBe('  pid 10  12.0 GiB  (command not visible)');
    // The probe's stacked bar: tensors, graph pools (under a cell here), cached, outside.
    expect(p10[1]).toMatch(/^ {4}\[█+▓*▒+░+\] █ tensors 6\.3 GiB {2}▓ graph pools 256\.0 MiB/);
    // 2, 2.5, 3, 3.5, 4 GiB: steps of 7/4 of a block.
    expect(row(p10, 'outside allocator')).toBe('    outside allocator  ▁▃▅▆█     4.0 GiB    +2.0 GiB');
    expect(row(p10, 'CUDA graphs (est.)')).toMatch(/ ▁▃▅▆█ +3\.8 GiB +\+2\.0 GiB$/);
    expect(row(p10, 'driver')).toMatch(/ ▁▃▅▆█ +12\.0 GiB +\+2\.0 GiB$/);
  });

  it('a flat gap is a flat low line with no change', () => {
    expect(row(block(frame, 0, 10), 'allocator cached')).toMatch(/ ▁▁▁▁▁ +1\.5 GiB +±0 B$/);
  });

  it('unknown gaps: blank sparkline and n/a; the known driver figure still drawn', () => {
    const p20 = block(frame, 0, 20);
    expect(p20[1]).toMatch(/^ {4}allocator: n\/a/);
    expect(row(p20, 'outside allocator')).toMatch(/^ {4}outside allocator {2}\s+n\/a$/);
    expect(row(p20, 'driver')).toMatch(/ ▁▁▁▁▁ +50\.0 MiB +±0 B$/);
  });

  it('matches a process across samples by device and pid: the same pid on another GPU is its own series', () => {
    // pid 10 on GPU 1 stays at 300 MiB: flat, not the 10-12 GiB of GPU 0.
    expect(row(block(frame, 1, 10), 'driver')).toMatch(/ ▁▁▁▁▁ +300\.0 MiB +±0 B$/);
    // pid 11 appears at the third sample: two blanks before its three values.
    expect(row(block(frame, 1, 11), 'driver')).toMatch(/ {3}▁▁▁ +100\.0 MiB +±0 B$/);
  });

  it('a reused pid (another start time) is not the same process: its earlier samples are left blank', () => {
    const reused = structuredClone(history);
    for (const sample of reused.slice(0, 2)) sample.devices[0]!.processes![0]!.host!.startTimeTicks = 1000;
    // 11, 11.5, 12 GiB from the third sample on.
    expect(row(block(renderWatchFrame(reused, { style: plain, width: 100 }), 0, 10), 'driver')).toMatch(/ {3}▁▅█ +12\.0 GiB +\+1\.0 GiB$/);
  });

  it('keeps the newest samples when the window is narrower than the history', () => {
    const long = Array.from({ length: 60 }, (_, step) => creepSample(step));
    for (const width of [60, 100]) {
      const out = renderWatchFrame(long, { style: plain, width });
      const driver = row(block(out, 0, 10), 'driver');
      const spark = driver.match(/[▁▂▃▄▅▆▇█]+/)![0];
      expect(spark.length).toBeLessThan(60);
      expect(spark.startsWith('▁') && spark.endsWith('█')).toBe(true);
      // The current value is the newest sample's; the change is over the samples drawn.
      expect(driver).toContain(formatBytes(10 * GiB + 59 * 512 * MiB));
      expect(driver).toContain(`+${formatBytes((spark.length - 1) * 512 * MiB)}`);
      if (width === 100) expect(out.split('\n')[0]).toBe(`gpu-layers watch  2026-11-26T12:01:58.000Z  60 samples  graphs: last ${spark.length} over 1m 44s`);
    }
  });

  it.each([40, 60, 80, 200])('no line is wider than %i columns, with or without colour', (width) => {
    const long = finding({ summary: 'x'.repeat(300), subject: { deviceIndex: 0, uuid: UUID0, pid: 10, command: '语'.repeat(50) } });
    for (const style of [plain, colour]) {
      const out = renderWatchFrame(history, { style, width, findings: [long], status: 'sample failed: '.repeat(20) });
      for (const line of out.split('\n')) {
        // Wide characters take two columns.
        const columns = displayWidth(line) + (line.match(/语/g)?.length ?? 0);
        expect(columns, line).toBeLessThanOrEqual(width);
      }
      expect(out).toContain('…');
    }
  });

  it('a line cut inside a coloured run ends with a reset, so the colour does not leak', () => {
    const out = renderWatchFrame(history, { style: colour, width: 60 });
    const cut = out.split('\n').filter((l) => l.includes('…') && l.includes('\u001b'));
    expect(cut.length).toBeGreaterThan(0);
    for (const line of cut) expect(line.endsWith('\u001b[0m')).toBe(true);
  });

  it('with colour off: no escape code anywhere, findings and status included', () => {
    const out = renderWatchFrame(history, { style: plain, width: 60, findings: [finding()], status: 'sample failed: NVML_TIMEOUT' });
    expect(out).not.toMatch(/\u001b/);
    expect(renderWatchFrame(history, { style: colour, width: 60 })).toMatch(/\u001b\[/);
  });

  it('control characters from a command line cannot reach the terminal', () => {
    const evil = structuredClone(history);
    evil.at(-1)!.devices[0]!.processes![0]!.command = 'python\u001b[2J\u001b]0;owned\u0007\nsecond';
    const out = renderWatchFrame(evil, { style: plain, width: 120 });
    expect(out).not.toMatch(/[\u0000-\u0009\u000b-\u001f]/);
    expect(block(out, 0, 10)[0]).toContain('python [2J ]0;owned  second');
  });

  it('findings: severity, id, title, subject and summary, the most severe first', () => {
    const findings = [finding({ id: 'lazy-init', severity: 'info', title: 'Step at the first requests', subject: { deviceIndex: 1, uuid: null, pid: null, command: null } }), finding({ severity: 'critical' })];
    const lines = renderWatchFrame(history, { style: plain, width: 200, findings }).split('\n');
    const at = lines.indexOf('findings');
    expect(at).toBeGreaterThan(0);
    expect(lines.slice(at + 1, at + 5)).toEqual([
      '  CRITICAL cuda-graph-creep  Driver memory creeps outside the allocator  GPU 0 pid 10 (python -m vllm.entrypoints.openai.api_server)',
      '    pid 10 grew 2.0 GiB outside the PyTorch allocator while reserved stayed flat.',
      '  INFO     lazy-init  Step at the first requests  GPU 1',
      '    pid 10 grew 2.0 GiB outside the PyTorch allocator while reserved stayed flat.',
    ]);
  });

  it('findings block only when findings are given; an empty list says so', () => {
    expect(frame).not.toMatch(/findings/);
    expect(renderWatchFrame(history, { style: plain, width: 100, findings: [] })).toContain('\nno findings\n');
  });

  it('the status is the last line', () => {
    const out = renderWatchFrame(history, { style: plain, width: 100, status: 'sample failed: NVML_TIMEOUT (device 0 did not answer in 2000 ms)' });
    expect(out.trimEnd().split('\n').at(-1)).toBe('sample failed: NVML_TIMEOUT (device 0 did not answer in 2000 ms)');
  });

  it('an empty history still renders a title, and a single sample draws one-point series with no change', () => {
    expect(renderWatchFrame([], { style: plain, width: 80 })).toBe('gpu-layers watch  waiting for the first sample\n');
    const one = renderWatchFrame([history[0]!], { style: plain, width: 100 });
    expect(one.split('\n')[0]).toBe('gpu-layers watch  2026-11-26T12:00:00.000Z  1 sample');
    expect(row(block(one, 0, 10), 'driver')).toMatch(/ ▁ +10\.0 GiB$/);
  });
});

/** GPU 1 of `sample` with MIG on and one MIG device holding a copy of its first process as pid 30. */
function withMig(sample: LayeredSample): LayeredSample {
  const copy = structuredClone(sample);
  const gpu = copy.devices[1]!;
  const p30 = { ...structuredClone(gpu.processes![0]!), pid: 30, gpuInstanceId: 1, computeInstanceId: 0 };
  gpu.mig = {
    enabled: true,
    pendingEnabled: true,
    devices: [{ slot: 0, uuid: 'MIG-00000000-0000-4000-8000-000000000009', name: 'NVIDIA H100 80GB HBM3 MIG 3g.40gb', gpuInstanceId: 1, computeInstanceId: 0, cudaOrdinal: null, memory: { totalBytes: 40 * GiB, usedBytes: 300 * MiB, freeBytes: 40 * GiB - 300 * MiB, reservedBytes: 0, version: 2 }, processes: [p30], errors: {} }],
  };
  const checked = validate(layeredSampleSchema, JSON.parse(JSON.stringify(copy)));
  if (!checked.ok) throw new Error(checked.message);
  return checked.data;
}

describe('MIG devices', () => {
  it('the frame shows a MIG device\'s processes under it, with their own series', () => {
    const out = renderWatchFrame(history.map(withMig), { style: plain, width: 100 });
    const lines = out.split('\n');
    const mig = lines.indexOf('  MIG 0');
    expect(mig).toBeGreaterThan(lines.findIndex((l) => l.startsWith('GPU 1 ')));
    expect(lines[mig + 1]).toBe('  pid 30  300.0 MiB  (command not visible)');
    expect(lines.slice(mig + 2, mig + 7).find((l) => l.trimStart().startsWith('driver'))).toMatch(/ ▁▁▁▁▁ +300\.0 MiB +±0 B$/);
  });

  it('the piped line opens a MIG device with gpu<index>.mig<slot>', () => {
    expect(renderWatchLine(withMig(history[0]!))).toMatch(/ gpu1\.mig0 used 314572800\/42949672960 pid 30 driver 314572800 outside \? graphs \? cached \?$/);
  });
});

describe('renderWatchLine', () => {
  it('one plain line: time, per device used/total, per process the four figures in bytes, "?" for unknown', () => {
    const last = history.at(-1)!;
    const p10 = 12 * GiB;
    const outside = p10 - 8 * GiB;
    expect(renderWatchLine(last)).toBe(
      [
        '2026-11-26T12:00:08.000Z',
        `gpu0 used ${p10 + 50 * MiB}/${80 * GiB}`,
        `pid 10 driver ${p10} outside ${outside} graphs ${outside - 256 * MiB} cached ${1.5 * GiB}`,
        `pid 20 driver ${50 * MiB} outside ? graphs ? cached ?`,
        `gpu1 used ${400 * MiB}/${80 * GiB}`,
        `pid 10 driver ${300 * MiB} outside ? graphs ? cached ?`,
        `pid 11 driver ${100 * MiB} outside ? graphs ? cached ?`,
      ].join(' '),
    );
  });

  it('a device whose process list is unknown, and a process whose driver figure is unknown', () => {
    const sample = structuredClone(history[0]!);
    sample.devices[1]!.processes = null;
    sample.devices[0]!.processes![1]!.layers.driverBytes = null;
    sample.devices[0]!.memory.usedBytes = null;
    const line = renderWatchLine(sample);
    expect(line).toContain(`gpu0 used ?/${80 * GiB} `);
    expect(line).toContain('pid 20 driver ? outside ? graphs ? cached ?');
    expect(line).toMatch(/gpu1 used \d+\/\d+ processes \?$/);
  });

  it('no colour, no escape code, no newline: awk sees the same fields on every sample', () => {
    for (const sample of history) {
      const line = renderWatchLine(sample);
      expect(line).not.toMatch(/[\u001b\n]/);
      const fields = line.split(' ');
      expect(fields[1]).toBe('gpu0');
      expect(fields[2]).toBe('used');
      expect(fields[4]).toBe('pid');
    }
  });
});
