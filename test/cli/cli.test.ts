/**
 * The CLI as a user runs it: a child process of the built dist/cli.js. Help, version, usage
 * errors (exit 2, no stack trace), `probe --json` checked against the published JSON Schema
 * with an independent validator (ajv), the readable table, the demo, and NVML failures (exit 3).
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { runCli } from '../helpers/cli.js';
import { createMockHost, type MockHost } from '../helpers/mock-host.js';
import { cliPath, nodeGypBuild, repoRoot, requireFile } from '../helpers/paths.js';
import { CONTEXT_MIB, DEMO_PROCESSES } from '../../src/mock-host/demo-host.js';
import { GiB, MiB, h100, host } from '../helpers/scenarios.js';

const schemaFile = path.join(repoRoot, 'dist/sample.schema.json');
let mock: MockHost;
let validate: (data: unknown) => boolean;
let validationErrors: () => unknown;
const mockEnv = () => ({
  GPU_LAYERS_MOCK_SCENARIO: mock.scenarioFile,
  GPU_LAYERS_NVML_LIB: nodeGypBuild.mockNvml,
  GPU_LAYERS_CUDA_LIB: nodeGypBuild.mockCuda,
  GPU_LAYERS_MOCK_TRACE: '',
});

beforeAll(() => {
  const ajv = new Ajv2020({ allErrors: true, strict: false });
  const compiled = ajv.compile(JSON.parse(readFileSync(requireFile(schemaFile, 'build the package (npm ci)'), 'utf8')));
  validate = (data) => compiled(data) as boolean;
  validationErrors = () => compiled.errors;
  mock = createMockHost(host(2, 2));
});
afterAll(() => mock.remove());

describe('help and version', () => {
  it('--help lists the verbs and exit codes', () => {
    const run = runCli(['--help']);
    expect(run.status).toBe(0);
    expect(run.stdout).toMatch(/gpu-layers \[probe\]/);
    expect(run.stdout).toMatch(/demo/);
    expect(run.stdout).toMatch(/3 NVML or the driver unavailable/);
  });

  it('--version prints the package version', () => {
    const { version } = JSON.parse(readFileSync(path.join(repoRoot, 'package.json'), 'utf8'));
    expect(runCli(['--version'])).toMatchObject({ status: 0, stdout: `${version}\n` });
  });
});

describe('usage errors exit 2 with a message, no stack trace', () => {
  it.each([
    [['probe', '--bogus'], /Unknown option '--bogus'/],
    [['frobnicate'], /unknown command "frobnicate"/],
    [['probe', '--timeout', 'soon'], /--timeout expects a duration/],
    [['probe', '--timeout', '0'], /between 1 ms and 1 h/],
    [['probe', 'extra'], /Unexpected argument 'extra'/],
  ])('%j', (args, message) => {
    const run = runCli(args, mockEnv());
    expect(run.status).toBe(2);
    expect(run.stderr).toMatch(message);
    expect(run.stderr).toMatch(/gpu-layers --help/);
    expect(run.stderr).not.toMatch(/\n\s+at /);
  });
});

describe('probe', () => {
  it('--json prints a document the published schema accepts, with the scenario figures', () => {
    const scenario = host(2, 2);
    mock.write(scenario);
    const run = runCli(['probe', '--json'], mockEnv());
    expect(run.status, run.stderr).toBe(0);
    const document = JSON.parse(run.stdout);
    expect(validate(document), JSON.stringify(validationErrors())).toBe(true);
    expect(document.schemaVersion).toBe(1);
    expect(document.devices.map((d: any) => d.memory.totalBytes)).toEqual(scenario.devices.map((d) => d.memory!.total));
    expect(document.devices[1].processes.map((p: any) => [p.pid, p.usedBytes])).toEqual(
      scenario.devices[1]!.processes!.map((p) => [p.pid, p.usedBytes]),
    );
    expect(document.devices[0].cudaOrdinal).toBe(0);
    // The mock's pids are not running here: the command is null with the reason.
    expect(document.devices[0].processes[0].command).toBeNull();
    expect(document.devices[0].processes[0].errors.command.code).toBe('PROCESS_NOT_VISIBLE');
  });

  it('the schema rejects a document that breaks it (the validation can fail)', () => {
    mock.write(host(1, 1));
    const document = JSON.parse(runCli(['probe', '--json'], mockEnv()).stdout);
    document.devices[0].memory.totalBytes = -1;
    expect(validate(document)).toBe(false);
    delete document.devices[0].memory;
    expect(validate(document)).toBe(false);
  });

  it('fills in the command line of a process that is visible in /proc', () => {
    mock.write({ devices: [h100(0, [{ type: 'compute', pid: process.pid, usedBytes: GiB }])] });
    const document = JSON.parse(runCli(['probe', '--json'], mockEnv()).stdout);
    const expected = readFileSync(`/proc/${process.pid}/cmdline`, 'utf8').split('\0').filter(Boolean).join(' ');
    expect(document.devices[0].processes[0].command).toBe(expected);
  });

  it('prints a table with the devices, the memory split and the processes', () => {
    const scenario = host(2, 2);
    mock.write(scenario);
    const run = runCli(['probe'], mockEnv());
    expect(run.status).toBe(0);
    const memory = scenario.devices[0]!.memory!;
    const gib = (bytes: unknown) => `${((bytes as number) / GiB).toFixed(1)} GiB`;
    const mib = (bytes: unknown) => `${((bytes as number) / MiB).toFixed(1)} MiB`;
    expect(run.stdout).toMatch(/^GPU 0 {2}cuda:0 {2}NVIDIA H100 80GB HBM3 {2}00000000:18:00\.0$/m);
    expect(run.stdout).toContain(
      `] ${mib(memory.used)} used  ${gib(memory.free)} free  ${mib(memory.reserved)} reserved  of ${gib(memory.total)}`,
    );
    const process = scenario.devices[1]!.processes![1]!;
    expect(run.stdout).toMatch(new RegExp(`^\\s+${process.pid} {2}C {4}\\s*${mib(process.usedBytes).replace('.', '\\.')} {2}\\(not visible here\\)$`, 'm'));
    expect(run.stdout).not.toMatch(/\u001b\[/);
  });

  it('a reader that closes the pipe early (| head) ends it quietly, no EPIPE stack trace', () => {
    mock.write(host(8, 16)); // some 300 kB of JSON: more than a pipe holds
    const run = spawnSync('bash', ['-c', 'set -o pipefail; "$0" "$1" probe --json | head -c 100 >/dev/null', process.execPath, cliPath], {
      env: { ...process.env, ...mockEnv() },
      encoding: 'utf8',
      timeout: 20_000,
    });
    expect(run.stderr).toBe('');
    expect(run.status).toBe(0);
  });

  it('exits 3 with the plain paragraph when no NVML library can be loaded', () => {
    const run = runCli(['probe'], { ...mockEnv(), GPU_LAYERS_NVML_LIB: '/nonexistent/libnvidia-ml.so.1' });
    expect(run.status).toBe(3);
    expect(run.stderr).toMatch(/^gpu-layers cannot read the GPUs: could not load the NVML library \/nonexistent\/libnvidia-ml\.so\.1/);
    expect(run.stderr).toMatch(/\[NVML_LIBRARY_NOT_FOUND\]/);
    expect(run.stderr).toMatch(/GPU_LAYERS_NVML_LIB/);
  });
});

describe('demo --live', () => {
  it('shows the 8-GPU vLLM host with every layer, through the real addon and mock', () => {
    const run = runCli(['demo', '--live'], { GPU_LAYERS_MOCK_SCENARIO: undefined });
    expect(run.status, run.stderr).toBe(0);
    expect(run.stdout.match(/^GPU \d/gm)).toHaveLength(8);
    const tp0 = DEMO_PROCESSES.find((p) => p.command === 'VLLM::Worker_TP0')!;
    const outside = ((tp0.driverMiB - tp0.allocator!.reservedMiB) / 1024).toFixed(1);
    expect(run.stdout).toContain(`${outside} GiB outside the PyTorch allocator, of which ~${CONTEXT_MIB}.0 MiB is the CUDA context`);
    expect(run.stdout).toMatch(/vLLM: weights 33\.9 GiB, KV cache 32\.9 GiB \(63% in use\)/);
    expect(run.stdout).toMatch(/17% of reserved is free but trapped in split blocks/);
    expect(run.stdout).toMatch(/59120 .*\n.*allocator: n\/a \(no .*59120\.json: the gpu-layers companion is not running/);
    expect(run.stdout).toMatch(/no processes/);
  });

  it('--json is a valid document, every GPU process with its layers', () => {
    const run = runCli(['demo', '--live', '--json']);
    expect(run.status).toBe(0);
    const document = JSON.parse(run.stdout);
    expect(validate(document), JSON.stringify(validationErrors())).toBe(true);
    expect(document.devices).toHaveLength(8);
    const processes = document.devices.flatMap((d: any) => d.processes);
    expect(processes.map((p: any) => p.pid).sort()).toEqual(DEMO_PROCESSES.filter((p) => p.gpu !== null).map((p) => p.pid).sort());
    for (const demo of DEMO_PROCESSES.filter((p) => p.allocator !== null && p.gpu !== null)) {
      const process = processes.find((p: any) => p.pid === demo.pid);
      expect(process.layers.driverBytes).toBe(demo.driverMiB * MiB);
      expect(process.layers.allocator.reservedBytes).toBe(demo.allocator!.reservedMiB * MiB);
      expect(process.gaps.outsideAllocatorBytes).toBe((demo.driverMiB - demo.allocator!.reservedMiB) * MiB);
      expect(process.layers.contextBytes).toBe(CONTEXT_MIB * MiB);
    }
  });
});

describe('schema', () => {
  it('prints the JSON Schema the package publishes', () => {
    const run = runCli(['schema']);
    expect(run.status).toBe(0);
    expect(JSON.parse(run.stdout)).toEqual(JSON.parse(readFileSync(schemaFile, 'utf8')));
  });
});
