/**
 * The recording files `diagnose` and `report` take as positional arguments: read as one, each
 * warning (a torn last line, a skipped line, samples out of order) said on stderr, and a
 * recording with no complete sample refused.
 */
import { GpuLayersError } from '../../errors.js';
import { readRecordings, type Recording } from '../../recording/read-recording.js';
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
