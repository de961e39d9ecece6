/**
 * Who is who among the host's processes, from /proc: parent links (for "is this GPU process part
 * of that vLLM server?"), command lines up a process's ancestry, and which process listens on a
 * TCP port (the server behind a /metrics URL). Processes of other users or in other PID
 * namespaces may not be visible; callers get what can be seen and say so.
 */
import { readFile, readdir, readlink } from 'node:fs/promises';

export interface ListeningSocket {
  port: number;
  inode: number;
}

/** LISTEN sockets in /proc/net/tcp or tcp6 text ("local_address" hex ip:port, st 0A). */
export function parseListeningSockets(text: string): ListeningSocket[] {
  const sockets: ListeningSocket[] = [];
  for (const line of text.split('\n').slice(1)) {
    const fields = line.trim().split(/\s+/);
    if (fields.length < 10 || fields[3] !== '0A') continue;
    const port = parseInt(fields[1]!.split(':')[1] ?? '', 16);
    const inode = Number(fields[9]);
    if (Number.isInteger(port) && Number.isInteger(inode) && inode > 0) sockets.push({ port, inode });
  }
  return sockets;
}

/** Field 4 of /proc/<pid>/stat. */
export function parseParentPid(statText: string): number | null {
  const fields = statText.slice(statText.lastIndexOf(')') + 2).split(' ');
  const ppid = Number(fields[4 - 3]);
  return Number.isSafeInteger(ppid) ? ppid : null;
}

async function numericEntries(procRoot: string): Promise<number[]> {
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

/** The processes holding a listening socket on `port` (several with SO_REUSEPORT or fork). */
export async function listeningPids(port: number, procRoot = '/proc'): Promise<number[]> {
  const inodes = new Set<number>();
  for (const file of ['tcp', 'tcp6']) {
    try {
      for (const socket of parseListeningSockets(await readFile(`${procRoot}/net/${file}`, 'utf8'))) {
        if (socket.port === port) inodes.add(socket.inode);
      }
    } catch {
      // no IPv6, or no /proc/net in this namespace
    }
  }
  if (inodes.size === 0) return [];
  const owners = new Set<number>();
  await Promise.all(
    (await numericEntries(procRoot)).map(async (pid) => {
      let fds: string[];
      try {
        fds = await readdir(`${procRoot}/${pid}/fd`);
      } catch {
        return; // another user's process: its descriptors are not readable
      }
      for (const fd of fds) {
        try {
          const match = /^socket:\[(\d+)\]$/.exec(await readlink(`${procRoot}/${pid}/fd/${fd}`));
          if (match !== null && inodes.has(Number(match[1]))) owners.add(pid);
        } catch {
          // closed meanwhile
        }
      }
    }),
  );
  return [...owners].sort((a, b) => a - b);
}
