/**
 * A driver call that never returns (issue 19, finding 4) must not keep the process alive: for
 * every entry point that opens a probe, the CLI verbs and the library's functions, each in its own
 * child process, with the mock sleeping far past the deadline in nvmlInit_v2, in cuInit, or in a
 * sampling call after a good open. The child must exit by itself within GRACE_MS of saying the
 * deadline passed (or of being told to stop, for the verbs that keep going through a failed
 * sample), with the exit code and message of a timeout; a stuck shutdown may hold it one more
 * deadline. A child still alive is killed and fails the case: before the fix, a timed-out open
 * kept the CLI and a library host alive until the call returned.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { writeScenario } from '../../src/mock-host/scenario-text.js';
import { cliPath, distIndex, nodeGypBuild, requireFile } from '../helpers/paths.js';
import { host } from '../helpers/scenarios.js';

/** The deadline given to every entry point (--timeout, timeoutMs). */
const TIMEOUT_MS = 800;
/** calibrate's deadline covers its whole child process, Node's start-up included. */
const CALIBRATE_TIMEOUT_MS = 2500;
/** How long after the deadline's message (or the stop signal) the process may still live. */
const GRACE_MS = 2000;
/** Node's start-up and module loading on a loaded, shared machine, before the deadline starts. */
const START_MS = 5000;
/** The wedge: far past every bound here, as if the driver never answered. */
const WEDGE_MS = 120_000;

type Wedge = 'nvmlInit_v2' | 'cuInit' | 'nvmlDeviceGetCount_v2' | 'nvmlShutdown';
/** Open (NVML, then CUDA) and a sample's first call; nvmlShutdown has its own cases below. */
const WEDGES: readonly Wedge[] = ['nvmlInit_v2', 'cuInit', 'nvmlDeviceGetCount_v2'];
const isOpen = (wedge: Wedge): boolean => wedge === 'nvmlInit_v2' || wedge === 'cuInit';

let work: string;
const scenarioOf = (wedge: Wedge): string => path.join(work, `${wedge}.scenario`);

beforeAll(() => {
  requireFile(cliPath, 'build the package first (npm ci runs the build)');
  requireFile(distIndex, 'build the package first (npm ci runs the build)');
  work = mkdtempSync(path.join(tmpdir(), 'gpu-layers-hung-driver-'));
  for (const wedge of [...WEDGES, 'nvmlShutdown'] as const) writeScenario(scenarioOf(wedge), host(1, 1, { delay: [{ symbol: wedge, ms: WEDGE_MS }] }));
});
afterAll(() => rmSync(work, { recursive: true, force: true }));

const childEnv = (wedge: Wedge): Record<string, string | undefined> => ({
  ...process.env,
  NO_COLOR: '1',
  GPU_LAYERS_MOCK_SCENARIO: scenarioOf(wedge),
  GPU_LAYERS_MOCK_TRACE: '',
  GPU_LAYERS_NVML_LIB: nodeGypBuild.mockNvml,
  GPU_LAYERS_CUDA_LIB: nodeGypBuild.mockCuda,
  GPU_LAYERS_STATS_DIR: '',
  GPU_LAYERS_CACHE_DIR: path.join(work, 'cache'),
});

interface Ended {
  code: number | null;
  /** Killed by this test for living past every bound. */
  killed: boolean;
  stdout: string;
  stderr: string;
  /** Date.now() when the child exited, when `trigger` matched (or SIGTERM went), when it was spawned. */
  exitedAt: number;
  triggeredAt: number | null;
  spawnedAt: number;
}

/** Resolves once the child can take a SIGTERM cleanly. */
type ReadyToStop = (output: string) => Promise<void>;

/**
 * Runs `args` under node. When `trigger` first matches stdout + stderr, that moment is kept; with
 * `stop`, the child gets SIGTERM once it is ready for it, and that moment is kept instead. A child
 * alive after every bound is killed.
 */
