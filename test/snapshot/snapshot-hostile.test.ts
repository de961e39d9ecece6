/**
 * What the snapshot reader refuses, and how: a pickle that would run a command (GLOBAL or
 * STACK_GLOBAL + REDUCE, also deep inside a real-looking snapshot), a pickle that is not a
 * snapshot, nesting without end, lengths past the end of the file, protocols 0 and 9, a truncated
 * file, an empty file, a folder, a missing file. Each is one clear line and exit 4 from the CLI,
 * a typed error from the library, and nothing is ever executed: the command a malicious pickle
 * carries would create a file, and that file must not exist afterwards (Python's own pickle,
 * run on the same file as a control, does create it).
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { analyzeSnapshot } from '../../src/snapshot/analyze-snapshot.js';
import { runCli } from '../helpers/cli.js';
import { python, repoRoot } from '../helpers/paths.js';

let work: string;
let marker: string;
const hostile = (name: string) => path.join(work, name);

beforeAll(() => {
  work = mkdtempSync(path.join(tmpdir(), 'gpu-layers-snapshot-hostile-'));
  marker = path.join(work, 'command-ran');
  const run = spawnSync(python, [path.join(repoRoot, 'scripts/oracles/generate_snapshot.py'), '--hostile', work], {
    encoding: 'utf8',
    env: { ...process.env, GPU_LAYERS_HOSTILE_COMMAND: `touch ${marker}` },
  });
  if (run.status !== 0) throw new Error(`generate_snapshot.py --hostile failed: ${run.stderr}`);
  writeFileSync(hostile('empty.pickle'), '');
  // What torch.save writes: a zip archive (local file header "PK\x03\x04", then archive/data.pkl).
  writeFileSync(hostile('torch-save.pt'), Buffer.concat([Buffer.from([0x50, 0x4b, 0x03, 0x04]), Buffer.alloc(26), Buffer.from('archive/data.pkl')]));
  mkdirSync(hostile('a-folder.pickle'));
});
afterAll(() => rmSync(work, { recursive: true, force: true }));

const cases: [string, RegExp][] = [
  ['malicious-p2.pickle', /refused GLOBAL \(0x63 'c'\): it would import or call Python code.* at offset \d+/],
  ['malicious-p4.pickle', /refused (STACK_GLOBAL \(0x93\)|REDUCE \(0x52 'R'\)): it would import or call Python code.* at offset \d+/],
  ['malicious-nested.pickle', /refused (GLOBAL|STACK_GLOBAL|REDUCE) .* at offset \d+/],
  ['not-a-snapshot.pickle', /not a PyTorch memory snapshot: the pickle holds a dict without "segments" \(keys: hello\)/],
  ['deep.pickle', /(containers nested deeper than 1000|more than 100000 items on the pickle stack) at offset \d+/],
  ['huge-frame.pickle', /FRAME announces \d+ bytes but only \d+ remain in the file \(truncated\?\) at offset 2/],
  ['huge-string.pickle', /(BINUNICODE8 \(0x8d\) announces \d+ bytes but only \d+ remain in the file|a string or bytes of \d+ bytes \(limit)/],
  ['torch-save.pt', /a zip archive: torch\.save output, not a memory snapshot/],
  ['protocol-9.pickle', /pickle protocol 9 is not supported \(snapshots are protocol 2 to 5\) at offset 0/],
  ['protocol-0.pickle', /not a pickle of protocol 2 to 5: it starts with .*, not PROTO at offset 0/],
  // Protocol 4 announces each frame's length, so a cut shows at the frame that runs past the end.
  ['truncated-p4.pickle', /FRAME announces \d+ bytes but only \d+ remain in the file \(truncated\?\) at offset \d+/],
  ['empty.pickle', /the file is empty/],
];

describe('hostile and malformed snapshots', () => {
  it.each(cases)('%s: SNAPSHOT_INVALID from the library, one line and exit 4 from the CLI', async (name, message) => {
    await expect(analyzeSnapshot(hostile(name))).rejects.toMatchObject({ code: 'SNAPSHOT_INVALID', message: expect.stringMatching(message) });
    const run = runCli(['snapshot', hostile(name)]);
    expect(run.status).toBe(4);
    expect(run.stderr).toMatch(message);
    expect(run.stderr.trim().split('\n')).toHaveLength(1);
    expect(run.stdout).toBe('');
  });

  it('never runs what a malicious pickle carries; Python\'s pickle, as a control, does', async () => {
    for (const name of ['malicious-p2.pickle', 'malicious-p4.pickle', 'malicious-nested.pickle']) {
      await expect(analyzeSnapshot(hostile(name))).rejects.toMatchObject({ code: 'SNAPSHOT_INVALID' });
      expect(runCli(['snapshot', '--json', hostile(name)]).status).toBe(4);
    }
    expect(existsSync(marker)).toBe(false);
    const control = spawnSync(python, ['-c', 'import pickle, sys; pickle.load(open(sys.argv[1], "rb"))', hostile('malicious-p2.pickle')], { encoding: 'utf8' });
    expect(control.status, control.stderr).toBe(0);
    expect(existsSync(marker)).toBe(true);
  });

  it('a folder, a missing file and a FIFO are SNAPSHOT_UNREADABLE, exit 4, without waiting', async () => {
    await expect(analyzeSnapshot(hostile('a-folder.pickle'))).rejects.toMatchObject({ code: 'SNAPSHOT_UNREADABLE', message: expect.stringMatching(/it is a folder/) });
    expect(runCli(['snapshot', hostile('a-folder.pickle')])).toMatchObject({ status: 4, stderr: expect.stringMatching(/it is a folder/) });
    expect(runCli(['snapshot', hostile('missing.pickle')])).toMatchObject({ status: 4, stderr: expect.stringMatching(/no such file or folder/) });
    const fifo = hostile('fifo.pickle');
    expect(spawnSync('mkfifo', [fifo]).status).toBe(0);
    // No writer: a blocking open would wait forever (runCli kills it after 20 s and the status is null).
    expect(runCli(['snapshot', fifo])).toMatchObject({ status: 4, stderr: expect.stringMatching(/not a regular file/) });
  });

  it('usage: exactly one file', () => {
    expect(runCli(['snapshot'])).toMatchObject({ status: 2, stderr: expect.stringMatching(/snapshot takes one file/) });
  });
});
