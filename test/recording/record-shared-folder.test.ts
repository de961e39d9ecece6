/**
 * `record` into a folder another user can write (/tmp, or one they own): no link or file they
 * plant there gets the recorder to write over a file of their choosing, to append its samples to
 * a file of theirs, or to fail with an internal error; its cleanup of leftovers touches only its
 * own. The other user is `nobody`, handed files by chown (root only).
 */
import { chmodSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeEach, describe, expect, it, vi } from 'vitest';

import { isGpuLayersError } from '../../src/errors.js';
import { RecordingWriter, checkRecordingTarget } from '../../src/recording/write-recording.js';
import { readRecording } from '../../src/recording/read-recording.js';
import { writeReport } from '../../src/report/write-report.js';
import { writeFileAtomic } from '../../src/write-file-atomic.js';
import { exitedPid } from '../helpers/exited-pid.js';
import { giveToOtherUser, runningAsRoot } from '../helpers/other-user.js';
import { repoRoot } from '../helpers/paths.js';
import { recordingHeader } from '../helpers/report-recording.js';

/** Hex names the writer's next temporaries take (then random again): the tests plant there. */
const plannedNames = vi.hoisted(() => [] as string[]);
vi.mock('node:crypto', async (importOriginal) => {
  const crypto = await importOriginal<typeof import('node:crypto')>();
  return { ...crypto, randomBytes: (size: number) => (plannedNames.length > 0 ? Buffer.from(plannedNames.shift()!, 'hex') : crypto.randomBytes(size)) };
});

const work = mkdtempSync(path.join(tmpdir(), 'gpu-layers-record-shared-'));
chmodSync(work, 0o755);
afterAll(() => rmSync(work, { recursive: true, force: true }));

const VICTIM_TEXT = 'the victim file, untouched\n';
let folder: string;
let victim: string;

/** A folder like /tmp (root's, sticky) or one the other user owns. */
function sharedFolder(owner: 'root-sticky' | 'other-user'): string {
  const dir = mkdtempSync(path.join(work, `${owner}-`));
  chmodSync(dir, owner === 'root-sticky' ? 0o1777 : 0o777);
  if (owner === 'other-user') giveToOtherUser(dir);
  return dir;
}

function plantLink(at: string, to: string): void {
  symlinkSync(to, at);
  giveToOtherUser(at, true);
}

function errorCodeOf(action: () => unknown): string | null {
  try {
    action();
    return null;
  } catch (error) {
    if (!isGpuLayersError(error)) throw error;
    return error.code;
  }
}

beforeEach(() => {
  victim = path.join(mkdtempSync(path.join(work, 'victim-')), 'victim.txt');
  writeFileSync(victim, VICTIM_TEXT);
});

