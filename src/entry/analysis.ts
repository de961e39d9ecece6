/**
 * gpu-layers/analysis: the synchronous, pure work over samples you already have, live or
 * recorded: the join, the diagnosis, recordings (read, streamed, written), the OOM flight
 * recorder and the HTML report. Importing it loads zod, which validates what these read; the
 * library's main entry stays light by leaving these here.
 */
export { joinLayers, type LayerInputs } from '../layers/join.js';
export { diagnose, diagnoseHistories } from '../diagnosis/diagnose.js';
export { HistoryBuilder, processHistories, type ProcessHistory } from '../diagnosis/process-history.js';
export type { Finding, FindingId, Evidence, Severity } from '../diagnosis/finding-schema.js';
export { readRecording, readRecordings, parseRecording, type Recording } from '../recording/read-recording.js';
export { streamRecording, type RecordingStream, type StreamedLine, type StreamOptions } from '../recording/stream-recording.js';
export { RecordingWriter, type RecordingWriterOptions } from '../recording/write-recording.js';
export { recordingHeaderFor, type RecordingHeader } from '../recording/recording-header.js';
export { renderReportHtml, type ReportInput } from '../report/render-report.js';
export { defaultFlightDirectory, FlightRecorder, type Flight, type FlightRecorderOptions, type FlightResult } from '../flight-recorder/flight-recorder.js';
export { OomEventDetector, type GpuNeighbour, type OomEvent } from '../flight-recorder/oom-events.js';
export { companionOomSnapshotPath } from '../sources/companion.js';
