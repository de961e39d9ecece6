/**
 * Who listens on a TCP port, from /proc: the LISTEN sockets on the port in <procRoot>/net/tcp and
 * tcp6 (the network namespace of whoever reads them: the one a loopback URL reaches), each with
 * the uid that owns it, and the processes holding each (a /proc/<pid>/fd link "socket:[inode]").
 * Another user's descriptors are not readable (unless root): such a socket's holders stay
 * unknown, and its uid, which /proc/net shows to everyone, is all that is known.
 */
import { readFile, readdir, readlink } from 'node:fs/promises';

import { numericEntries } from './process-tree.js';

export interface PortSocket {
  inode: number;
  /** The socket's owner (the creator's fsuid), as /proc/net shows it. */
  uid: number;
  /** Processes holding it; empty when none could be seen (another user's descriptors). */
  holders: number[];
}

export type PortListeners = { ok: true; sockets: PortSocket[] } | { ok: false; why: string };

/** /proc/net/tcp state 0A is TCP_LISTEN (include/net/tcp_states.h). */
const LISTEN = '0A';

/**
 * The LISTEN sockets on `port` in /proc/net/tcp or tcp6 text: fields are sl, local_address
 * (hex address:port), rem_address, st, tx:rx queue, tr:when, retrnsmt, uid, timeout, inode.
 */
export function parsePortSockets(text: string, port: number): { inode: number; uid: number }[] {
  const sockets: { inode: number; uid: number }[] = [];
  for (const line of text.split('\n').slice(1)) {
    const fields = line.trim().split(/\s+/);
    if (fields.length < 10 || fields[3] !== LISTEN) continue;
    const portHex = fields[1]!.split(':')[1] ?? '';
    const uid = Number(fields[7]);
    const inode = Number(fields[9]);
    if (!/^[0-9A-Fa-f]{1,4}$/.test(portHex) || parseInt(portHex, 16) !== port) continue;
    if (Number.isSafeInteger(uid) && uid >= 0 && Number.isSafeInteger(inode) && inode > 0) sockets.push({ inode, uid });
  }
  return sockets;
}

/** Each inode's holders among the processes whose descriptors this user can read. */
async function holdersOf(inodes: ReadonlySet<number>, procRoot: string): Promise<Map<number, number[]>> {
  const holders = new Map<number, number[]>();
  await Promise.all(
    (await numericEntries(procRoot)).map(async (pid) => {
      let fds: string[];
      try {
        fds = await readdir(`${procRoot}/${pid}/fd`);
      } catch {
        return; // another user's process, or gone
      }
      const held = new Set<number>();
      await Promise.all(
        fds.map(async (fd) => {
          const match = /^socket:\[(\d+)\]$/.exec(await readlink(`${procRoot}/${pid}/fd/${fd}`).catch(() => ''));
          if (match !== null && inodes.has(Number(match[1]))) held.add(Number(match[1]));
        }),
      );
      for (const inode of held) holders.set(inode, [...(holders.get(inode) ?? []), pid]);
    }),
  );
  return holders;
}

export async function readPortListeners(port: number, procRoot = '/proc'): Promise<PortListeners> {
  const found = new Map<number, number>();
  let readable = false;
  for (const file of ['tcp', 'tcp6']) {
    try {
      for (const socket of parsePortSockets(await readFile(`${procRoot}/net/${file}`, 'utf8'), port)) found.set(socket.inode, socket.uid);
      readable = true;
    } catch {
      // no IPv6 in this kernel, or no /proc/net at this root
    }
  }
  if (!readable) return { ok: false, why: `${procRoot}/net/tcp and tcp6 cannot be read` };
  if (found.size === 0) return { ok: true, sockets: [] };
  const holders = await holdersOf(new Set(found.keys()), procRoot);
  return {
    ok: true,
    sockets: [...found].map(([inode, uid]) => ({ inode, uid, holders: (holders.get(inode) ?? []).sort((a, b) => a - b) })),
  };
}
