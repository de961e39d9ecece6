/**
 * The recording writer removes the hidden temporaries (.FILE.<pid>.tmp) that writers killed
 * before their rename left beside FILE: only those of pids that no longer run and old enough that
 * no live writer (in another PID namespace, say) can still be between its write and its rename.
 */
import { existsSync, mkdtempSync, readdirSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

import { RecordingWriter } from '../../src/recording/write-recording.js';
import { exitedPid } from '../helpers/exited-pid.js';
import { recordingHeader } from '../helpers/report-recording.js';

const work = mkdtempSync(path.join(tmpdir(), 'gpu-layers-temporaries-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

function leave(dir: string, name: string, ageMs: number): void {
  const file = path.join(dir, name);
  writeFileSync(file, '');
  const at = (Date.now() - ageMs) / 1000;
  utimesSync(file, at, at);
}

describe('temporaries left by killed writers', () => {
  const cases = [
    ['a new recording', false],
    ['a recording continued', true],
  ] as const;
  it.each(cases)('%s: the dead and old are removed, the rest kept', (_, existing) => {
    const dir = mkdtempSync(path.join(work, 'dir-'));
    const file = path.join(dir, 'r.jsonl');
    if (existing) writeFileSync(file, `${JSON.stringify(recordingHeader())}\n`);
    const dead = exitedPid();
    leave(dir, `.r.jsonl.${dead}.tmp`, 10 * 60_000);
    leave(dir, `.r.jsonl.${dead + 1_000_000}.tmp`, 5 * 60_000);
    leave(dir, `.r.jsonl.${dead}0.tmp`, 1_000); // dead, but young: a writer elsewhere may be mid-rename
    leave(dir, `.r.jsonl.${process.ppid}.tmp`, 10 * 60_000); // a running pid (this test's parent)
    leave(dir, `.other.jsonl.${dead}.tmp`, 10 * 60_000); // another recording's
    leave(dir, `.r.jsonl.x${dead}.tmp`, 10 * 60_000); // not a writer's name
    const writer = new RecordingWriter(file, () => recordingHeader());
    writer.close();
    expect(readdirSync(dir).sort()).toEqual(
      [`.other.jsonl.${dead}.tmp`, `.r.jsonl.${dead}0.tmp`, `.r.jsonl.${process.ppid}.tmp`, `.r.jsonl.x${dead}.tmp`, 'r.jsonl'].sort(),
    );
    expect(existsSync(file)).toBe(true);
  });
});
