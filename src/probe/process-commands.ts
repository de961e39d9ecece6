/**
 * Fills in each process's command line from /proc/<pid>/cmdline (asynchronously, off the event
 * loop). NVML reports host PIDs; inside a container without the host PID namespace they are not
 * in /proc, so a missing entry is a reason (PROCESS_NOT_VISIBLE), never an error.
 */
import { readFile, readdir } from 'node:fs/promises';

import type { FieldError, GpuProcess, Sample } from '../sample/schema.js';

type CommandResult = { command: string } | { error: FieldError };

function notVisible(pid: number, procRoot: string): CommandResult {
  return {
    error: {
      code: 'PROCESS_NOT_VISIBLE',
      nvmlReturn: null,
      message: `no ${procRoot}/${pid}: the process exited or lives in another PID namespace (NVML reports host PIDs)`,
    },
  };
}

async function readCommand(pid: number, procRoot: string): Promise<CommandResult> {
  try {
    const raw = await readFile(`${procRoot}/${pid}/cmdline`, 'utf8');
    const command = raw.split('\0').filter((part) => part !== '').join(' ');
    if (command !== '') return { command };
    // Kernel threads and zombies have an empty cmdline; their comm is the best name there is.
    return { command: `[${(await readFile(`${procRoot}/${pid}/comm`, 'utf8')).trim()}]` };
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ESRCH') return notVisible(pid, procRoot);
    return { error: { code: 'PROCESS_NOT_READABLE', nvmlReturn: null, message: `${procRoot}/${pid}/cmdline: ${code ?? String(error)}` } };
  }
}

function processesOf(sample: Sample): GpuProcess[] {
  const all: GpuProcess[] = [];
  for (const device of sample.devices) {
    all.push(...(device.processes ?? []));
    for (const mig of device.mig?.devices ?? []) all.push(...(mig.processes ?? []));
  }
  return all;
}

export async function attachProcessCommands(sample: Sample, procRoot = '/proc'): Promise<void> {
  const processes = processesOf(sample);
  if (processes.length === 0) return;
  // One listing of /proc instead of a failing open per pid: in a container most of NVML's host
  // pids are not there, and each failed open costs an exception.
  const visible = new Set(await readdir(procRoot).catch(() => [] as string[]));
  const byPid = new Map<number, Promise<CommandResult>>();
  for (const process of processes) {
    if (byPid.has(process.pid)) continue;
    byPid.set(process.pid, visible.has(String(process.pid)) ? readCommand(process.pid, procRoot) : Promise.resolve(notVisible(process.pid, procRoot)));
  }
  for (const process of processes) {
    const result = await byPid.get(process.pid)!;
    if ('command' in result) {
      process.command = result.command;
    } else {
      process.command = null;
      process.errors = { ...process.errors, command: result.error };
    }
  }
}