function runChild(args: string[], env: Record<string, string | undefined>, trigger: RegExp, stop: ReadyToStop | null, deadlineMs: number): Promise<Ended> {
  return new Promise((resolve) => {
    const spawnedAt = Date.now();
    const child = spawn(process.execPath, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    let triggeredAt: number | null = null;
    let killed = false;
    let matched = false;
    const watch = (): void => {
      if (matched || !trigger.test(stdout + stderr)) return;
      matched = true;
      if (stop === null) {
        triggeredAt = Date.now();
        return;
      }
      // A readiness check that fails (the child already gone) still ends in the signal.
      void stop(stdout + stderr)
        .catch(() => {})
        .then(() => {
          triggeredAt = Date.now();
          child.kill('SIGTERM');
        });
    };
    child.stdout.on('data', (chunk) => {
      stdout += chunk;
      watch();
    });
    child.stderr.on('data', (chunk) => {
      stderr += chunk;
      watch();
    });
    const timer = setTimeout(() => {
      killed = true;
      child.kill('SIGKILL');
    }, START_MS + deadlineMs + 2 * GRACE_MS);
    child.on('exit', (code) => {
      const exitedAt = Date.now();
      clearTimeout(timer);
      // The pipes may still hold the last words: read them before judging.
      child.on('close', () => {
        watch();
        resolve({ code, killed, stdout, stderr, exitedAt, triggeredAt, spawnedAt });
      });
    });
  });
}

/** `waitMs`: a deadline the process may still wait out after the trigger (a stuck shutdown's). */
function expectPromptExit(run: Ended, deadlineMs: number, waitMs = 0): void {
  const said = `stdout: ${run.stdout.slice(0, 600)}\nstderr: ${run.stderr.slice(0, 600)}`;
  expect(run.killed, `the process was still alive ${START_MS + deadlineMs + 2 * GRACE_MS} ms after it started\n${said}`).toBe(false);
  expect(run.triggeredAt, `it never said what the test waits for\n${said}`).not.toBeNull();
  expect(run.triggeredAt! - run.spawnedAt, 'from start to the deadline message').toBeLessThan(START_MS + deadlineMs + GRACE_MS);
  expect(run.exitedAt - run.triggeredAt!, `from the deadline message (or stop) to exit\n${said}`).toBeLessThanOrEqual(waitMs + GRACE_MS);
}

// ---------------------------------------------------------------------------------------------
// The CLI verbs

interface CliCase {
  verb: string;
  args: (wedge: Wedge) => string[];
  deadlineMs: number;
  /** A verb that goes on through a failed sample: what it says then, and when it can be stopped. */
  keepsGoing?: { says: RegExp; ready: ReadyToStop };
  /** The timeout's words, where an exit-3 verb writes them. */
  said: (run: Ended) => string;
  message: RegExp;
}

const TIMEOUT_ARGS = ['--timeout', `${TIMEOUT_MS}`];
/** watch and record take SIGTERM from before their first sample. */
const stopsAnyTime: ReadyToStop = async () => {};
/**
 * serve prints its address just before it starts listening for SIGTERM: a signal sent the moment
 * the line arrives can kill it outright. Once it has answered a request, it listens.
 */
const answersHttp: ReadyToStop = async (output) => {
  const port = /http:\/\/127\.0\.0\.1:(\d+)\/metrics/.exec(output)![1];
  await fetch(`http://127.0.0.1:${port}/healthz`).then((response) => response.text());
};
const CLI_CASES: readonly CliCase[] = [
  { verb: 'probe', args: () => ['probe', ...TIMEOUT_ARGS], deadlineMs: TIMEOUT_MS, said: (r) => r.stderr, message: /did not return within \d+ ms \[NVML_TIMEOUT\]/ },
  { verb: 'probe --json', args: () => ['probe', '--json', ...TIMEOUT_ARGS], deadlineMs: TIMEOUT_MS, said: (r) => r.stderr, message: /did not return within \d+ ms \[NVML_TIMEOUT\]/ },
  { verb: 'doctor', args: () => ['doctor', ...TIMEOUT_ARGS], deadlineMs: TIMEOUT_MS, said: (r) => r.stdout, message: /did not return within \d+ ms/ },
  {
    verb: 'watch',
    args: () => ['watch', '--interval', '250ms', '--count', '2', '--no-host', ...TIMEOUT_ARGS],
    deadlineMs: TIMEOUT_MS,
    keepsGoing: { says: /warning: sample failed: .*\[NVML_TIMEOUT\]/, ready: stopsAnyTime },
    said: (r) => r.stderr,
    message: /did not return within \d+ ms \[NVML_TIMEOUT\]/,
  },
  {
    verb: 'record',
    args: (wedge) => ['record', '--out', path.join(work, `record-${wedge}.jsonl`), '--interval', '250ms', '--count', '2', '--no-host', ...TIMEOUT_ARGS],
    deadlineMs: TIMEOUT_MS,
    keepsGoing: { says: /warning: sample skipped: .*\[NVML_TIMEOUT\]/, ready: stopsAnyTime },
    said: (r) => r.stderr,
    message: /did not return within \d+ ms \[NVML_TIMEOUT\]/,
  },
  {
    verb: 'serve',
    args: () => ['serve', '--port', '0', '--interval', '250ms', '--no-host', ...TIMEOUT_ARGS],
    deadlineMs: TIMEOUT_MS,
    keepsGoing: { says: /collection failed: .*\[NVML_TIMEOUT\][^]*http:\/\/127\.0\.0\.1:\d+\/metrics/, ready: answersHttp },
    said: (r) => r.stderr,
    message: /did not return within \d+ ms \[NVML_TIMEOUT\]/,
  },
  {
    verb: 'calibrate',
    args: () => ['calibrate', '--timeout', `${CALIBRATE_TIMEOUT_MS}`],
    deadlineMs: CALIBRATE_TIMEOUT_MS,
    said: (r) => r.stderr,
    message: /did not finish within \d+ ms .*\[NVML_TIMEOUT\]/,
  },
];

describe('the CLI exits at the deadline of a driver call that never returns', () => {
  const table = CLI_CASES.flatMap((c) => WEDGES.map((wedge) => ({ name: `${c.verb}, ${wedge} wedged`, c, wedge })));
  it.concurrent.each(table)('$name', { timeout: 30_000 }, async ({ c, wedge }) => {
    // A wedged sample is a warning to a verb that keeps going: it must then stop when told to.
    const keepsGoing = c.keepsGoing !== undefined && !isOpen(wedge);
    const run = keepsGoing
      ? await runChild([cliPath, ...c.args(wedge)], childEnv(wedge), c.keepsGoing!.says, c.keepsGoing!.ready, c.deadlineMs)
      : await runChild([cliPath, ...c.args(wedge)], childEnv(wedge), /NVML_TIMEOUT|did not return within/, null, c.deadlineMs);
    expectPromptExit(run, c.deadlineMs);
    if (keepsGoing) {
      expect(run.code, run.stderr).toBe(0);
    } else {
      expect(run.code, `${run.stdout}\n${run.stderr}`).toBe(3);
      expect(c.said(run)).toMatch(c.message);
      expect(run.stderr).not.toMatch(/\n\s+at /);
    }
  });
});

// ---------------------------------------------------------------------------------------------
// The library, in a host process that does nothing after the call fails

interface LibraryCase {
  entry: string;
  /** The body of an async function given `lib` (dist/index.js) and `probe` (the probe options). */
  body: string;
  deadlineMs: number;
  /** What a wedged sample (not open) leads to: the call's error code, or success. */
  afterGoodOpen: { code: string } | 'ok';
}

const LIBRARY_CASES: readonly LibraryCase[] = [
  { entry: 'openProbe', body: 'const p = await lib.openProbe(probe); try { await p.sample(); } finally { await p.close(); }', deadlineMs: TIMEOUT_MS, afterGoodOpen: { code: 'NVML_TIMEOUT' } },
  // A host that never closes the probe after a stuck sample must still be free to exit.
  { entry: 'openProbe, never closed', body: 'const p = await lib.openProbe(probe); await p.sample();', deadlineMs: TIMEOUT_MS, afterGoodOpen: { code: 'NVML_TIMEOUT' } },
  {
    entry: 'openMonitor',
    body: 'const m = await lib.openMonitor({ probe, layers: { host: false } }); try { await m.sample(); } finally { await m.close(); }',
    deadlineMs: TIMEOUT_MS,
    afterGoodOpen: { code: 'NVML_TIMEOUT' },
  },
  {
    // A failed first collection is the exporter's to report (collect_success 0), not a failed start.
    entry: 'createExporter',
    body:
      "const e = await lib.createExporter({ probe, layers: { host: false }, intervalMs: 250 }); try { if (!/^gpu_layers_collect_success 0$/m.test(await e.metrics())) throw new Error('the first collection did not fail'); } finally { await e.close(); }",
    deadlineMs: TIMEOUT_MS,
    afterGoodOpen: 'ok',
  },
  {
    entry: 'calibrateContexts',
    body: `await lib.calibrateContexts({ timeoutMs: ${CALIBRATE_TIMEOUT_MS}, env: process.env });`,
    deadlineMs: CALIBRATE_TIMEOUT_MS,
    afterGoodOpen: { code: 'NVML_TIMEOUT' },
  },
];

/** A host script: runs the body, says how it ended and when, then leaves the event loop alone. */
function hostScript(body: string): string {
  const probe = JSON.stringify({ timeoutMs: TIMEOUT_MS, nvmlLibrary: nodeGypBuild.mockNvml, cudaLibrary: nodeGypBuild.mockCuda });
  return [
    `const lib = await import(${JSON.stringify(distIndex)});`,
    `const probe = ${probe};`,
    'let outcome;',
    `try { await (async () => { ${body} })(); outcome = { ok: true }; }`,
    'catch (error) { outcome = { ok: false, code: error?.code ?? null, message: String(error?.message ?? error) }; }',
    "process.stdout.write(JSON.stringify({ ...outcome, at: Date.now() }) + '\\n');",
  ].join('\n');
}

interface HostOutcome {
  ok: boolean;
  code?: string;
  message?: string;
  /** The host's Date.now() when the call ended. */
  at: number;
}

/** Runs a host script; checks it exited by itself within GRACE_MS of its call ending. */
async function runHost(body: string, wedge: Wedge, deadlineMs: number): Promise<{ outcome: HostOutcome; said: string }> {
  const run = await runChild(['--input-type=module', '-e', hostScript(body)], childEnv(wedge), /"at":\d+/, null, deadlineMs);
  const said = `stdout: ${run.stdout}\nstderr: ${run.stderr}`;
  expect(run.killed, `the host process was still alive ${START_MS + deadlineMs + 2 * GRACE_MS} ms after it started\n${said}`).toBe(false);
  expect(run.code, said).toBe(0);
  const outcome = JSON.parse(run.stdout.trim().split('\n').at(-1)!) as HostOutcome;
  expect(outcome.at - run.spawnedAt, 'from start to the end of the call').toBeLessThan(START_MS + deadlineMs + GRACE_MS);
  expect(run.exitedAt - outcome.at, `from the end of the call to exit\n${said}`).toBeLessThanOrEqual(GRACE_MS);
  return { outcome, said };
}

describe("the library's host process exits by itself after a driver call that never returns", () => {
  const table = LIBRARY_CASES.flatMap((c) => WEDGES.map((wedge) => ({ name: `${c.entry}, ${wedge} wedged`, c, wedge })));
  it.concurrent.each(table)('$name', { timeout: 30_000 }, async ({ c, wedge }) => {
    const { outcome, said } = await runHost(c.body, wedge, c.deadlineMs);
    const expected = isOpen(wedge) ? { code: 'NVML_TIMEOUT' } : c.afterGoodOpen;
    if (expected === 'ok') expect(outcome, said).toMatchObject({ ok: true });
    else expect(outcome, said).toMatchObject({ ok: false, code: expected.code });
  });
});

describe('a shutdown that never returns', () => {
  it.concurrent('probe --json prints the sample and exits 0 within the deadline of its close', { timeout: 30_000 }, async () => {
    const run = await runChild([cliPath, 'probe', '--json', '--no-host', ...TIMEOUT_ARGS], childEnv('nvmlShutdown'), /^\{[^]*\}\n$/, null, TIMEOUT_MS);
    expectPromptExit(run, TIMEOUT_MS, TIMEOUT_MS);
    expect(run.code, run.stderr).toBe(0);
    expect(JSON.parse(run.stdout)).toMatchObject({ devices: [{ index: 0 }] });
  });

  it.concurrent("openProbe's close() gives up at the deadline and the host exits by itself", { timeout: 30_000 }, async () => {
    const { outcome, said } = await runHost(LIBRARY_CASES[0]!.body, 'nvmlShutdown', TIMEOUT_MS);
    expect(outcome, said).toMatchObject({ ok: true });
  });
});
