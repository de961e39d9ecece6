/**
 * Every error carries its category, and the CLI's exit code follows from it alone: usage 2, the
 * GPUs unreadable 3, bad input 4. A scenario file that is not valid is bad input, not "cannot
 * read the GPUs".
 */
import { describe, expect, it } from 'vitest';

import { EXIT_CODE_OF } from '../../src/cli/exit-codes.js';
import { main } from '../../src/cli/main.js';
import { GpuLayersError, nvmlErrorCode } from '../../src/errors.js';
import { writeScenario } from '../../src/mock-host/scenario-text.js';

function exitCodeOf(error: GpuLayersError): number {
  return EXIT_CODE_OF[error.category];
}

describe('error categories', () => {
  it.each([
    ['INVALID_OPTIONS', 2],
    ['NVML_LIBRARY_NOT_FOUND', 3],
    ['NVML_TIMEOUT', 3],
    ['NATIVE_ADDON_UNAVAILABLE', 3],
    ['SCENARIO_INVALID', 4],
    ['RECORDING_INVALID', 4],
    ['SNAPSHOT_UNREADABLE', 4],
    ['OUTPUT_UNWRITABLE', 4],
  ] as const)('%s exits %d', (code, exit) => {
    expect(exitCodeOf(new GpuLayersError(code, 'x'))).toBe(exit);
  });

  it('every NVML init failure is the GPUs being unreadable', () => {
    for (const rc of [1, 2, 3, 4, 9, 12, 18, 999]) expect(new GpuLayersError(nvmlErrorCode(rc), 'x').category).toBe('gpu');
  });

  it("an invalid scenario, as the mock host's writer throws it, is bad input (exit 4)", () => {
    let thrown: unknown;
    try {
      writeScenario('/nonexistent/x.scenario', { devices: [{ memory: { total: -1, used: 0, free: 0, reserved: 0 } }] } as never);
    } catch (error) {
      thrown = error;
    }
    expect(thrown).toBeInstanceOf(GpuLayersError);
    expect((thrown as GpuLayersError).code).toBe('SCENARIO_INVALID');
    expect(exitCodeOf(thrown as GpuLayersError)).toBe(4);
  });

  it('main() prints an input error as one line and exits with its category', async () => {
    const stderr: string[] = [];
    const io = { stdout: { write: () => true }, stderr: { write: (text: string) => stderr.push(text) }, env: {} };
    expect(await main(['diagnose', '/nonexistent/recording.jsonl'], io as never)).toBe(4);
    expect(stderr.join('')).toMatch(/^gpu-layers: .*recording/);
    expect(stderr.join('')).not.toMatch(/cannot read the GPUs/);
  });
});
