/**
 * gpu-layers, the library: open a probe for the driver layer alone (every GPU and process as NVML
 * says), or a monitor for the layered view (the driver sample joined with the companion, vLLM,
 * /proc and the context calibration, and the gaps between them) once or over time; export them to
 * Prometheus; calibrate; run the canary; read a PyTorch snapshot. The synchronous work over
 * samples and recordings (join, diagnosis, recordings, the flight recorder, the HTML report) is
 * `gpu-layers/analysis`, the zod schemas `gpu-layers/schemas`.
 *
 * Importing has no side effects and stays cheap: this module loads only the errors and a few
 * constants. Each asynchronous entry point below loads its part of the library (zod, prom-client,
 * the native addon) on its first call; an agent that only probes never loads the exporter.
 */
import type { Exporter, ExporterOptions } from './exporter/create-exporter.js';
import type { CalibrateOptions, CalibrationReport } from './calibration/calibrate.js';
import type { CanaryOptions } from './canary/canary-options.js';
import type { CanaryResult } from './canary/canary-schema.js';
import type { LayerOptions } from './layers/read-layers.js';
import type { LayeredSample } from './layers/schema.js';
import type { Monitor, MonitorOptions } from './monitor/monitor.js';
import type { ProbeOptions } from './probe/options.js';
import type { Probe } from './probe/probe.js';
import type { Sample } from './sample/schema.js';
import type { AnalyzeSnapshotOptions } from './snapshot/analyze-snapshot.js';
import type { SnapshotReport } from './snapshot/snapshot-report-schema.js';

/**
 * Loads NVML (and CUDA, context-free) on a native worker thread and resolves to a Probe:
 * `probe.sample()` reads every GPU and process as NVML says. Rejects with a GpuLayersError
 * (INVALID_OPTIONS, NATIVE_ADDON_UNAVAILABLE, NVML_*) when it cannot open.
 */
export async function openProbe(options?: ProbeOptions): Promise<Probe> {
  return (await import('./probe/probe.js')).openProbe(options);
}

/** A probe and the layer sources over it: `monitor.sample()` once, `monitor.watch()` over time. */
export async function openMonitor(options?: MonitorOptions): Promise<Monitor> {
  return (await import('./monitor/monitor.js')).openMonitor(options);
}

/** Reads every layer source for a sample you took and joins them to it. */
export async function readLayers(sample: Sample, options?: LayerOptions): Promise<LayeredSample> {
  return (await import('./layers/read-layers.js')).readLayers(sample, options);
}

/** `gpu-layers serve` as a library: a monitor on a fixed rate, its registry and request handler. */
export async function createExporter(options?: ExporterOptions): Promise<Exporter> {
  return (await import('./exporter/create-exporter.js')).createExporter(options);
}

/** Measures a bare CUDA context's cost on each device, in a child process, and caches it. */
export async function calibrateContexts(options?: CalibrateOptions): Promise<CalibrationReport> {
  return (await import('./calibration/calibrate.js')).calibrateContexts(options);
}

/** The sequence-consistency check of an OpenAI-compatible serving engine. */
export async function runCanary(options: CanaryOptions): Promise<CanaryResult> {
  return (await import('./canary/run-canary.js')).runCanary(options);
}

/** Fragmentation forensics of a PyTorch memory snapshot (a file path or its bytes). */
export async function analyzeSnapshot(input: string | Buffer, options?: AnalyzeSnapshotOptions): Promise<SnapshotReport> {
  return (await import('./snapshot/analyze-snapshot.js')).analyzeSnapshot(input, options);
}

export { GpuLayersError, isGpuLayersError, type GpuLayersErrorCode, type ErrorCategory, type CudaStatus } from './errors.js';
export { describeNvmlReturn, type NvmlReturnCode } from './return-codes.js';
export { SAMPLE_SCHEMA_VERSION } from './sample/schema-version.js';
export { MIN_WATCH_INTERVAL_MS } from './monitor/sampling-floor.js';
export { DEFAULT_EXPORTER_PORT, DEFAULT_EXPORTER_INTERVAL_MS } from './exporter/exporter-defaults.js';
export { NEAR_TIE_MARGIN_NATS } from './canary/near-tie.js';
export { computeGaps } from './layers/gaps.js';
export { companionDirectory } from './companion-path.js';

export type { Probe, ProbeOptions, Monitor, MonitorOptions, LayerOptions, Exporter, ExporterOptions };
export type { CalibrateOptions, CalibrationReport, CanaryOptions, CanaryResult, AnalyzeSnapshotOptions, SnapshotReport };
export type { WatchOptions } from './monitor/monitor.js';
export type { ProbeInfo } from './probe/open-result.js';
export type { CudaDevice } from './sample/cuda-ordinals.js';
export type { Sample, Device, MigDevice, GpuProcess, DeviceMemory, FieldError, FieldErrors, ProcessType, LibraryInfo } from './sample/schema.js';
export type {
  LayeredSample,
  LayeredDevice,
  LayeredMigDevice,
  LayeredProcess,
  Layers,
  Gaps,
  HostLayer,
  AllocatorLayer,
  FrameworkLayer,
  KubernetesIdentity,
  SourceStatus,
} from './layers/schema.js';
export type { LayerInputs } from './layers/join.js';
export type { Finding, FindingId, Evidence, Severity } from './diagnosis/finding-schema.js';
export type { ProcessHistory } from './diagnosis/process-history.js';
export type { Recording } from './recording/read-recording.js';
export type { RecordingStream, StreamedLine, StreamOptions } from './recording/stream-recording.js';
export type { RecordingWriterOptions } from './recording/write-recording.js';
export type { RecordingHeader } from './recording/recording-header.js';
export type { ReportInput } from './report/render-report.js';
export type { Flight, FlightRecorderOptions, FlightResult } from './flight-recorder/flight-recorder.js';
export type { GpuNeighbour, OomEvent } from './flight-recorder/oom-events.js';
export type { CanaryProgress } from './canary/canary-options.js';
export type { CanaryFinding } from './canary/canary-schema.js';
export type { SnapshotProgress } from './snapshot/analyze-snapshot.js';
export type { SnapshotDevice } from './snapshot/snapshot-report-schema.js';
export type { CompanionFile, CompanionOom, CompanionResult } from './sources/companion.js';
export type { FrameworkResult } from './layers/vllm-attribution.js';
export type { CalibrationEntry } from './sources/calibration-cache.js';
