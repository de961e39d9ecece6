/**
 * A mock GPU host for one test file: the product's FakeHost with only its NVML scenario written
 * (the mock libraries read GPU_LAYERS_MOCK_SCENARIO with getenv), rewritten atomically to move
 * time forward, and the helper that takes one driver sample of a scenario.
 */
import { FakeHost } from '../../src/mock-host/fake-host.js';
import type { Scenario } from '../../src/mock-host/scenario-schema.js';
import type { ProbeOptions } from '../../src/probe/options.js';
import { openProbe } from '../../src/probe/probe.js';
import type { Sample } from '../../src/sample/schema.js';

export interface MockHost {
  dir: string;
  scenarioFile: string;
  traceFile: string;
  write(scenario: Scenario): void;
  /** Lines of the call trace, when the file enabled tracing before the first mock call. */
  trace(): string[];
  remove(): Promise<void>;
}

export function createMockHost(scenario: Scenario, options: { trace?: boolean } = {}): MockHost {
  const host = new FakeHost(options);
  host.writeScenario(scenario);
  return {
    dir: host.dir,
    scenarioFile: host.scenarioFile,
    traceFile: host.traceFile,
    write: (next) => host.writeScenario(next),
    trace: () => host.trace(),
    remove: () => host.close(),
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
