/**
 * The recording files `diagnose` and `report` take as positional arguments: read as one, each
 * warning (a torn last line, a skipped line, samples out of order) said on stderr, and a
 * recording with no complete sample refused. `diagnose` streams them into the diagnosis's
 * histories (memory bounded whatever the recording's length); `report` draws every sample.
 */
import { HistoryBuilder, type ProcessHistory } from '../../diagnosis/process-history.js';
import { GpuLayersError } from '../../errors.js';
import { readRecordings, type Recording } from '../../recording/read-recording.js';
import type { RecordingHeader } from '../../recording/recording-header.js';
import { streamRecording } from '../../recording/stream-recording.js';
import type { CliIo } from '../cli-io.js';
import { UsageError } from '../usage.js';

export async function readRecordingInput(files: readonly string[], verb: string, io: CliIo): Promise<Recording> {
  if (files.length === 0) throw new UsageError(`${verb} needs a recording: gpu-layers ${verb} FILE... (made by \`gpu-layers record --out FILE\`)`);
  const recording = await readRecordings(files);
  for (const warning of recording.warnings) io.stderr.write(`gpu-layers ${verb}: warning: ${warning}\n`);
  if (recording.samples.length === 0) {
    throw new GpuLayersError('RECORDING_INVALID', `${files.join(', ')} holds no complete sample yet (only the header): nothing to ${verb}`);
  }
  return recording;
}

export interface StreamedInput {
  header: RecordingHeader;
  histories: ProcessHistory[];
  samples: number;
  from: number;
  to: number;
  warnings: string[];
}

export async function streamRecordingInput(files: readonly string[], verb: string, io: CliIo): Promise<StreamedInput> {
  if (files.length === 0) throw new UsageError(`${verb} needs a recording: gpu-layers ${verb} FILE... (made by \`gpu-layers record --out FILE\`)`);
  const warnings: string[] = [];
  const stream = await streamRecording(files, (warning) => {
    warnings.push(warning);
    io.stderr.write(`gpu-layers ${verb}: warning: ${warning}\n`);
  });
  const builder = new HistoryBuilder();
  let refused = 0;
  for await (const { value } of stream.samples) if (!builder.add(value)) refused++;
  if (refused > 0) {
    const warning = `${refused} line(s) are not samples (no devices); skipped`;
    warnings.push(warning);
    io.stderr.write(`gpu-layers ${verb}: warning: ${warning}\n`);
  }
  const span = builder.span;
  if (span === null) throw new GpuLayersError('RECORDING_INVALID', `${files.join(', ')} holds no complete sample yet (only the header): nothing to ${verb}`);
  return { header: stream.header, histories: builder.histories(), samples: builder.samples, from: span.from, to: span.to, warnings };
}
