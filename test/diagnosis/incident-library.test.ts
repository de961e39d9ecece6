/**
 * The scenario library, each incident played through the real pipeline (the addon on the mock
 * NVML, companion files, /proc stand-in, vLLM /metrics on loopback) into a recording, read back
 * and diagnosed: every incident must get exactly its own finding, the healthy run none.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { diagnose } from '../../src/diagnosis/diagnose.js';
import { findingSchema } from '../../src/diagnosis/finding-schema.js';
import { INCIDENTS } from '../../src/mock-host/incidents.js';
import { figuresOnly } from '../../src/monitor/figures-only.js';
import { recordIncident } from '../../src/mock-host/record-incident.js';
import { readRecording } from '../../src/recording/read-recording.js';

let work: string;
beforeAll(() => {
  work = mkdtempSync(path.join(tmpdir(), 'gpu-layers-incidents-'));
});
afterAll(() => rmSync(work, { recursive: true, force: true }));

describe.each(INCIDENTS.map((incident) => [incident.name, incident] as const))('incident %s', (_, incident) => {
  it(`is recorded through the pipeline and diagnosed as exactly [${incident.expect.join(', ')}]`, async () => {
    const file = path.join(work, `${incident.name}.jsonl`);
    await recordIncident(incident, file, { gpuLayersVersion: '0.0.0-test' });
    const recording = await readRecording(file);
    expect(recording.warnings).toEqual([]);
    expect(recording.header.intervalMs).toBe(incident.intervalMs);
    expect(recording.samples).toHaveLength(incident.steps);

    // Every layer was joined, not just the driver's: the finding rests on all of them.
    const last = recording.samples[recording.samples.length - 1]!;
    const workers = last.devices.flatMap((d) => d.processes ?? []);
    expect(workers).toHaveLength(incident.gpus);
    for (const worker of workers) {
      expect(worker.layers.allocator).not.toBeNull();
      expect(worker.layers.framework?.matchedBy).toBe('listening-socket');
      expect(worker.layers.contextBytes).toBe(532 * 2 ** 20);
      expect(worker.host?.anonBytes).not.toBeNull();
    }

    // The script is physically possible: the allocator never hands out more than it reserved,
    // and memory trapped in split blocks is part of what it holds free.
    for (const sample of recording.samples) {
      for (const p of sample.devices.flatMap((d) => d.processes ?? [])) {
        const a = p.layers.allocator!;
        expect(a.allocatedBytes! + a.privatePoolBytes!).toBeLessThanOrEqual(a.reservedBytes!);
        expect(a.inactiveSplitBytes!).toBeLessThanOrEqual(a.reservedBytes! - a.allocatedBytes! - a.privatePoolBytes!);
        expect(p.layers.driverBytes!).toBeGreaterThan(a.reservedBytes!);
      }
    }

    const findings = diagnose(recording.samples);
    for (const finding of findings) expect(findingSchema.safeParse(finding).success).toBe(true);
    expect(findings.map((f) => f.id).sort()).toEqual([...incident.expect].sort());
    // The exporter's window keeps copies without the reasons: the diagnosis must not change.
    expect(diagnose(recording.samples.map(figuresOnly))).toEqual(findings);
  });
});

describe('the host layers through the pipeline', () => {
  const findingOf = async (name: string) => {
    const incident = INCIDENTS.find((i) => i.name === name)!;
    const file = path.join(work, `${name}-host.jsonl`);
    await recordIncident(incident, file, { gpuLayersVersion: '0.0.0-test' });
    const { samples } = await readRecording(file);
    return { samples, finding: diagnose(samples)[0]! };
  };

  it("anonymous growth with malloc flat is named outside malloc, with malloc's own figure as evidence; malloc growth is the heap leak", async () => {
    const anonymous = await findingOf('rss-not-malloc-anonymous');
    expect(anonymous.finding.summary).toContain('anonymous memory malloc does not hold');
    expect(anonymous.finding.evidence.map((e) => e.series)).toEqual(['host.rssBytes', 'host.outsideMallocBytes', 'host.malloc.inUseBytes']);
    // The companion's malloc figures came through the real file and join.
    const worker = anonymous.samples.at(-1)!.devices[0]!.processes![0]!;
    expect(worker.host?.malloc?.source).toBe('mallinfo2');
    expect(worker.host?.anonMappingsCount).toBeGreaterThan(100);

    const leak = await findingOf('host-heap-leak');
    expect(leak.finding.summary).toMatch(/^malloc's memory in use grew/);
    expect(leak.finding.evidence[0]!.series).toBe('host.malloc.inUseBytes');
  });
});
