/**
 * Where the rules must stay silent or change their mind: recorded incidents (through the real
 * pipeline) altered in one respect each, with the gaps recomputed by the same code as live.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { diagnose } from '../../src/diagnosis/diagnose.js';
import { incidentNamed } from '../../src/mock-host/incidents.js';
import { recordIncident } from '../../src/mock-host/record-incident.js';
import { computeGaps } from '../../src/layers/gaps.js';
import type { LayeredProcess, LayeredSample } from '../../src/layers/schema.js';
import { readRecording } from '../../src/recording/read-recording.js';

let work: string;
const recorded = new Map<string, LayeredSample[]>();

beforeAll(async () => {
  work = mkdtempSync(path.join(tmpdir(), 'gpu-layers-boundaries-'));
  for (const name of ['cuda-graph-creep', 'lazy-init']) {
    const file = path.join(work, `${name}.jsonl`);
    await recordIncident(incidentNamed(name)!, file, { gpuLayersVersion: 'test' });
    recorded.set(name, (await readRecording(file)).samples);
  }
}, 60_000);
afterAll(() => rmSync(work, { recursive: true, force: true }));

/** A deep copy of an incident's samples with `change` applied to each GPU process. */
function altered(name: string, change: (p: LayeredProcess, index: number, first: LayeredProcess) => void): LayeredSample[] {
  const samples: LayeredSample[] = structuredClone(recorded.get(name)!);
  const first = structuredClone(samples[0]!.devices[0]!.processes![0]!);
  samples.forEach((sample, index) => {
    for (const p of sample.devices.flatMap((d) => d.processes ?? [])) {
      change(p, index, first);
      p.gaps = computeGaps(p.layers, p.errors ?? {});
    }
  });
  return samples;
}

const ids = (samples: LayeredSample[]) => diagnose(samples).map((f) => f.id);

describe('diagnosis boundaries', () => {
  it('driver growth matched by the allocator reserving as much is not CUDA graph creep', () => {
    expect(ids(recorded.get('cuda-graph-creep')!)).toEqual(['cuda-graph-creep']);
    const explained = altered('cuda-graph-creep', (p, _, first) => {
      p.layers.allocator!.reservedBytes! += p.layers.driverBytes! - first.layers.driverBytes!;
    });
    expect(ids(explained)).not.toContain('cuda-graph-creep');
  });

  it('too short a window names nothing', () => {
    expect(ids(recorded.get('cuda-graph-creep')!.slice(0, 5))).toEqual([]);
  });

  it('a step long after the first requests is not lazy initialisation', () => {
    expect(ids(recorded.get('lazy-init')!)).toEqual(['lazy-init']);
    const late = altered('lazy-init', (p, index, first) => {
      if (index >= 20 && index < 70) p.layers.driverBytes = first.layers.driverBytes! + (p.layers.driverBytes! % (16 * 2 ** 20));
    });
    expect(ids(late)).toEqual([]);
  });

  it('without request figures a lone step is still named, with less confidence', () => {
    const blind = altered('lazy-init', (p) => {
      p.layers.framework = null;
    });
    const findings = diagnose(blind);
    expect(findings.map((f) => f.id)).toEqual(['lazy-init']);
    expect(findings[0]!.confidence).toBeLessThan(diagnose(recorded.get('lazy-init')!)[0]!.confidence);
    expect(findings[0]!.summary).toMatch(/no request figures/);
  });

  it('a pid reused by a new process starts a new history', () => {
    const reused = altered('cuda-graph-creep', (p, index) => {
      if (index >= 60 && p.host !== null) p.host.startTimeTicks = (p.host.startTimeTicks ?? 0) + 1;
    });
    const findings = diagnose(reused);
    // Each half alone still creeps; they are two processes, not one.
    expect(findings.map((f) => f.window.from)).toEqual([...new Set(findings.map((f) => f.window.from))]);
    expect(findings.length).toBe(2);
  });
});
