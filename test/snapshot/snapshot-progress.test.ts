/** The snapshot command's progress bar: only on a terminal, only for large files, redrawn in place and cleared at the end. */
import { describe, expect, it } from 'vitest';

import { progressBar } from '../../src/cli/commands/snapshot-command.js';
import type { CliIo } from '../../src/cli/cli-io.js';

function io(isTTY: boolean): { io: CliIo; written: string[] } {
  const written: string[] = [];
  return { written, io: { stdout: { write: () => true }, stderr: { write: (t: string) => written.push(t), isTTY }, env: {} } };
}

const MB = 1024 * 1024;

describe('snapshot progress bar', () => {
  it('draws both passes in place on a terminal and clears itself at the end', () => {
    const { io: tty, written } = io(true);
    const bar = progressBar(tty)!;
    bar({ phase: 'scan', bytes: 150 * MB, totalBytes: 300 * MB });
    bar({ phase: 'read', bytes: 150 * MB, totalBytes: 300 * MB });
    bar({ phase: 'read', bytes: 300 * MB, totalBytes: 300 * MB });
    expect(written[0]).toBe(`\r[###${' '.repeat(27)}]  10% scanning`);
    expect(written[1]).toBe(`\r[${'#'.repeat(18)}${' '.repeat(12)}]  60% reading `);
    expect(written.at(-1)).toBe('\r\u001b[K');
  });

  it('stays silent for small files and when stderr is not a terminal', () => {
    const { io: tty, written } = io(true);
    progressBar(tty)!({ phase: 'read', bytes: 1 * MB, totalBytes: 2 * MB });
    expect(written).toEqual([]);
    expect(progressBar(io(false).io)).toBeUndefined();
  });
});
