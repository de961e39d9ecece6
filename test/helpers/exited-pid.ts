/** A pid that ran and has exited (its child is reaped by spawnSync): a writer that was killed. */
import { spawnSync } from 'node:child_process';

export function exitedPid(): number {
  const child = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' });
  return Number(child.stdout);
}
