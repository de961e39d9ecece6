/**
 * A finding of `diagnose`: which failure pattern of the postmortems a recording (or a live
 * window) shows, for which device and process, on what evidence, how sure, and what to do. The
 * ids are stable: alert rules, dashboards and `--fail-on` scripts depend on them.
 */
import * as z from 'zod/mini';

export const FINDING_IDS = [
  'cuda-graph-creep',
  'allocator-fragmentation',
  'gpu-tensor-leak',
  'device-memory-growth',
  'host-heap-leak',
  'rss-not-malloc',
  'lazy-init',
  'idle-growth',
  'oom-killed',
  'scheduler-state-mismatch',
] as const;
export const SEVERITIES = ['info', 'warning', 'critical'] as const;

export const evidenceSchema = z.object({
  /** The series, by its path in the layered sample: "layers.driverBytes", "host.anonBytes". */
  series: z.string(),
  unit: z.enum(['bytes', 'count', 'ratio']),
  /** Values at the start and the end of the span the rule judged (medians at each end). */
  first: z.number(),
  last: z.number(),
  /** Theil-Sen slope over the span the rule judged, per hour. */
  slopePerHour: z.number(),
  /** R² of a least-squares line over that span, 0..1 (null: the series is constant). */
  fit: z.nullable(z.number()),
  samples: z.int(),
  /** What this series shows, in words. */
  note: z.string(),
});

export const findingSchema = z.object({
  id: z.enum(FINDING_IDS),
  severity: z.enum(SEVERITIES),
  /** 0..1: how well the data fits the pattern (fit, length of the window, supporting series). */
  confidence: z.number().check(z.minimum(0), z.maximum(1)),
  title: z.string(),
  summary: z.string(),
  subject: z.object({
    deviceIndex: z.int(),
    uuid: z.nullable(z.string()),
    /** null for a finding about the whole device. */
    pid: z.nullable(z.int()),
    command: z.nullable(z.string()),
  }),
  window: z.object({ from: z.string(), to: z.string() }),
  /** The moment to mark on a time axis: where the growth starts, or the step. */
  at: z.string(),
  evidence: z.array(evidenceSchema),
  /** The fix the postmortems name. */
  fix: z.string(),
});

export type FindingId = (typeof FINDING_IDS)[number];
export type Severity = (typeof SEVERITIES)[number];
// Interfaces, not aliases, so that editors and compiler errors name them (see sample/schema.ts).
export interface Evidence extends z.infer<typeof evidenceSchema> {}
export interface Finding extends z.infer<typeof findingSchema> {}
