/**
 * `gpu-layers/mock`: test a Node agent built on gpu-layers without a GPU. Write a scenario, point
 * the probe at the mock libraries, rewrite the scenario to move time forward.
 */
export { mockEnvironment, mockLibraries, type MockLibraries } from './mock-libraries.js';
export { formatScenario, writeScenario } from './scenario-text.js';
export { scenarioSchema, type Scenario, type ScenarioDevice, type ScenarioProcess } from './scenario-schema.js';
