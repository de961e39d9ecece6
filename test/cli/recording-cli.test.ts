/**
 * record, diagnose, report and watch as a user runs them (the built CLI in a child process, the
 * real addon on the mock NVML): what each writes, their exit codes, and every bad input the
 * issue names: a torn last line, a newer schema, samples out of order, an empty, binary or
 * missing file, a folder, an interval of 0 or below, a duration that is not one.
 */
import { spawn, spawnSync } from 'node:child_process';
import { appendFileSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { recordIncident } from '../../src/mock-host/record-incident.js';
import { incidentNamed } from '../../src/mock-host/incidents.js';
import { layeredSampleSchema } from '../../src/layers/schema.js';
import { readRecording } from '../../src/recording/read-recording.js';
import { SAMPLE_SCHEMA_VERSION } from '../../src/sample/schema-version.js';
import { runCli } from '../helpers/cli.js';
import { createMockHost, type MockHost } from '../helpers/mock-host.js';
import { cliPath, nodeGypBuild } from '../helpers/paths.js';
import { host } from '../helpers/scenarios.js';

let work: string;
let mock: MockHost;
let creep: string;
let healthy: string;
const mockEnv = () => ({
  GPU_LAYERS_MOCK_SCENARIO: mock.scenarioFile,
  GPU_LAYERS_NVML_LIB: nodeGypBuild.mockNvml,
  GPU_LAYERS_CUDA_LIB: nodeGypBuild.mockCuda,
  GPU_LAYERS_STATS_DIR: '',
});
const lines = (file: string) => readFileSync(file, 'utf8').split('\n').filter((l) => l !== '');

beforeAll(async () => {
  work = mkdtempSync(path.join(tmpdir(), 'gpu-layers-recording-cli-'));
  mock = createMockHost(host(2, 2));
  creep = path.join(work, 'creep.jsonl');
  healthy = path.join(work, 'healthy.jsonl');
  await recordIncident(incidentNamed('cuda-graph-creep')!, creep, { gpuLayersVersion: 'test' });
  await recordIncident(incidentNamed('healthy')!, healthy, { gpuLayersVersion: 'test' });
}, 60_000);
afterAll(() => {
  mock.remove();
  rmSync(work, { recursive: true, force: true });
});

describe('record', () => {
  it('writes a header and one layered sample per line, and continues an existing recording', async () => {
    const out = path.join(work, 'live.jsonl');
    const first = runCli(['record', '--out', out, '--interval', '250ms', '--count', '3', '--no-host'], mockEnv());
    expect(first.status, first.stderr).toBe(0);
    expect(first.stderr).toContain(`3 sample(s) written to ${out}`);
    const [header, ...samples] = lines(out).map((l) => JSON.parse(l));
    expect(header).toMatchObject({ format: 'gpu-layers-recording', schemaVersion: SAMPLE_SCHEMA_VERSION, intervalMs: 250, driverVersion: '550.54.15' });
    expect(samples).toHaveLength(3);
    for (const sample of samples) expect(layeredSampleSchema.safeParse(sample).success).toBe(true);
    expect(samples[0].devices.map((d: any) => d.processes.length)).toEqual([2, 2]);

    expect(runCli(['record', '--out', out, '--interval', '250ms', '--count', '2', '--no-host'], mockEnv()).status).toBe(0);
    const again = await readRecording(out);
    expect(again.samples).toHaveLength(5);
    expect(again.warnings).toEqual([]);
  });

  it('rotates at --max-size, keeping --keep older files, each a readable recording', async () => {
    const out = path.join(work, 'rotating', 'r.jsonl');
    mkdirSync(path.dirname(out));
    const oneSample = lines(creep)[1]!.length;
    const run = runCli(['record', '--out', out, '--interval', '250ms', '--count', '6', '--max-size', String(2 * oneSample), '--keep', '2', '--no-host'], mockEnv());
    expect(run.status, run.stderr).toBe(0);
    expect(readdirSync(path.dirname(out)).sort()).toEqual(['r.jsonl', 'r.jsonl.1', 'r.jsonl.2']);
    for (const file of readdirSync(path.dirname(out))) {
      const recording = await readRecording(path.join(path.dirname(out), file));
      expect(recording.samples.length).toBeGreaterThan(0);
      // Each part says when it started: its header orders the parts when they are read back.
      expect(recording.header.startedAt, file).toBe(recording.samples[0]!.takenAt);
    }
  });

  it('refuses a bad interval, duration or size, and a missing --out, with exit 2', () => {
    const cases: [string[], RegExp][] = [
      [['record'], /record needs --out FILE/],
      [['record', '--out', 'x', '--interval', '0'], /--interval must be between 250 ms and 1 d/],
      [['record', '--out', 'x', '--interval=-5s'], /--interval expects a duration/],
      [['record', '--out', 'x', '--interval', '100ms'], /--interval must be between 250 ms/],
      [['record', '--out', 'x', '--duration', 'soon'], /--duration expects a duration like 500ms, 5s, 15m or 2h/],
      [['record', '--out', 'x', '--max-size', 'big'], /--max-size expects a size/],
      [['record', '--out', 'x', '--count', '0'], /--count expects a whole number/],
    ];
    for (const [args, message] of cases) {
      const run = runCli(args, mockEnv());
      expect(run.status, args.join(' ')).toBe(2);
      expect(run.stderr).toMatch(message);
      expect(run.stderr).not.toMatch(/\n\s+at /);
    }
  });

  it('refuses to write into something that is not a recording, exit 4', () => {
    const notRecording = path.join(work, 'notes.txt');
    writeFileSync(notRecording, 'my notes\n');
    const run = runCli(['record', '--out', notRecording, '--interval', '250ms', '--count', '1', '--no-host'], mockEnv());
    expect(run.status).toBe(4);
    expect(run.stderr).toMatch(/notes\.txt is not a gpu-layers recording/);
    expect(readFileSync(notRecording, 'utf8')).toBe('my notes\n');
    // Said before NVML is even opened: a GPU host that is wedged still gets the answer at once.
    const nowhere = runCli(['record', '--out', path.join(work, 'no', 'such', 'r.jsonl'), '--nvml-lib', '/nonexistent/libnvidia-ml.so.1'], mockEnv());
    expect(nowhere).toMatchObject({ status: 4, stderr: expect.stringMatching(/cannot write the recording .*r\.jsonl: no such file or folder/) });
  });

  it('a SIGKILL mid-recording leaves a file that reads back to the last complete sample', async () => {
    const out = path.join(work, 'killed.jsonl');
    for (const delay of [350, 600, 900]) {
      const child = spawn(process.execPath, [cliPath, 'record', '--out', out, '--interval', '250ms', '--no-host'], { env: { ...process.env, ...mockEnv() }, stdio: 'ignore' });
      await new Promise((resolve) => setTimeout(resolve, delay));
      child.kill('SIGKILL');
      await new Promise((resolve) => child.on('close', resolve));
      const recording = await readRecording(out);
      for (const warning of recording.warnings) expect(warning).toMatch(/is incomplete \(the recorder stopped mid-write\)/);
    }
    // A torn tail is cut off when recording resumes, so nothing in the middle is ever skipped.
    appendFileSync(out, '{"schemaVersion":1,"takenAt":"2026-');
    expect(runCli(['record', '--out', out, '--interval', '250ms', '--count', '1', '--no-host'], mockEnv()).status).toBe(0);
    expect((await readRecording(out)).warnings).toEqual([]);
  });
});

describe('diagnose', () => {
  it('names the pattern with its evidence and fix; --json; --fail-on sets exit 1', () => {
    const text = runCli(['diagnose', creep]);
    expect(text.status, text.stderr).toBe(0);
    expect(text.stdout).toMatch(/^(WARNING|CRITICAL) cuda-graph-creep {2}GPU 0 pid 7150 \(VLLM::EngineCore\)/m);
    expect(text.stdout).toMatch(/gaps\.outsideAllocatorBytes: .* R² /);
    expect(text.stdout).toMatch(/fix: Capture a fixed, small set of CUDA graph sizes/);

    const json = runCli(['diagnose', creep, '--json']);
    const document = JSON.parse(json.stdout);
    expect(document.window.samples).toBe(120);
    expect(document.findings.map((f: any) => f.id)).toEqual(['cuda-graph-creep']);
    expect(document.findings[0].evidence[0]).toMatchObject({ series: 'gaps.outsideAllocatorBytes', unit: 'bytes' });

    expect(runCli(['diagnose', creep, '--fail-on', 'info']).status).toBe(1);
    expect(runCli(['diagnose', healthy, '--fail-on', 'info']).status).toBe(0);
    expect(runCli(['diagnose', healthy]).stdout).toMatch(/No finding/);
    const bad = runCli(['diagnose', creep, '--fail-on', 'severe']);
    expect(bad.status).toBe(2);
    expect(bad.stderr).toMatch(/--fail-on expects one of info, warning, critical/);
  });

  it('reads a rotated recording given as parts, in any order', () => {
    const [header, ...samples] = lines(creep);
    const a = path.join(work, 'part.jsonl.1');
    const b = path.join(work, 'part.jsonl');
    writeFileSync(a, [header, ...samples.slice(0, 60)].join('\n') + '\n');
    writeFileSync(b, [JSON.stringify({ ...JSON.parse(header!), startedAt: JSON.parse(samples[60]!).takenAt }), ...samples.slice(60)].join('\n') + '\n');
    const document = JSON.parse(runCli(['diagnose', '--json', b, a]).stdout);
    expect(document.window.samples).toBe(120);
    expect(document.findings.map((f: any) => f.id)).toEqual(['cuda-graph-creep']);
  });

  it('a torn last line and samples out of order are warnings; the rest is diagnosed', () => {
    const [header, ...samples] = lines(creep);
    const torn = path.join(work, 'torn.jsonl');
    writeFileSync(torn, [header, ...samples].join('\n') + '\n' + samples[0]!.slice(0, 200));
    const tornRun = runCli(['diagnose', torn, '--json']);
    expect(tornRun.status).toBe(0);
    expect(tornRun.stderr).toMatch(/warning: .*torn\.jsonl: line 122 is incomplete/);
    expect(JSON.parse(tornRun.stdout).window.samples).toBe(120);

    const shuffled = path.join(work, 'shuffled.jsonl');
    writeFileSync(shuffled, [header, ...samples.slice(60), ...samples.slice(0, 60)].join('\n') + '\n');
    const shuffledRun = runCli(['diagnose', shuffled, '--json']);
    expect(shuffledRun.stderr).toMatch(/out of time order/);
    expect(JSON.parse(shuffledRun.stdout).findings.map((f: any) => f.id)).toEqual(['cuda-graph-creep']);
  });

  it('unreadable or invalid input is one clear line and exit 4', () => {
    const [header] = lines(creep);
    const files = {
      empty: '',
      binary: Buffer.from([0x7f, 0x45, 0x4c, 0x46, 0, 1, 2, 3, 0xff, 0xfe]),
      newer: JSON.stringify({ ...JSON.parse(header!), schemaVersion: SAMPLE_SCHEMA_VERSION + 1 }) + '\n',
      headerOnly: header + '\n',
      notJson: 'time,used\n1,2\n',
    };
    const expected: Record<keyof typeof files, RegExp> = {
      empty: /is not a gpu-layers recording: the file is empty/,
      binary: /is not a gpu-layers recording: it is a binary file/,
      newer: new RegExp(`recorded with sample schema ${SAMPLE_SCHEMA_VERSION + 1}; this gpu-layers reads schema ${SAMPLE_SCHEMA_VERSION}: upgrade`),
      headerOnly: /holds no complete sample yet/,
      notJson: /its first line is not a recording header/,
    };
    for (const [name, content] of Object.entries(files)) {
      const file = path.join(work, `bad-${name}`);
      writeFileSync(file, content);
      const run = runCli(['diagnose', file]);
      expect(run.status, name).toBe(4);
      expect(run.stderr).toMatch(expected[name as keyof typeof files]);
      expect(run.stderr.trim().split('\n')).toHaveLength(1);
    }
    expect(runCli(['diagnose', path.join(work, 'missing.jsonl')])).toMatchObject({ status: 4, stderr: expect.stringMatching(/cannot read the recording .*missing\.jsonl: no such file or folder/) });
    expect(runCli(['diagnose', work])).toMatchObject({ status: 4, stderr: expect.stringMatching(/it is a folder/) });
    expect(runCli(['diagnose'])).toMatchObject({ status: 2, stderr: expect.stringMatching(/diagnose needs a recording/) });
  });
});

describe('report', () => {
  it('writes one HTML file with the charts and findings of the recording', () => {
    const out = path.join(work, 'creep.html');
    const run = runCli(['report', creep, '--html', out]);
    expect(run.status, run.stderr).toBe(0);
    expect(run.stderr).toMatch(/wrote .*creep\.html \(120 samples, 1 finding\(s\)\)/);
    const html = readFileSync(out, 'utf8');
    expect(html).toMatch(/data-chart="process-0-7150"/);
    expect(html).toMatch(/data-finding-id="cuda-graph-creep"/);
    expect(runCli(['report', creep])).toMatchObject({ status: 2, stderr: expect.stringMatching(/report needs --html OUT/) });
    expect(runCli(['report', creep, '--html', path.join(work, 'no', 'such', 'dir.html')])).toMatchObject({ status: 4, stderr: expect.stringMatching(/cannot write the report/) });
  });
});

describe('watch', () => {
  it('piped: one line per sample; --json: one layered document per line; --diagnose says new findings', () => {
    const run = runCli(['watch', '--interval', '250ms', '--count', '2', '--no-host'], mockEnv());
    expect(run.status, run.stderr).toBe(0);
    const out = run.stdout.trim().split('\n');
    expect(out).toHaveLength(2);
    for (const line of out) expect(line).toMatch(/^\d{4}-\d\d-\d\dT\S+ gpu0 used \d+\/\d+ pid 10000 driver \d+ outside \? graphs \? cached \? pid 10001 .* gpu1 used/);
    expect(run.stdout).not.toMatch(/\u001b/);

    const json = runCli(['watch', '--json', '--interval', '250ms', '--count', '1', '--diagnose', '--no-host'], mockEnv());
    expect(layeredSampleSchema.safeParse(JSON.parse(json.stdout)).success).toBe(true);
    expect(runCli(['watch', '--interval', '0'], mockEnv())).toMatchObject({ status: 2, stderr: expect.stringMatching(/--interval must be between 250 ms/) });
  });
});

describe('watch on a terminal', () => {
  it('redraws the frame in place, with a sparkline row per gap; NO_COLOR leaves only cursor control', () => {
    // util-linux `script` gives the CLI a real pseudo-terminal.
    const command = `stty cols 100 rows 40; ${JSON.stringify(process.execPath)} ${JSON.stringify(cliPath)} watch --interval 250ms --count 3 --no-host`;
    const run = spawnSync('script', ['-qec', command, '/dev/null'], { env: { ...process.env, ...mockEnv(), NO_COLOR: '1' }, encoding: 'utf8', timeout: 20_000 });
    expect(run.status, run.stderr).toBe(0);
    const out = run.stdout;
    expect(out.startsWith('\u001b[?25l')).toBe(true);
    expect(out.trimEnd().endsWith('\u001b[?25h')).toBe(true);
    // Three frames, each drawn from the top of the screen.
    expect(out.split('\u001b[H')).toHaveLength(4);
    expect(out).toMatch(/pid 10000 /);
    expect(out).toMatch(/ {4}outside allocator /);
    expect(out).toMatch(/ {4}driver +▁▁▁ +64\.0 MiB/);
    expect(out).not.toMatch(/\u001b\[\d+(;\d+)*m/);
  });
});

describe('demo', () => {
  it('plays the overnight incident: the table at the worst moment and both findings; --html writes the report', () => {
    const run = runCli(['demo']);
    expect(run.status, run.stderr).toBe(0);
    expect(run.stdout).toMatch(/The worst moment: \S+, GPU 1 down to [\d.]+ GiB free/);
    expect(run.stdout.match(/^GPU \d/gm)).toHaveLength(2);
    expect(run.stdout).toMatch(/^CRITICAL allocator-fragmentation {2}GPU 1 pid 7350/m);
    expect(run.stdout).toMatch(/^WARNING cuda-graph-creep {2}GPU 0 pid 7150/m);
    const html = path.join(work, 'demo.html');
    expect(runCli(['demo', '--html', html]).status).toBe(0);
    expect(readFileSync(html, 'utf8')).toMatch(/data-finding-id="allocator-fragmentation"/);
    const json = JSON.parse(runCli(['demo', '--json']).stdout);
    expect(layeredSampleSchema.safeParse(json).success).toBe(true);
  });
});
