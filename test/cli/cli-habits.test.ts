/**
 * The CLI habits users bring from nvidia-smi, watch and nvitop (issue 18, item 6), as a user
 * meets them (the built CLI in a child process, the real addon on the mock NVML): a bare
 * `--interval` number is seconds; `doctor`'s exit codes; every verb's `--help`; a `--vllm` that
 * is not a URL refused before anything is sampled; `q` quits `watch` on a terminal; `-i/--id`
 * and `--pid` narrow what probe, watch and record show; `probe --format csv`.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { doctorExitCode } from '../../src/cli/commands/doctor-command.js';
import { parseInterval } from '../../src/cli/parse-flags.js';
import { MAIN_HELP } from '../../src/cli/usage.js';
import type { Check } from '../../src/doctor/doctor-checks.js';
import { probeJson, runCli, runCliAsync } from '../helpers/cli.js';
import { createMockHost, type MockHost } from '../helpers/mock-host.js';
import { cliPath, nodeGypBuild, repoRoot } from '../helpers/paths.js';
import { quitKey } from '../../src/cli/quit-keys.js';
import { csvField, PROBE_CSV_COLUMNS, renderProbeCsv } from '../../src/cli/render/probe-csv.js';
import { host } from '../helpers/scenarios.js';
import { startServe } from '../helpers/serve.js';

let work: string;
let mock: MockHost;
const mockEnv = (extra: Record<string, string | undefined> = {}) => ({
  GPU_LAYERS_MOCK_SCENARIO: mock.scenarioFile,
  GPU_LAYERS_NVML_LIB: nodeGypBuild.mockNvml,
  GPU_LAYERS_CUDA_LIB: nodeGypBuild.mockCuda,
  GPU_LAYERS_MOCK_TRACE: '',
  GPU_LAYERS_STATS_DIR: '',
  ...extra,
});
/** No NVML to load: a verb that gets as far as sampling exits 3, not 2. */
const noNvml = () => mockEnv({ GPU_LAYERS_NVML_LIB: path.join(work, 'no-such-libnvidia-ml.so.1') });

beforeAll(() => {
  work = mkdtempSync(path.join(tmpdir(), 'gpu-layers-cli-habits-'));
  mock = createMockHost(host(2, 2));
});
afterAll(() => {
  mock.remove();
  rmSync(work, { recursive: true, force: true });
});

describe('--interval: a bare number is seconds', () => {
  it('parses "2" as 2 s, units as written, and keeps the 250 ms floor', () => {
    expect(parseInterval('2', '--interval')).toBe(2000);
    expect(parseInterval('0.5', '--interval')).toBe(500);
    expect(parseInterval('500ms', '--interval')).toBe(500);
    expect(parseInterval('5s', '--interval')).toBe(5000);
    expect(parseInterval('1m', '--interval')).toBe(60_000);
    expect(() => parseInterval('0.2', '--interval')).toThrow(/between 250 ms and 1 d/);
    expect(() => parseInterval('100ms', '--interval')).toThrow(/between 250 ms/);
    expect(() => parseInterval('soon', '--interval')).toThrow(/a bare number is seconds/);
  });

  it('record --interval 1 records at 1 s; watch --interval 0.25 samples every 250 ms', () => {
    const out = path.join(work, 'one-second.jsonl');
    const record = runCli(['record', '--out', out, '--interval', '1', '--count', '1', '--no-host'], mockEnv());
    expect(record.status, record.stderr).toBe(0);
    expect(JSON.parse(readFileSync(out, 'utf8').split('\n')[0]!).intervalMs).toBe(1000);

    const watch = runCli(['watch', '--interval', '0.25', '--count', '2', '--no-host'], mockEnv());
    expect(watch.status, watch.stderr).toBe(0);
    expect(watch.stdout.trim().split('\n')).toHaveLength(2);
    expect(runCli(['serve', '--interval', '0.1'], mockEnv())).toMatchObject({ status: 2, stderr: expect.stringMatching(/--interval must be between 250 ms/) });
  });
});

