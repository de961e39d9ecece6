/**
 * The OOM flight recorder over a modelled host: the window a process was OOM-killed in is
 * written as a recording that `diagnose` reads (naming what grew before the kill), with the
 * event and every process on that GPU beside it; a CUDA out-of-memory the allocator counted is a
 * flight too; the disk use stays within its count and bytes; a folder another user could write
 * into is refused without stopping the sampling.
 */
import { chmodSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { diagnose } from '../../src/diagnosis/diagnose.js';
import { FlightRecorder } from '../../src/flight-recorder/flight-recorder.js';
import type { LayeredSample } from '../../src/layers/schema.js';
import { EVALUATION_SET, evaluationRecording } from '../../src/mock-host/evaluation-set.js';
import { readRecording } from '../../src/recording/read-recording.js';

let work: string;
let killed: LayeredSample[];

beforeAll(() => {
  work = mkdtempSync(path.join(tmpdir(), 'gpu-layers-flights-'));
  killed = evaluationRecording(EVALUATION_SET.find((c) => c.name === 'oom-kill-after-heap-leak-10s')!).samples;
});
afterAll(() => rmSync(work, { recursive: true, force: true }));

const recorder = (dir: string, extra: Partial<ConstructorParameters<typeof FlightRecorder>[0]> = {}) =>
  new FlightRecorder({ dir: path.join(work, dir), host: 'test-host', intervalMs: 10_000, gpuLayersVersion: 'test', ...extra });

describe('FlightRecorder', () => {
  it('writes the window of an OOM kill as a recording that diagnose reads, naming what grew before it', async () => {
    const flights = recorder('kill');
    const written = killed.flatMap((sample) => {
      const result = flights.observe(sample);
      expect(result.failures).toEqual([]);
      return result.flights;
    });
    expect(written).toHaveLength(1);
    const [flight] = written;
    const exit = killed.flatMap((s) => s.exits ?? []).find((e) => e.oomKillsAfter! > e.oomKillsBefore!)!;
    expect(flight!.event).toMatchObject({ kind: 'oom-kill', pid: exit.pid, deviceIndex: exit.deviceIndex });
    // The victim was the GPU's only process; it is named among the processes on that GPU.
    expect(flight!.event.processesOnGpu.map((p) => p.pid)).toEqual([exit.pid]);

    const recording = await readRecording(flight!.recording);
    expect(recording.warnings).toEqual([]);
    // 30 minutes at 10 s, the sample that noticed the kill the last.
    expect(recording.samples).toHaveLength(181);
    expect(recording.samples.at(-1)!.exits!.map((e) => e.pid)).toEqual([exit.pid]);
    const findings = diagnose(recording.samples);
    const oom = findings.find((f) => f.id === 'oom-killed' && f.subject.pid === exit.pid);
    expect(oom).toBeDefined();
    expect(oom!.summary).toMatch(/malloc's memory in use grew/);

    const beside = JSON.parse(readFileSync(flight!.diagnosis, 'utf8'));
    expect(beside).toMatchObject({ format: 'gpu-layers-flight', recording: path.basename(flight!.recording), event: { kind: 'oom-kill', pid: exit.pid } });
    expect(beside.findingsOfTheProcess).toContain('oom-killed');
    expect(statSync(path.join(work, 'kill')).mode & 0o777).toBe(0o700);
  });

  it('a CUDA out-of-memory counted by the allocator is a flight that names every process on the GPU', () => {
    const samples = structuredClone(killed.slice(0, 40));
    const worker = (s: LayeredSample) => s.devices[0]!.processes![0]!;
    samples.forEach((s, i) => {
      worker(s).layers.allocator!.numOoms = i < 30 ? 0 : 1;
      // A second process on the GPU from the start: the neighbour.
      const neighbour = { ...structuredClone(worker(s)), pid: 999_001, command: 'python train.py' };
      neighbour.layers.allocator!.numOoms = 0;
      s.devices[0]!.processes!.push(neighbour);
    });
    const flights = recorder('cuda');
    const written = samples.flatMap((s) => flights.observe(s).flights);
    expect(written).toHaveLength(1);
    expect(written[0]!.event).toMatchObject({ kind: 'cuda-oom', pid: worker(samples[0]!).pid, noticedAt: samples[30]!.takenAt });
    expect(written[0]!.event.processesOnGpu.map((p) => p.pid).sort()).toEqual([worker(samples[0]!).pid, 999_001].sort());
    expect(written[0]!.event.detail).toMatch(/1 new out-of-memory/);
  });

  it('keeps at most maxFlights and maxBytes of flights, oldest removed first', () => {
    const flights = recorder('bounded', { maxFlights: 3 });
    const samples = structuredClone(killed.slice(0, 60));
    samples.forEach((s, i) => {
      // A new out-of-memory every tenth sample: five flights.
      s.devices[0]!.processes![0]!.layers.allocator!.numOoms = Math.floor(i / 10);
    });
    const written = samples.flatMap((s) => flights.observe(s).flights);
    expect(written).toHaveLength(5);
    const left = readdirSync(path.join(work, 'bounded')).sort();
    expect(left).toEqual(written.slice(-3).flatMap((f) => [path.basename(f.diagnosis), path.basename(f.recording)]).sort());

    const small = recorder('bytes', { maxBytes: 1 });
    const few = samples.flatMap((s) => small.observe(s).flights);
    // Over its bytes from the first: only the newest is kept.
    expect(readdirSync(path.join(work, 'bytes')).sort()).toEqual([path.basename(few.at(-1)!.diagnosis), path.basename(few.at(-1)!.recording)].sort());
  });

  it('a folder others can write into is refused as a failure, and sampling goes on', () => {
    const open = path.join(work, 'open');
    mkdirSync(open);
    chmodSync(open, 0o777);
    const flights = recorder('open');
    const results = killed.map((s) => flights.observe(s));
    const failures = results.flatMap((r) => r.failures);
    expect(failures).toHaveLength(1);
    expect(failures[0]).toMatch(/can be written by other users/);
    expect(results.flatMap((r) => r.flights)).toEqual([]);
    expect(readdirSync(open)).toEqual([]);
  });
});
