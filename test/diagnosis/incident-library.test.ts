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
