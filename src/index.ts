/**
 * gpu-layers, the library: open a probe for the driver layer alone (every GPU and process as NVML
 * says), or a monitor for the layered view (the driver sample joined with the companion, vLLM,
 * /proc and the context calibration, and the gaps between them) once or over time; record and
 * read recordings, diagnose them and draw them as HTML; export them to Prometheus.
 * Importing has no side effects; the native addon loads on the first openProbe() or openMonitor().
 */
export { openProbe, Probe } from './probe/probe.js';
export type { ProbeInfo } from './probe/open-result.js';
export { probeOptionsSchema, type ProbeOptions } from './probe/options.js';
export {
  sampleSchema,
  deviceSchema,
  migDeviceSchema,
  processSchema,
  fieldErrorSchema,
  SAMPLE_SCHEMA_VERSION,
  type Sample,
  type Device,
  type MigDevice,
  type GpuProcess,
  type DeviceMemory,
  type FieldError,
  type FieldErrors,
  type ProcessType,
  type LibraryInfo,
} from './sample/schema.js';
export type { CudaDevice } from './sample/cuda-ordinals.js';
export { GpuLayersError, isGpuLayersError, type GpuLayersErrorCode, type ErrorCategory, type CudaStatus } from './errors.js';
export { describeNvmlReturn, type NvmlReturnCode } from './return-codes.js';

export { readLayers, type LayerOptions } from './layers/read-layers.js';
export { joinLayers, type LayerInputs } from './layers/join.js';
export { computeGaps } from './layers/gaps.js';
export {
  layeredSampleSchema,
  layeredDeviceSchema,
  layeredMigDeviceSchema,
  layeredProcessSchema,
  layersSchema,
  gapsSchema,
  hostLayerSchema,
  allocatorLayerSchema,
  frameworkLayerSchema,
  type LayeredSample,
  type LayeredDevice,
  type LayeredMigDevice,
  type LayeredProcess,
  type Layers,
  type Gaps,
  type HostLayer,
  type AllocatorLayer,
  type FrameworkLayer,
  type SourceStatus,
} from './layers/schema.js';
export { openMonitor, Monitor, type MonitorOptions, type WatchOptions } from './monitor/monitor.js';
export { MIN_WATCH_INTERVAL_MS } from './monitor/sampling-floor.js';
export { diagnose, diagnoseHistories } from './diagnosis/diagnose.js';
export { HistoryBuilder, processHistories, type ProcessHistory } from './diagnosis/process-history.js';
export { findingSchema, evidenceSchema, FINDING_IDS, SEVERITIES, type Finding, type FindingId, type Evidence, type Severity } from './diagnosis/finding-schema.js';
export { readRecording, readRecordings, parseRecording, type Recording } from './recording/read-recording.js';
export { streamRecording, type RecordingStream, type StreamedLine, type StreamOptions } from './recording/stream-recording.js';
export { RecordingWriter, type RecordingWriterOptions } from './recording/write-recording.js';
export { recordingHeaderSchema, recordingHeaderFor, RECORDING_FORMAT, type RecordingHeader } from './recording/recording-header.js';
export { renderReportHtml, type ReportInput } from './report/render-report.js';
export { createExporter, DEFAULT_EXPORTER_PORT, DEFAULT_EXPORTER_INTERVAL_MS, type Exporter, type ExporterOptions } from './exporter/create-exporter.js';
export { defaultFlightDirectory, FlightRecorder, type Flight, type FlightRecorderOptions, type FlightResult } from './flight-recorder/flight-recorder.js';
export { OomEventDetector, type GpuNeighbour, type OomEvent } from './flight-recorder/oom-events.js';
export { runCanary } from './canary/run-canary.js';
export { CANARY_DEFAULTS, type CanaryOptions, type CanaryProgress } from './canary/canary-options.js';
export { canaryResultSchema, canaryFindingSchema, type CanaryResult, type CanaryFinding } from './canary/canary-schema.js';
export { NEAR_TIE_MARGIN_NATS } from './canary/near-tie.js';
export { analyzeSnapshot, type AnalyzeSnapshotOptions, type SnapshotProgress } from './snapshot/analyze-snapshot.js';
export { snapshotReportSchema, snapshotDeviceSchema, type SnapshotReport, type SnapshotDevice } from './snapshot/snapshot-report-schema.js';
export { calibrateContexts, type CalibrateOptions, type CalibrationReport } from './calibration/calibrate.js';
export { companionDirectory } from './companion-path.js';
export { companionFileSchema, companionOomSnapshotPath, type CompanionFile, type CompanionOom, type CompanionResult } from './sources/companion.js';
export type { FrameworkResult } from './layers/vllm-attribution.js';
export type { CalibrationEntry } from './sources/calibration-cache.js';
