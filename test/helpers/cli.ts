/** Runs the built CLI in a child process, as a user would, with the given environment. */
import { spawn, spawnSync } from 'node:child_process';

import { cliPath, requireFile } from './paths.js';

export interface CliRun {
  status: number | null;
  stdout: string;
  stderr: string;
}

export function runCli(args: string[], env: Record<string, string | undefined> = {}): CliRun {
  requireFile(cliPath, 'build the package first (npm ci runs the build)');
  const run = spawnSync(process.execPath, [cliPath, ...args], {
    env: { ...process.env, NO_COLOR: '1', ...env },
    encoding: 'utf8',
    timeout: 20_000,
  });
  return { status: run.status, stdout: run.stdout, stderr: run.stderr };
}

/** `probe --json` in a child process, parsed. */
export function probeJson(env: Record<string, string | undefined>, args: string[] = []): { run: CliRun; json: any } {
  const run = runCli(['probe', '--json', ...args], env);
  if (run.status !== 0) throw new Error(`gpu-layers probe exited ${run.status}: ${run.stderr}`);
  return { run, json: JSON.parse(run.stdout) };
}

/**
 * The same, without blocking this process: needed when this process serves something the CLI
 * reads (a vLLM /metrics fixture server), which spawnSync would freeze.
 */
export function runCliAsync(args: string[], env: Record<string, string | undefined> = {}): Promise<CliRun> {
  requireFile(cliPath, 'build the package first (npm ci runs the build)');
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [cliPath, ...args], { env: { ...process.env, NO_COLOR: '1', ...env } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk) => (stdout += chunk));
    child.stderr.on('data', (chunk) => (stderr += chunk));
    const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
    child.on('close', (status) => {
      clearTimeout(timer);
      resolve({ status, stdout, stderr });
    });
  });
}

export async function probeJsonAsync(env: Record<string, string | undefined>, args: string[] = []): Promise<{ run: CliRun; json: any }> {
  const run = await runCliAsync(['probe', '--json', ...args], env);
  if (run.status !== 0) throw new Error(`gpu-layers probe exited ${run.status}: ${run.stderr}`);
  return { run, json: JSON.parse(run.stdout) };
}