describe('doctor exit codes', () => {
  const c = (id: string, ok: boolean | null): Check => ({ id, ok, title: id, detail: '', fix: null });

  it('0 all good, 1 something to fix, 3 the driver layer unusable', () => {
    expect(doctorExitCode([c('addon', true), c('nvml', true), c('companion', null)])).toBe(0);
    expect(doctorExitCode([c('addon', true), c('nvml', true), c('companion', false)])).toBe(1);
    expect(doctorExitCode([c('addon', true), c('nvml', false)])).toBe(3);
    expect(doctorExitCode([c('addon', false)])).toBe(3);
  });

  it('the CLI: 1 with a missing companion on a readable host, 3 when NVML cannot be read (report still printed)', () => {
    const fix = runCli(['doctor'], mockEnv());
    expect(fix.status, fix.stderr).toBe(1);
    expect(fix.stdout).toMatch(/✓ NVML/);
    expect(fix.stdout).toMatch(/thing\(s\) to fix/);

    const broken = runCli(['doctor', '--json'], noNvml());
    expect(broken.status, broken.stderr).toBe(3);
    const { ok, checks } = JSON.parse(broken.stdout);
    expect(ok).toBe(false);
    expect(checks.find((check: Check) => check.id === 'nvml').ok).toBe(false);
  });
});

describe('--help on every verb', () => {
  const verbs = [...new Set([...MAIN_HELP.matchAll(/^ {2}gpu-layers \[?([a-z]+)\]?/gm)].map((m) => m[1]!))];

  it('finds the verbs MAIN_HELP lists', () => {
    expect(verbs).toEqual(expect.arrayContaining(['probe', 'demo', 'watch', 'record', 'diagnose', 'report', 'snapshot', 'serve', 'doctor', 'calibrate', 'canary', 'companion', 'schema']));
  });

  it.each(['--help', '-h'])('every verb with %s exits 0 with its help, sampling nothing', (flag) => {
    for (const verb of verbs) {
      const run = runCli([verb, flag], noNvml());
      expect(run.status, `${verb} ${flag}: ${run.stderr}`).toBe(0);
      expect(run.stdout, verb).toMatch(verb === 'probe' ? /gpu-layers \[probe\]/ : new RegExp(`gpu-layers ${verb}`));
      expect(run.stderr, verb).toBe('');
    }
  });
});

