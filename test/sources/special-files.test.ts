/**
 * Issue 19, finding 5: a --vllm-log, --hf-config or recording that names a FIFO with no writer or
 * /dev/zero is refused at once (opened non-blocking, refused unless a regular file), never waited
 * on or read without end. Each case has a short test timeout: a hang fails it.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { main } from '../../src/cli/main.js';
import { readHfConfig } from '../../src/sources/hf-config.js';
import { VllmLogFollower } from '../../src/sources/vllm-log.js';
import { runCliAsync } from '../helpers/cli.js';
import { createMockHost, type MockHost } from '../helpers/mock-host.js';
import { nodeGypBuild } from '../helpers/paths.js';
import { h100 } from '../helpers/scenarios.js';

let dir: string;
let fifo: string;
let mock: MockHost;

beforeAll(() => {
  dir = mkdtempSync(path.join(tmpdir(), 'gpu-layers-special-'));
  fifo = path.join(dir, 'fifo');
  execFileSync('mkfifo', [fifo]);
  mock = createMockHost({ devices: [h100(0)] });
});

afterAll(async () => {
  await mock?.remove();
  rmSync(dir, { recursive: true, force: true });
});

const special = () => [
  ['a FIFO with no writer', fifo],
  ['/dev/zero', '/dev/zero'],
];

describe('special files as inputs', () => {
  it.each([0, 1])('--hf-config: case %i is refused at once as not a regular file', async (i) => {
    const [, file] = special()[i]!;
    const read = await readHfConfig(file!);
    expect(read.ok).toBe(false);
    if (!read.ok) expect(read.error.message).toMatch(/not a regular file/);
  }, 3000);

  it.each([0, 1])('--vllm-log: case %i is refused at once as not a regular file', async (i) => {
    const [, file] = special()[i]!;
    const follower = new VllmLogFollower(file!);
    await expect(follower.read()).rejects.toThrow(/not a regular file/);
    expect(follower.bytesRead).toBe(0);
  }, 3000);

  it.each([
    ['diagnose', 0],
    ['diagnose', 1],
    ['report', 0],
    ['report', 1],
  ] as const)('%s on case %i: a typed input error, exit 4', async (verb, i) => {
    const [, file] = special()[i]!;
    const stderr: string[] = [];
    const io = { stdout: { write: () => true }, stderr: { write: (text: string) => stderr.push(text) }, env: {} };
    const args = verb === 'report' ? ['report', file!, '--html', path.join(dir, 'out.html')] : ['diagnose', file!];
    expect(await main(args, io as never)).toBe(4);
    expect(stderr.join('')).toMatch(/not a regular file/);
  }, 3000);

  it('probe --vllm-log FIFO --hf-config /dev/zero answers promptly, each source with its error', async () => {
    const env = { GPU_LAYERS_MOCK_SCENARIO: mock.scenarioFile, GPU_LAYERS_NVML_LIB: nodeGypBuild.mockNvml, GPU_LAYERS_CUDA_LIB: nodeGypBuild.mockCuda, GPU_LAYERS_CACHE_DIR: path.join(mock.dir, 'cache'), GPU_LAYERS_STATS_DIR: undefined };
    const run = await runCliAsync(['probe', '--json', '--vllm-log', fifo, '--hf-config', '/dev/zero'], env);
    expect(run.status, run.stderr).toBe(0);
    const text = run.stdout;
    expect(text).toMatch(/LOG_UNREADABLE/);
    expect(text).toMatch(/HF_CONFIG_INVALID/);
    expect(text).toMatch(/not a regular file/);
  }, 8000);
});
