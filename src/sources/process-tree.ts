/**
 * Who is who among the host's processes, from /proc: parent links (for "is this GPU process part
 * of that vLLM server?") and command lines up a process's ancestry (who listens on a port is
 * port-listener.ts). Processes of other users or in other PID namespaces may not be visible;
 * callers get what can be seen and say so.
 */
import { readFile, readdir } from 'node:fs/promises';

/** Field 4 of /proc/<pid>/stat. */
export function parseParentPid(statText: string): number | null {
  const fields = statText.slice(statText.lastIndexOf(')') + 2).split(' ');
  const ppid = Number(fields[4 - 3]);
  return Number.isSafeInteger(ppid) ? ppid : null;
}

/** The pids in a /proc root (none when it cannot be listed). */
export async function numericEntries(procRoot: string): Promise<number[]> {
  try {
    return (await readdir(procRoot)).filter((name) => /^\d+$/.test(name)).map(Number);
  } catch {
    return [];
  }
}

/** pid -> parent pid of every process this user can see. */
export async function readParents(procRoot = '/proc'): Promise<Map<number, number>> {
  const parents = new Map<number, number>();
  await Promise.all(
    (await numericEntries(procRoot)).map(async (pid) => {
      try {
        const ppid = parseParentPid(await readFile(`${procRoot}/${pid}/stat`, 'utf8'));
        if (ppid !== null) parents.set(pid, ppid);
      } catch {
        // exited meanwhile
      }
    }),
  );
  return parents;
}

/** The process and its ancestors, nearest first, as far as /proc shows them. */
export function ancestry(pid: number, parents: ReadonlyMap<number, number>): number[] {
  const chain = [pid];
  for (let p = parents.get(pid); p !== undefined && p > 1 && !chain.includes(p) && chain.length < 64; p = parents.get(p)) {
    chain.push(p);
  }
  return chain;
}

export async function readCommandLine(pid: number, procRoot = '/proc'): Promise<string | null> {
  try {
    const raw = await readFile(`${procRoot}/${pid}/cmdline`, 'utf8');
    return raw.split('\0').filter((part) => part !== '').join(' ');
  } catch {
    return null;
  }
}