describe('a URL flag that is not a URL is a usage error, before anything is sampled', () => {
  it.each([
    [['probe', '--vllm', 'notaurl']],
    [['probe', '--json', '--vllm', 'http://127.0.0.1:8000', '--vllm', 'localhost:8000']],
    [['probe', '--vllm', 'ftp://127.0.0.1/']],
    [['watch', '--vllm', 'notaurl']],
    [['serve', '--port', '0', '--vllm', 'notaurl']],
    [['doctor', '--vllm', 'notaurl']],
  ])('%j exits 2', (args) => {
    const run = runCli(args, noNvml());
    expect(run.status, run.stderr).toBe(2);
    expect(run.stderr).toMatch(/--vllm expects an http\(s\) URL like http:\/\/127\.0\.0\.1:8000, not "/);
    expect(run.stderr).not.toMatch(/\n\s+at /);
  });

  it('record refuses it before creating the recording', () => {
    const out = path.join(work, 'never.jsonl');
    const run = runCli(['record', '--out', out, '--vllm', 'notaurl'], noNvml());
    expect(run.status, run.stderr).toBe(2);
    expect(existsSync(out)).toBe(false);
  });

  it('canary --openai that is not a URL is a usage error too', () => {
    expect(runCli(['canary', '--openai', 'notaurl', '--model', 'm'], noNvml()).status).toBe(2);
  });
});

describe('q quits watch on a terminal', () => {
  /** watch on a pseudo-terminal (Python's pty), the key sent after the first frame. */
  const watchOnPty = (key: string) => {
    const run = spawnSync('python3', [path.join(repoRoot, 'test/cli/watch-quit.py'), key, process.execPath, cliPath], {
      env: { ...process.env, ...mockEnv(), NO_COLOR: '1' },
      encoding: 'utf8',
      timeout: 30_000,
    });
    expect(run.status, run.stderr).toBe(0);
    return JSON.parse(run.stdout) as { status: number | null; canonicalDuring: boolean; canonicalAfter: boolean; frames: number; tail: string };
  };

  it.each([
    ['q', 'q'],
    ['Ctrl-C', '\u0003'],
  ])('%s ends it with exit 0, the cursor shown and the terminal back in canonical mode', (_name, key) => {
    const result = watchOnPty(key);
    expect(result.frames).toBeGreaterThanOrEqual(1);
    expect(result.canonicalDuring).toBe(false);
    expect(result.status).toBe(0);
    expect(result.canonicalAfter).toBe(true);
    expect(result.tail.trimEnd().endsWith('\u001b[?25h')).toBe(true);
  });

  it('the keys: q or Q quits, Ctrl-C interrupts, anything else nothing', () => {
    expect(quitKey('q')).toBe('quit');
    expect(quitKey(Buffer.from('Q'))).toBe('quit');
    expect(quitKey('\u0003')).toBe('interrupted');
    expect(quitKey('x')).toBeNull();
    expect(quitKey('\u001b[A')).toBeNull();
  });
});

describe('-i/--id and --pid', () => {
  const shape = (document: any) => document.devices.map((d: any) => [d.index, d.processes.map((p: any) => p.pid)]);

  it('probe keeps the GPUs named by index or UUID, and the processes named by pid', () => {
    const all = probeJson(mockEnv()).json;
    expect(shape(all)).toEqual([[0, [10000, 10001]], [1, [11000, 11001]]]);
    expect(shape(probeJson(mockEnv(), ['-i', '1']).json)).toEqual([[1, [11000, 11001]]]);
    expect(shape(probeJson(mockEnv(), ['--id', `${all.devices[1].uuid},0`]).json)).toEqual([[0, [10000, 10001]], [1, [11000, 11001]]]);
    expect(shape(probeJson(mockEnv(), ['-i', all.devices[0].uuid.toLowerCase()]).json)).toEqual([[0, [10000, 10001]]]);
    expect(shape(probeJson(mockEnv(), ['--pid', '11001,10000']).json)).toEqual([[0, [10000]], [1, [11001]]]);
    expect(shape(probeJson(mockEnv(), ['--pid', '11001', '--pid', '11000']).json)).toEqual([[1, [11000, 11001]]]);
    expect(shape(probeJson(mockEnv(), ['-i', '0', '--pid', '11001']).json)).toEqual([]);
    // The device's own figures stay those of the whole GPU.
    expect(probeJson(mockEnv(), ['--pid', '11001']).json.devices[0].memory).toEqual(all.devices[1].memory);

    const table = runCli(['probe', '-i', '1'], mockEnv());
    expect(table.stdout).toMatch(/^GPU 1 /m);
    expect(table.stdout).not.toMatch(/^GPU 0 /m);
  });

  it('an -i that names no GPU, or a malformed id or pid, is a usage error', () => {
    const missing = runCli(['probe', '-i', '0,7'], mockEnv());
    expect(missing).toMatchObject({ status: 2, stderr: expect.stringMatching(/--id 7: no such GPU here \(GPUs: 0 \(GPU-.*\), 1 \(GPU-/) });
    expect(runCli(['probe', '-i', 'first'], mockEnv())).toMatchObject({ status: 2, stderr: expect.stringMatching(/--id expects a GPU index/) });
    expect(runCli(['probe', '--pid', 'abc'], mockEnv())).toMatchObject({ status: 2, stderr: expect.stringMatching(/--pid expects process ids/) });
    expect(runCli(['watch', '-i', '9', '--count', '1', '--interval', '250ms'], mockEnv()).status).toBe(2);
  });

  it('watch and record show and record only what was asked for', () => {
    const watch = runCli(['watch', '--json', '-i', '1', '--pid', '11000', '--count', '1', '--interval', '250ms', '--no-host'], mockEnv());
    expect(watch.status, watch.stderr).toBe(0);
    expect(shape(JSON.parse(watch.stdout))).toEqual([[1, [11000]]]);

    const out = path.join(work, 'filtered.jsonl');
    const record = runCli(['record', '--out', out, '--pid', '10001', '--count', '2', '--interval', '250ms', '--no-host'], mockEnv());
    expect(record.status, record.stderr).toBe(0);
    const samples = readFileSync(out, 'utf8').trim().split('\n').slice(1).map((line) => JSON.parse(line));
    expect(samples.map(shape)).toEqual([[[0, [10001]]], [[0, [10001]]]]);
  });
});

describe('-i/--id and --pid on serve', () => {
  it('exports only the GPUs and processes asked for, and refuses an -i that names no GPU', { timeout: 30_000 }, async () => {
    const { child: serve, port } = await startServe(['--port', '0', '--interval', '1', '--no-host', '--no-flights', '-i', '1', '--pid', '11000'], mock.scenarioFile);
    try {
      const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
      const driver = text.split('\n').filter((l) => l.startsWith('gpu_layers_process_driver_memory_bytes{'));
      expect(driver.map((l) => [/gpu="(\d+)"/.exec(l)![1], /pid="(\d+)"/.exec(l)![1]])).toEqual([['1', '11000']]);
      expect(text.split('\n').filter((l) => l.startsWith('gpu_layers_device_up{')).map((l) => /gpu="(\d+)"/.exec(l)![1])).toEqual(['1']);
    } finally {
      serve.kill('SIGTERM');
    }
    const missing = await runCliAsync(['serve', '--port', '0', '--no-host', '--no-flights', '-i', '7'], mockEnv());
    expect(missing).toMatchObject({ status: 2, stderr: expect.stringMatching(/--id 7: no such GPU here/) });
  });
});

describe('probe --format csv', () => {
  /** RFC 4180, read independently of the writer: quoted fields, doubled quotes, CRLF records. */
  const parseCsv = (text: string): string[][] => {
    const records: string[][] = [];
    let record: string[] = [];
    let field = '';
    let quoted = false;
    for (let i = 0; i < text.length; i++) {
      const ch = text[i]!;
      if (quoted) {
        if (ch === '"' && text[i + 1] === '"') {
          field += '"';
          i++;
        } else if (ch === '"') quoted = false;
        else field += ch;
      } else if (ch === '"') quoted = true;
      else if (ch === ',') {
        record.push(field);
        field = '';
      } else if (ch === '\r' && text[i + 1] === '\n') {
        record.push(field);
        records.push(record);
        record = [];
        field = '';
        i++;
      } else field += ch;
    }
    expect(field === '' && record.length === 0, 'the text ends with CRLF').toBe(true);
    return records;
  };

  it('one row per GPU process with a header; unknown layers are empty fields', () => {
    const run = runCli(['probe', '--format', 'csv', '--no-host'], mockEnv());
    expect(run.status, run.stderr).toBe(0);
    const [header, ...rows] = parseCsv(run.stdout);
    expect(header).toEqual([...PROBE_CSV_COLUMNS]);
    const document = probeJson(mockEnv(), ['--no-host']).json;
    expect(rows.map((r) => [r[0], r[1], r[2], r[4]])).toEqual(
      document.devices.flatMap((d: any) => d.processes.map((p: any) => [String(d.index), d.uuid, String(p.pid), String(p.layers.driverBytes)])),
    );
    for (const r of rows) {
      expect(r).toHaveLength(PROBE_CSV_COLUMNS.length);
      expect(r[5]).toBe(''); // no companion: the allocator layer is unknown
      expect(r[9]).toBe(''); // --no-host
    }
    expect(parseCsv(runCli(['probe', '--format', 'csv', '--pid', '11001'], mockEnv()).stdout).slice(1).map((r) => r[2])).toEqual(['11001']);
  });

  it('quotes as RFC 4180 says: a command with commas, quotes and a newline reads back whole', () => {
    expect(csvField('plain')).toBe('plain');
    expect(csvField('a,b')).toBe('"a,b"');
    expect(csvField('say "hi"')).toBe('"say ""hi"""');
    expect(csvField(null)).toBe('');
    const document = probeJson(mockEnv()).json;
    const command = 'python -c "import torch, os"\nserve,now\r\n';
    document.devices[0].processes[0].command = command;
    document.devices[0].processes[0].host = { rssBytes: 123, malloc: { inUseBytes: 45 }, container: { usageBytes: 6, limitBytes: null } };
    const rows = parseCsv(renderProbeCsv(document));
    expect(rows[1]![3]).toBe(command);
    expect(rows[1]!.slice(9)).toEqual(['123', '45', '6', '']);
    expect(rows).toHaveLength(5);
  });

  it('--format json is --json; a bad format, or --json with csv, is a usage error', () => {
    const json = runCli(['probe', '--format', 'json'], mockEnv());
    expect(JSON.parse(json.stdout).schemaVersion).toBe(1);
    expect(runCli(['probe', '--format', 'xml'], mockEnv())).toMatchObject({ status: 2, stderr: expect.stringMatching(/--format expects one of table, json, csv/) });
    expect(runCli(['probe', '--json', '--format', 'csv'], mockEnv()).status).toBe(2);
  });
});
