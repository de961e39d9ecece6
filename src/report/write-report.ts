/**
 * Writes the report of a recording (diagnosed, then drawn) to an HTML file, whole: a reader never
 * opens half a report, and nothing planted beside the file is written through (writeFileAtomic).
 */
import { diagnose } from '../diagnosis/diagnose.js';
import { GpuLayersError } from '../errors.js';
import { fileErrorReason } from '../file-error-reason.js';
import type { Recording } from '../recording/read-recording.js';
import { writeFileAtomic } from '../write-file-atomic.js';
import { renderReportHtml } from './render-report.js';

/** Writes the report of `recording` to `out`; returns how many findings it shows. */
export function writeReport(recording: Recording, out: string, title?: string): number {
  const findings = diagnose(recording.samples);
  const html = renderReportHtml({ header: recording.header, samples: recording.samples, findings, ...(title !== undefined ? { title } : {}) });
  try {
    writeFileAtomic(out, html);
  } catch (error) {
    throw new GpuLayersError('OUTPUT_UNWRITABLE', `cannot write the report ${out}: ${fileErrorReason(error)}`, { cause: error });
  }
  return findings.length;
}
