/**
 * A copy of a layered sample with every `errors` map left empty: the figures, without the reasons
 * they are unknown. The exporter's window and watch's history keep up to an hour of samples for
 * the diagnosis and the sparklines, which read figures only; at 8 GPUs x 64 processes the reasons
 * (one message per field per process) were half of each sample's heap (604 -> 294 KiB, measured
 * 2026-11-26). They keep these copies; the sample served or shown keeps its reasons.
 */
import type { LayeredSample } from '../layers/schema.js';

// Shared by every copy; frozen, so a write through one copy throws instead of reaching the others.
const NO_ERRORS: Readonly<Record<string, never>> = Object.freeze({});

function copyWithoutErrors(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(copyWithoutErrors);
  if (value === null || typeof value !== 'object') return value;
  const copy: Record<string, unknown> = {};
  for (const [key, field] of Object.entries(value)) copy[key] = key === 'errors' ? NO_ERRORS : copyWithoutErrors(field);
  return copy;
}

export function figuresOnly(sample: LayeredSample): LayeredSample {
  return copyWithoutErrors(sample) as LayeredSample;
}
