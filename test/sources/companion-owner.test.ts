/**
 * A companion file is a figure only when its process's user (or root) wrote it: another user can
 * copy a victim's pid and start time from /proc into a file of their own, link <pid>.json to a
 * file only root can read, or claim a write time in the future and an interval of years. Each is
 * refused with a reason that never quotes the file; the process's user comes from /proc.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, chownSync, linkSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest';

import { readLayers } from '../../src/layers/read-layers.js';
import { buildSample } from '../../src/sample/build-sample.js';
import { checkCompanion, readCompanion, type CompanionFile } from '../../src/sources/companion.js';
import { parseStatStartTime } from '../../src/sources/proc-files.js';
import { OTHER_UID, VICTIM_UID, giveToOtherUser, runningAsRoot } from '../helpers/other-user.js';
import { context, rawDevice, rawSample, rows } from '../helpers/raw-readings.js';

const work = mkdtempSync(path.join(tmpdir(), 'gpu-layers-companion-owner-'));
chmodSync(work, 0o755);
afterAll(() => rmSync(work, { recursive: true, force: true }));

const GPU_UUID = () => buildSample(rawSample([rawDevice(0)]), context()).devices[0]!.uuid!;
const SECRET = 'root:$6$secret-hash-that-must-not-leak:19000:0:99999:7:::';

function companionDocument(pid: number, startTimeTicks: number, overrides: Partial<CompanionFile> = {}): CompanionFile {
  return {
    format: 'gpu-layers-companion',
    version: 1,
    pid,
    startTimeTicks,
    writtenAt: Date.now() / 1000 - 1,
    intervalSeconds: 2,
    torchVersion: '2.8.0',
    devices: [{ index: 0, uuid: GPU_UUID().slice(4), name: 'H100', stats: { 'reserved_bytes.all.current': 150, 'allocated_bytes.all.current': 100 }, privatePoolBytes: null }],
    errors: [],
    ...overrides,
  };
}

describe('checkCompanion without the owner', () => {
  const now = Date.UTC(2026, 11, 7);
  const check = (document: CompanionFile) => checkCompanion('/s/4242.json', JSON.stringify(document), 4242, 99, now);

  it('refuses a write time in the future beyond a small clock skew', () => {
    expect(check(companionDocument(4242, 99, { writtenAt: now / 1000 + 3600 }))).toMatchObject({ ok: false, error: { code: 'COMPANION_INVALID', message: expect.stringMatching(/in the future/) } });
    expect(check(companionDocument(4242, 99, { writtenAt: now / 1000 + 1 }))).toMatchObject({ ok: true });
  });

  it('refuses an interval no companion writes at (a file that would never go stale)', () => {
    expect(check(companionDocument(4242, 99, { writtenAt: now / 1000 - 1, intervalSeconds: 1e9 }))).toMatchObject({ ok: false, error: { code: 'COMPANION_INVALID' } });
  });

  it('never quotes a file that is not JSON, nor keys of one that is not a companion file', () => {
    for (const text of [SECRET, `{"a": "${SECRET}"`, JSON.stringify({ ...companionDocument(4242, 99), devices: [{ index: 0, uuid: null, name: null, privatePoolBytes: null, stats: { [SECRET]: 'x' } }] })]) {
      const result = checkCompanion('/s/4242.json', text, 4242, 99, now);
      expect(result.ok).toBe(false);
      const message = result.ok ? '' : result.error.message;
      expect(message).not.toMatch(/secret|root:|\$6\$/);
    }
  });
});

describe.runIf(runningAsRoot)('companion files of another user', () => {
  let dir: string;
  let sleeper: ChildProcess;
  let startTime: number;

  /** A process of VICTIM_UID, whose pid and start time anyone can read in /proc. */
  beforeEach(async () => {
    dir = mkdtempSync(path.join(work, 'stats-'));
    chmodSync(dir, 0o1777);
    sleeper = spawn('setpriv', [`--reuid=${VICTIM_UID}`, `--regid=${VICTIM_UID}`, '--clear-groups', 'sleep', '30'], { stdio: 'ignore' });
    for (let i = 0; i < 100; i++) {
      try {
        const stat = readFileSync(`/proc/${sleeper.pid}/stat`, 'utf8');
        if (stat.includes('(sleep)')) {
          startTime = parseStatStartTime(stat)!;
          return;
        }
      } catch {
        // not there yet
      }
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    throw new Error('the sleeper did not start');
  });
  afterEach(() => {
    sleeper.kill('SIGKILL');
  });

  function plant(owner: number, document: unknown = companionDocument(sleeper.pid!, startTime)): string {
    const file = path.join(dir, `${sleeper.pid}.json`);
    writeFileSync(file, typeof document === 'string' ? document : JSON.stringify(document));
    chownSync(file, owner, owner);
    return file;
  }

  async function allocatorLayer() {
    const sample = buildSample(rawSample([rawDevice(0, { processRows: rows([0, sleeper.pid!, 200, NaN, NaN]) })]), context());
    const layered = await readLayers(sample, { statsDir: dir });
    const p = layered.devices[0]!.processes![0]!;
    return { allocator: p.layers.allocator, error: p.errors?.['layers.allocator'] };
  }

  it("is joined when the process's user wrote it", async () => {
    plant(VICTIM_UID);
    expect((await allocatorLayer()).allocator?.reservedBytes).toBe(150);
  });

  it('is joined when root wrote it', async () => {
    plant(0);
    expect((await allocatorLayer()).allocator?.reservedBytes).toBe(150);
  });

  it('is refused when another user wrote it with the right pid and start time', async () => {
    plant(OTHER_UID);
    const { allocator, error } = await allocatorLayer();
    expect(allocator).toBeNull();
    expect(error).toMatchObject({ code: 'COMPANION_UNTRUSTED', message: expect.stringMatching(new RegExp(`uid ${OTHER_UID}.*uid ${VICTIM_UID}`)) });
  });

  it('is refused when <pid>.json is a link, and nothing of its target is quoted', async () => {
    const secret = path.join(work, 'shadow');
    writeFileSync(secret, SECRET, { mode: 0o600 });
    const link = path.join(dir, `${sleeper.pid}.json`);
    symlinkSync(secret, link);
    giveToOtherUser(link, true);
    const { allocator, error } = await allocatorLayer();
    expect(allocator).toBeNull();
    expect(error?.code).toBe('COMPANION_UNTRUSTED');
    expect(error?.message).not.toMatch(/secret|root:/);
    // The same through the reader alone, with the trust check given the file's own owner.
    const direct = await readCompanion(dir, sleeper.pid!, { startTimeTicks: startTime, writerUids: [VICTIM_UID] }, Date.now());
    expect(direct).toMatchObject({ ok: false, error: { code: 'COMPANION_UNTRUSTED' } });
  });

  it('is refused when <pid>.json is a hard link of another file', async () => {
    const original = path.join(work, `original-${sleeper.pid}.json`);
    writeFileSync(original, JSON.stringify(companionDocument(sleeper.pid!, startTime)));
    chownSync(original, VICTIM_UID, VICTIM_UID);
    linkSync(original, path.join(dir, `${sleeper.pid}.json`));
    expect((await allocatorLayer()).error?.code).toBe('COMPANION_UNTRUSTED');
  });

  it('is refused, unquoted, when it is not JSON', async () => {
    plant(VICTIM_UID, SECRET);
    const { error } = await allocatorLayer();
    expect(error?.code).toBe('COMPANION_INVALID');
    expect(error?.message).not.toMatch(/secret|root:/);
  });

  it('is refused when who runs the process cannot be told', async () => {
    plant(VICTIM_UID);
    const direct = await readCompanion(dir, sleeper.pid!, { startTimeTicks: startTime, writerUids: null }, Date.now());
    expect(direct).toMatchObject({ ok: false, error: { code: 'COMPANION_UNTRUSTED', message: expect.stringMatching(/cannot tell/) } });
  });
});
