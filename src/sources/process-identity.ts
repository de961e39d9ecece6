/**
 * What the companion check needs to know of a process when the host layer is not read: its start
 * time (a reused pid), its pid inside its container (the file's name there) and the users it
 * writes files as. Two small reads (/proc/<pid>/status and stat); anything unreadable is null.
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
