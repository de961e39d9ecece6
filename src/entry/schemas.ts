/**
 * gpu-layers/schemas: the zod schemas behind every document gpu-layers reads or writes (the
 * driver sample, the layered sample, findings, recordings' headers, the canary's and the
 * snapshot's reports, the companion's file, the probe's options) and the constants they are made
 * of. Types are inferred from them (and exported by name from `gpu-layers`); the published JSON
 * Schema (`gpu-layers/schema/sample.json`) is generated from layeredSampleSchema.
 */
export { sampleSchema, deviceSchema, migDeviceSchema, processSchema, fieldErrorSchema, SAMPLE_SCHEMA_VERSION } from '../sample/schema.js';
export { probeOptionsSchema } from '../probe/options.js';
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
} from '../layers/schema.js';
export { findingSchema, evidenceSchema, FINDING_IDS, SEVERITIES } from '../diagnosis/finding-schema.js';
export { recordingHeaderSchema, RECORDING_FORMAT } from '../recording/recording-header.js';
export { canaryResultSchema, canaryFindingSchema } from '../canary/canary-schema.js';
export { CANARY_DEFAULTS } from '../canary/canary-options.js';
export { snapshotReportSchema, snapshotDeviceSchema } from '../snapshot/snapshot-report-schema.js';
export { companionFileSchema } from '../sources/companion.js';
