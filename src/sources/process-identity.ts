/**
 * Who a process is, from /proc, when the host layer is not read: its start time (a reused pid),
 * its pid inside its container (the name it gives its files, and the pid a vLLM log in the
 * container tags lines with) and the users it writes files as. Anything unreadable is null.
 */
import { readFile } from 'node:fs/promises';

import { parseStatStartTime, parseStatus, parseStatusWriterUids } from './proc-files.js';

export interface ProcessIdentity {
  startTimeTicks: number | null;
  nspid: number[] | null;
  writerUids: number[] | null;
}

export async function readProcessIdentity(pid: number, procRoot = '/proc'): Promise<ProcessIdentity> {
  const [status, stat] = await Promise.all([
    readFile(`${procRoot}/${pid}/status`, 'utf8').catch(() => null),
    readFile(`${procRoot}/${pid}/stat`, 'utf8').catch(() => null),
  ]);
  return {
    startTimeTicks: stat === null ? null : parseStatStartTime(stat),
    nspid: status === null ? null : parseStatus(status).nspid,
    writerUids: status === null ? null : parseStatusWriterUids(status),
  };
}

/** Each pid's pid in its innermost PID namespace (the last NSpid entry), where /proc says. */
export async function readInnermostPids(pids: readonly number[], procRoot = '/proc'): Promise<Map<number, number>> {
  const entries = await Promise.all(
    pids.map(async (pid) => {
      const text = await readFile(`${procRoot}/${pid}/status`, 'utf8').catch(() => null);
      return [pid, text === null ? undefined : parseStatus(text).nspid?.at(-1)] as const;
    }),
  );
  return new Map(entries.filter((e): e is readonly [number, number] => e[1] !== undefined));
}
