/**
 * analyzeSnapshot and `gpu-layers snapshot` against snapshots written by CPython's own pickle
 * (scripts/oracles/generate_snapshot.py, protocols 2, 4 and 5) and the figures CPython computes from
 * them (scripts/oracles/snapshot_figures.py, the sidecar): every figure must match exactly, from a file,
 * from a buffer, and read through buffers small enough to split every opcode.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { analyzeSnapshot } from '../../src/snapshot/analyze-snapshot.js';
import { snapshotReportSchema } from '../../src/snapshot/snapshot-report-schema.js';
import { runCli } from '../helpers/cli.js';
import { python, repoRoot } from '../helpers/paths.js';

let work: string;
let expected: { devices: unknown[] };
const PROTOCOLS = [2, 4, 5];
const file = (protocol: number) => path.join(work, `snapshot.p${protocol}.pickle`);

beforeAll(() => {
  work = mkdtempSync(path.join(tmpdir(), 'gpu-layers-snapshot-'));
  const run = spawnSync(python, [path.join(repoRoot, 'scripts/oracles/generate_snapshot.py'), work], { encoding: 'utf8' });
  if (run.status !== 0) throw new Error(`generate_snapshot.py failed: ${run.stderr}`);
  expected = JSON.parse(readFileSync(path.join(work, 'snapshot.expected.json'), 'utf8'));
});
afterAll(() => rmSync(work, { recursive: true, force: true }));

describe('snapshot figures', () => {
  it('the generated snapshot exercises what the figures cover', () => {
    const devices = expected.devices as any[];
    expect(devices.length).toBeGreaterThanOrEqual(3);
    expect(devices.some((d) => d.privatePools.some((p: any) => p.kind === 'cuda-graph'))).toBe(true);
    expect(devices.some((d) => d.privatePools.some((p: any) => p.kind === 'mempool'))).toBe(true);
    expect(devices.some((d) => d.expandableSegments.segmentCount > 0)).toBe(true);
    expect(devices.some((d) => d.ooms.length > 0)).toBe(true);
    expect(devices.some((d) => d.fragmentationRatio === null)).toBe(true);
    expect(devices.some((d) => d.swissCheese.length >= 2)).toBe(true);
  });

  it.each(PROTOCOLS)('protocol %i: every figure equals CPython\'s, from a file, a buffer and tiny reads', async (protocol) => {
    const fromFile = await analyzeSnapshot(file(protocol));
    expect(snapshotReportSchema.safeParse(fromFile).success).toBe(true);
    expect(fromFile.protocol).toBe(protocol);
    expect(fromFile.devices).toEqual(expected.devices);
    expect((await analyzeSnapshot(readFileSync(file(protocol)))).devices).toEqual(expected.devices);
    expect((await analyzeSnapshot(file(protocol), { chunkBytes: 3 })).devices).toEqual(expected.devices);
  });

  it('`snapshot --json` prints the same figures; the text names fragmentation and pools', () => {
    const json = runCli(['snapshot', '--json', file(4)]);
    expect(json.status, json.stderr).toBe(0);
    const document = JSON.parse(json.stdout);
    expect(document).toMatchObject({ schemaVersion: 1, file: file(4), protocol: 4, devices: expected.devices });
    const text = runCli(['snapshot', file(5)]);
    expect(text.status, text.stderr).toBe(0);
    expect(text.stdout).toMatch(/^device 0 {2}\d+ segment\(s\)/m);
    expect(text.stdout).toMatch(/fragmentation 0\.\d{3}: the largest free block is/);
    expect(text.stdout).toMatch(/CUDA graph pool \(\d+, 0\)/);
    expect(text.stdout).toMatch(/Swiss-cheese segments/);
  });

  it('a protocol 2 snapshot cut anywhere is a truncated pickle, never a partial report', async () => {
    const whole = readFileSync(file(2));
    for (const at of [1, 2, 100, Math.floor(whole.length / 2), whole.length - 1]) {
      await expect(analyzeSnapshot(whole.subarray(0, at))).rejects.toMatchObject({
        code: 'SNAPSHOT_INVALID',
        message: expect.stringMatching(/(the file ends in the middle of the pickle|announces \d+ bytes but only \d+ remain in the file) \(truncated\?\)/),
      });
    }
  });

  it('reports progress through both passes up to the whole file', async () => {
    const seen: string[] = [];
    const size = readFileSync(file(4)).length;
    await analyzeSnapshot(file(4), { chunkBytes: 1024, onProgress: (p) => seen.push(`${p.phase}:${p.bytes === p.totalBytes ? 'end' : 'mid'}`) });
    expect(size).toBeGreaterThan(2048);
    expect(seen).toContain('scan:mid');
    expect(seen).toContain('read:mid');
    expect(seen[seen.length - 1]).toBe('read:end');
  });
});
