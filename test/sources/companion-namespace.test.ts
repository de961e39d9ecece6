/**
 * A worker in a container writes its companion file under the pid it sees there; gpu-layers,
 * outside, knows it by its host pid. readLayers finds the file through the process's NSpid, and
 * still refuses one written by another process with that inner pid (the start time differs).
 */
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { readLayers } from '../../src/layers/read-layers.js';
import { buildSample } from '../../src/sample/build-sample.js';
import { repoRoot } from '../helpers/paths.js';
import { context, rawDevice, rawSample, rows } from '../helpers/raw-readings.js';

// test/fixtures/proc/4242: NSpid 4242 17, started at tick 987654.
const HOST_PID = 4242;
const INNER_PID = 17;
let work: string;

beforeAll(() => {
  work = mkdtempSync(path.join(tmpdir(), 'gpu-layers-companion-ns-'));
  cpSync(path.join(repoRoot, 'test/fixtures/proc'), path.join(work, 'proc'), { recursive: true });
  // The worker runs as whoever runs the tests, so that the files this test writes are its own
  // (a companion file is joined only from its process's owner, or root).
  const status = path.join(work, 'proc', String(HOST_PID), 'status');
  const uid = process.getuid!();
  writeFileSync(status, readFileSync(status, 'utf8').replace(/^Uid:.*$/m, `Uid:\t${uid}\t${uid}\t${uid}\t${uid}`));
  mkdirSync(path.join(work, 'stats'));
});
afterAll(() => rmSync(work, { recursive: true, force: true }));

function companionFile(startTimeTicks: number, nowMs: number): void {
  const sample = buildSample(rawSample([rawDevice(0)]), context());
  const uuid = sample.devices[0]!.uuid!.slice(4);
  writeFileSync(
    path.join(work, 'stats', `${INNER_PID}.json`),
    JSON.stringify({
      format: 'gpu-layers-companion',
      version: 1,
      pid: INNER_PID,
      startTimeTicks,
      writtenAt: nowMs / 1000 - 1,
      intervalSeconds: 2,
      torchVersion: '2.8.0',
      devices: [{ index: 0, uuid, name: 'H100', stats: { 'reserved_bytes.all.current': 150, 'allocated_bytes.all.current': 100 }, privatePoolBytes: null }],
      errors: [],
    }),
  );
}

async function allocatorOf(nowMs: number) {
  const sample = buildSample(rawSample([rawDevice(0, { processRows: rows([0, HOST_PID, 200, NaN, NaN]) })]), context());
  const layered = await readLayers(sample, { procRoot: path.join(work, 'proc'), statsDir: path.join(work, 'stats'), now: () => nowMs });
  return layered.devices[0]!.processes![0]!;
}

describe('companion files of containerised workers', () => {
  it('are found under the pid the worker sees (innermost NSpid)', async () => {
    const now = Date.now();
    companionFile(987654, now);
    const p = await allocatorOf(now);
    expect(p.host?.nspid).toEqual([HOST_PID, INNER_PID]);
    expect(p.layers.allocator?.reservedBytes).toBe(150);
    expect(p.gaps.outsideAllocatorBytes).toBe(50);
  });

  it('are refused when another process with that inner pid wrote them', async () => {
    const now = Date.now();
    companionFile(111, now);
    const p = await allocatorOf(now);
    expect(p.layers.allocator).toBeNull();
    expect(p.errors?.['layers.allocator']?.code).toBe('COMPANION_OTHER_PROCESS');
  });
});
