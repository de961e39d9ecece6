/**
 * `gpu-layers report FILE... --html OUT`: the recording diagnosed and drawn into one
 * self-contained HTML file (report/write-report.ts).
 */
import { writeReport } from '../../report/write-report.js';
import type { CliIo } from '../cli-io.js';
import { EXIT_OK } from '../exit-codes.js';
import { parseFlagsAndFiles } from '../parse-flags.js';
import { REPORT_HELP, UsageError } from '../usage.js';
import { readRecordingInput } from './recording-input.js';

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
