/**
 * `gpu-layers/mock`: test a Node agent built on gpu-layers without a GPU. The mock NVML and CUDA
 * libraries read a scenario (rewrite it to move time forward); a FakeHost lays out a whole host
 * around them (companion files, /proc, vLLM servers, a startup log, the calibration, the
 * kubelet's pod-resources socket) for a monitor to read; the incident library plays the
 * postmortems' failure patterns through the real pipeline, to check an agent's own alerts
 * against them; the host model draws realistic
 * recordings of a vLLM host (load curves, start-ups, restarts, gaps), and the evaluation set is
 * the diagnosis's labelled cases drawn from it.
 */
export { mockEnvironment, mockLibraries, type MockLibraries } from './mock-libraries.js';
export { formatScenario, writeScenario } from './scenario-text.js';
export { scenarioSchema, type Scenario, type ScenarioDevice, type ScenarioProcess } from './scenario-schema.js';
export { FakeHost, type FakeAllocator, type FakeHostOptions, type FakeHostState, type FakeProcess } from './fake-host.js';
export { vllmMetricsText, type FakeVllmServer } from './fake-vllm-server.js';
export { startFakePodResourcesServer, encodeListPodResourcesResponse, type FakePodResourcesServer } from './fake-kubelet-pod-resources.js';
export type { PodResources } from '../sources/kubelet-pod-resources.js';
export { startFakeOpenAiServer, NEAR_TIE_EPSILON, type FakeOpenAiEngine, type FakeOpenAiMisbehaviour, type FakeOpenAiServer, type FakeOpenAiServerOptions, type FakeOpenAiRequestRecord } from './fake-openai-server.js';
export { INCIDENTS, incidentNamed } from './incidents.js';
export type { Incident, IncidentState } from './incident.js';
export { recordIncident, type RecordIncidentOptions } from './record-incident.js';
export { modelRecording, resampled, type Effect, type EngineSpec, type HostModelSpec, type ModelRecording, type ModelSubject } from './host-model.js';
export { EVALUATION_SET, evaluationRecording, scoreFindings, scoresById, type CaseScore, type EvaluationCase, type ExpectedFinding, type IdScore } from './evaluation-set.js';
