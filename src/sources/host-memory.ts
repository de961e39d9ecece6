/** The host's memory from /proc/meminfo: total and available (MemAvailable, the kernel's estimate). */
import { readFile } from 'node:fs/promises';

import { kibToBytes } from './proc-files.js';

export interface HostMemory {
  total: number | null;
  available: number | null;
}

export function parseMeminfo(text: string): HostMemory {
  const field = (name: string): number | null => {
    const match = new RegExp(`^${name}:\\s+(\\d+) kB$`, 'm').exec(text);
    return match === null ? null : kibToBytes(match[1]!);
  };
  return { total: field('MemTotal'), available: field('MemAvailable') };
}

export async function readHostMemory(procRoot = '/proc'): Promise<HostMemory> {
  try {
    return parseMeminfo(await readFile(`${procRoot}/meminfo`, 'utf8'));
  } catch {
    return { total: null, available: null };
  }
}