describe.runIf(runningAsRoot).each(['root-sticky', 'other-user'] as const)('record into a %s folder', (owner) => {
  beforeEach(() => {
    folder = sharedFolder(owner);
  });

  it('the temporary passes over a link, a file or a folder planted at the names it would take, and opens none of them', () => {
    const file = path.join(folder, 'r.jsonl');
    const [link, taken, dir, fresh] = ['11', '22', '33', '44'].map((b) => b.repeat(8));
    const at = (tail: string) => path.join(folder, `.r.jsonl.${process.pid}.${tail}.tmp`);
    plantLink(at(link!), victim);
    writeFileSync(at(taken!), VICTIM_TEXT);
    giveToOtherUser(at(taken!));
    mkdirSync(at(dir!));
    giveToOtherUser(at(dir!));
    plannedNames.push(link!, taken!, dir!, fresh!);
    writeFileAtomic(file, 'the recording\n');
    expect(readFileSync(file, 'utf8')).toBe('the recording\n');
    expect(readFileSync(victim, 'utf8')).toBe(VICTIM_TEXT);
    expect(readFileSync(at(taken!), 'utf8')).toBe(VICTIM_TEXT);
    expect(lstatSync(at(link!)).isSymbolicLink()).toBe(true);
    // Every name taken: the system's error, nothing written anywhere.
    plannedNames.push(...Array.from({ length: 17 }, () => link!));
    expect(() => writeFileAtomic(file, 'again\n')).toThrow(expect.objectContaining({ code: 'EEXIST' }));
    plannedNames.length = 0;
    expect(readFileSync(victim, 'utf8')).toBe(VICTIM_TEXT);
    expect(readFileSync(file, 'utf8')).toBe('the recording\n');
  });

  // The names the writers used before (a pid alone): links planted there once redirected them.
  it('a link planted at the temporary name of this pid does not redirect the header', () => {
    plantLink(path.join(folder, `.r.jsonl.${process.pid}.tmp`), victim);
    const writer = new RecordingWriter(path.join(folder, 'r.jsonl'), () => recordingHeader());
    writer.close();
    expect(readFileSync(victim, 'utf8')).toBe(VICTIM_TEXT);
    expect(lstatSync(path.join(folder, 'r.jsonl')).isFile()).toBe(true);
    expect(readFileSync(path.join(folder, 'r.jsonl'), 'utf8')).toBe(`${JSON.stringify(recordingHeader())}\n`);
  });

  it('report --html: links planted at the temporary names of this pid do not redirect the HTML', async () => {
    const out = path.join(folder, 'night.html');
    for (const name of [`night.html.${process.pid}.tmp`, `.night.html.${process.pid}.tmp`]) plantLink(path.join(folder, name), victim);
    const recording = await readRecording(path.join(repoRoot, 'assets/overnight.recording.jsonl.gz'));
    writeReport(recording, out);
    expect(readFileSync(victim, 'utf8')).toBe(VICTIM_TEXT);
    expect(readFileSync(out, 'utf8')).toMatch(/^<!doctype html>/i);
  });

  it('a folder planted at the temporary name is no internal error: the recording is made', () => {
    const planted = path.join(folder, `.r.jsonl.${process.pid}.tmp`);
    mkdirSync(planted, 0o700);
    writeFileSync(path.join(planted, 'x'), '');
    giveToOtherUser(planted);
    const writer = new RecordingWriter(path.join(folder, 'r.jsonl'), () => recordingHeader());
    writer.close();
    expect(readdirSync(folder).sort()).toEqual([`.r.jsonl.${process.pid}.tmp`, 'r.jsonl']);
  });

  it('a recording at FILE that is a link another user made is refused, its target untouched', () => {
    const theirs = path.join(mkdtempSync(path.join(work, 'theirs-')), 'mine.jsonl');
    const text = `${JSON.stringify(recordingHeader())}\n`;
    writeFileSync(theirs, text);
    plantLink(path.join(folder, 'r.jsonl'), theirs);
    expect(errorCodeOf(() => checkRecordingTarget(path.join(folder, 'r.jsonl')))).toBe('OUTPUT_UNWRITABLE');
    expect(errorCodeOf(() => new RecordingWriter(path.join(folder, 'r.jsonl'), () => recordingHeader()))).toBe('OUTPUT_UNWRITABLE');
    expect(readFileSync(theirs, 'utf8')).toBe(text);
  });

  it("a recording at FILE that another user owns is not continued (this user's samples would be theirs to read)", () => {
    const file = path.join(folder, 'r.jsonl');
    writeFileSync(file, `${JSON.stringify(recordingHeader())}\n`, { mode: 0o666 });
    giveToOtherUser(file);
    expect(errorCodeOf(() => new RecordingWriter(file, () => recordingHeader()))).toBe('OUTPUT_UNWRITABLE');
    expect(readFileSync(file, 'utf8')).toBe(`${JSON.stringify(recordingHeader())}\n`);
  });

  it("the cleanup of killed writers' leftovers removes this user's and leaves other users' files alone", () => {
    const old = (Date.now() - 10 * 60_000) / 1000;
    const dead = exitedPid();
    const leave = (name: string, theirs: boolean): void => {
      writeFileSync(path.join(folder, name), '');
      if (theirs) giveToOtherUser(path.join(folder, name));
      utimesSync(path.join(folder, name), old, old);
    };
    const theirs = [`.r.jsonl.${dead}.tmp`, `.r.jsonl.${dead}.0123456789abcdef.tmp`];
    for (const name of theirs) leave(name, true);
    leave(`.r.jsonl.${exitedPid()}.tmp`, false);
    new RecordingWriter(path.join(folder, 'r.jsonl'), () => recordingHeader()).close();
    expect(readdirSync(folder).sort()).toEqual([...theirs, 'r.jsonl'].sort());
  });
});
