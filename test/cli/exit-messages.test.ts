/**
 * Issue 19, finding 9: exit codes by category and precise messages. An error gpu-layers did not
 * foresee is not "NVML unavailable"; a file that is not a shared library is not "not found"; an
 * output that cannot be written says so; a negative duration is a clear usage error.
 */
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';

import { EXIT_CODE_OF, EXIT_INTERNAL, EXIT_NVML_UNAVAILABLE } from '../../src/cli/exit-codes.js';
import { main } from '../../src/cli/main.js';
import { runCli } from '../helpers/cli.js';
import { createMockHost, type MockHost } from '../helpers/mock-host.js';
import { nodeGypBuild } from '../helpers/paths.js';
import { h100 } from '../helpers/scenarios.js';

vi.mock('../../src/cli/commands/schema-command.js', () => ({
  schemaCommand: async () => {
    throw new TypeError("Cannot read properties of undefined (reading 'x')");
  },
}));

let mock: MockHost;
beforeAll(() => {
  mock = createMockHost({ devices: [h100(0)] });
});
afterAll(async () => {
  await mock?.remove();
});
const mockEnv = () => ({ GPU_LAYERS_MOCK_SCENARIO: mock.scenarioFile, GPU_LAYERS_NVML_LIB: nodeGypBuild.mockNvml, GPU_LAYERS_CUDA_LIB: nodeGypBuild.mockCuda, GPU_LAYERS_STATS_DIR: '', GPU_LAYERS_CACHE_DIR: path.join(mock.dir, 'cache') });

describe('exit codes and messages', () => {
  it('an unexpected error is an internal error with its own exit code, not "NVML unavailable"', async () => {
    const stderr: string[] = [];
    const io = { stdout: { write: () => true }, stderr: { write: (text: string) => stderr.push(text) }, env: {} };
    const code = await main(['schema'], io as never);
    expect(code).toBe(EXIT_INTERNAL);
    expect(EXIT_CODE_OF.internal).toBe(EXIT_INTERNAL);
    expect(code).not.toBe(EXIT_NVML_UNAVAILABLE);
    expect(stderr.join('')).toMatch(/^gpu-layers: internal error: .*Please report it/);
    expect(stderr.join('')).not.toMatch(/cannot read the GPUs/);
  });

  it('--timeout -5 is a usage error that says what --timeout expects', () => {
    const run = runCli(['probe', '--timeout', '-5'], mockEnv());
    expect(run.status).toBe(2);
    expect(run.stderr).toMatch(/--timeout expects a duration .* not "-5"/);
    expect(run.stderr).not.toMatch(/ambiguous/);
  });

  it('--nvml-lib /etc/passwd is NVML_LIBRARY_INVALID: not a loadable shared library', () => {
    const run = runCli(['probe', '--nvml-lib', '/etc/passwd'], { ...mockEnv(), GPU_LAYERS_NVML_LIB: undefined });
    expect(run.status).toBe(3);
    expect(run.stderr).toMatch(/\/etc\/passwd is not a loadable shared library/);
    expect(run.stderr).toMatch(/NVML_LIBRARY_INVALID/);
    expect(run.stderr).not.toMatch(/NVML_LIBRARY_NOT_FOUND/);
  });

  it('record --out /dev/full says it cannot write, exit 4', () => {
    const run = runCli(['record', '--out', '/dev/full', '--interval', '250ms', '--count', '1', '--no-host'], mockEnv());
    expect(run.status).toBe(4);
    expect(run.stderr).toMatch(/cannot write|no space|ENOSPC|not a regular file/i);
    expect(run.stderr).not.toMatch(/not a gpu-layers recording/);
  });
});
