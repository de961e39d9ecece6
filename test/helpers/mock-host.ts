/**
 * A mock GPU host for one test file: a scenario file in a temporary folder, named in the real
 * process environment (the mock libraries read GPU_LAYERS_MOCK_SCENARIO with getenv), rewritten
 * atomically to move time forward.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

import { writeScenario } from '../../src/mock-host/scenario-text.js';
import { openProbe } from '../../src/probe/probe.js';
import type { ProbeOptions } from '../../src/probe/options.js';
import type { Sample } from '../../src/sample/schema.js';
import type { Scenario } from '../../src/mock-host/scenario-schema.js';

export interface MockHost {
  dir: string;
  scenarioFile: string;
  traceFile: string;
  write(scenario: Scenario): void;
  /** Lines of the call trace, when the file enabled tracing before the first mock call. */
  trace(): string[];
  remove(): void;
}

export function createMockHost(scenario: Scenario, options: { trace?: boolean } = {}): MockHost {
  const dir = mkdtempSync(path.join(tmpdir(), 'gpu-layers-test-'));
  const scenarioFile = path.join(dir, 'host.scenario');
  const traceFile = path.join(dir, 'trace.log');
  writeScenario(scenarioFile, scenario);
  process.env.GPU_LAYERS_MOCK_SCENARIO = scenarioFile;
  if (options.trace === true) process.env.GPU_LAYERS_MOCK_TRACE = traceFile;
  return {
    dir,
    scenarioFile,
    traceFile,
    write: (next) => writeScenario(scenarioFile, next),
    trace: () => {
      try {
        return readFileSync(traceFile, 'utf8').split('\n').filter((line) => line !== '');
      } catch {
        return [];
      }
    },
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
}

/** Writes `scenario`, opens a probe, takes one sample and closes the probe. */
export async function sampleScenario(mock: MockHost, scenario: Scenario, options: ProbeOptions): Promise<Sample> {
  mock.write(scenario);
  const probe = await openProbe(options);
  try {
    return await probe.sample();
  } finally {
    await probe.close();
  }
}
