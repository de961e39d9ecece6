/**
 * `gpu-layers report FILE... --html OUT`: the recording diagnosed and drawn into one
 * self-contained HTML file, written whole (temporary file, then rename) so a reader never opens
 * half a report.
 */
import { renameSync, rmSync, writeFileSync } from 'node:fs';

import { diagnose } from '../../diagnosis/diagnose.js';
import { GpuLayersError } from '../../errors.js';
import { fileErrorReason } from '../../file-error-reason.js';
import type { Recording } from '../../recording/read-recording.js';
import { renderReportHtml } from '../../report/render-report.js';
import type { CliIo } from '../cli-io.js';
import { EXIT_OK } from '../exit-codes.js';
import { parseFlagsAndFiles } from '../parse-flags.js';
import { REPORT_HELP, UsageError } from '../usage.js';
import { readRecordingInput } from './recording-input.js';

/** Writes the report of `recording` to `out`; returns how many findings it shows. */
export function writeReport(recording: Recording, out: string, title?: string): number {
  const findings = diagnose(recording.samples);
  const html = renderReportHtml({ header: recording.header, samples: recording.samples, findings, ...(title !== undefined ? { title } : {}) });
  const temporary = `${out}.${process.pid}.tmp`;
  try {
    writeFileSync(temporary, html);
    renameSync(temporary, out);
  } catch (error) {
    rmSync(temporary, { force: true });
    throw new GpuLayersError('OUTPUT_UNWRITABLE', `cannot write the report ${out}: ${fileErrorReason(error)}`, { cause: error });
  }
  return findings.length;
}

export async function reportCommand(args: string[], io: CliIo): Promise<number> {
  const { flags, files } = parseFlagsAndFiles(args, {
    html: { type: 'string' },
    help: { type: 'boolean', short: 'h' },
  });
  if (flags.help === true) {
    io.stdout.write(REPORT_HELP);
    return EXIT_OK;
  }
  if (flags.html === undefined) throw new UsageError('report needs --html OUT (the file to write)');
  const recording = await readRecordingInput(files, 'report', io);
  const findings = writeReport(recording, flags.html);
  io.stderr.write(`gpu-layers report: wrote ${flags.html} (${recording.samples.length} samples, ${findings} finding(s))\n`);
  return EXIT_OK;
}
