/**
 * `gpu-layers diagnose FILE...`: the findings of a recording, readable or --json; --fail-on
 * makes a finding at or above a severity exit 1, for scripts and CI gates.
 */
import { unmeasuredLayers, type Layer } from '../../diagnosis/coverage.js';
import { diagnoseHistories } from '../../diagnosis/diagnose.js';
import { SEVERITIES, type Severity } from '../../diagnosis/finding-schema.js';
import { THRESHOLDS } from '../../diagnosis/thresholds.js';
import { duration } from '../../diagnosis/wording.js';
import { useColor, type CliIo } from '../cli-io.js';
import { EXIT_FINDING, EXIT_OK } from '../exit-codes.js';
import { parseFlagsAndFiles } from '../parse-flags.js';
import { renderFindings } from '../render/findings-text.js';
import { makeStyle } from '../render/style.js';
import { DIAGNOSE_HELP, UsageError } from '../usage.js';
import { streamRecordingInput } from './recording-input.js';

export function parseSeverity(value: string): Severity {
  if (!(SEVERITIES as readonly string[]).includes(value)) throw new UsageError(`--fail-on expects one of ${SEVERITIES.join(', ')}, not "${value}"`);
  return value as Severity;
}

const LAYER_NAMES: Record<Layer, string> = { allocator: 'the allocator layer (no companion file)', framework: 'the framework layer (no vLLM source)', host: 'the host layer (/proc)' };

/** "No finding", and which layers were not measured for which processes: those could not be judged. */
function noFindingText(histories: Parameters<typeof unmeasuredLayers>[0]): string {
  const unmeasured = unmeasuredLayers(histories);
  if (unmeasured.length === 0) return 'No finding: no layer grew, stepped or fragmented beyond its thresholds in this window.\n';
  const list = unmeasured.map((u) => `${LAYER_NAMES[u.layer]} for pid ${u.pids.slice(0, 8).join(', ')}${u.pids.length > 8 ? ', ...' : ''}`).join('; ');
  return `No finding in the layers measured: none grew, stepped or fragmented beyond its thresholds in this window. Not measured, so not judged: ${list}.\n`;
}

export async function diagnoseCommand(args: string[], io: CliIo): Promise<number> {
  const { flags, files } = parseFlagsAndFiles(args, {
    json: { type: 'boolean' },
    'fail-on': { type: 'string' },
    help: { type: 'boolean', short: 'h' },
  });
  if (flags.help === true) {
    io.stdout.write(DIAGNOSE_HELP);
    return EXIT_OK;
  }
  const failOn = flags['fail-on'] === undefined ? null : parseSeverity(flags['fail-on']);
  const input = await streamRecordingInput(files, 'diagnose', io);
  const findings = diagnoseHistories(input.histories);
  const { header, samples } = input;
  const from = new Date(input.from).toISOString();
  const to = new Date(input.to).toISOString();

  if (flags.json === true) {
    const document = { files, host: header.host, window: { from, to, samples }, findings, warnings: input.warnings };
    io.stdout.write(`${JSON.stringify(document, null, 2)}\n`);
  } else {
    const style = makeStyle(useColor(io));
    io.stdout.write(`${style.bold(files.join(', '))}: ${samples} samples over ${duration(input.to - input.from)} on ${header.host} (${from} to ${to})\n\n`);
    if (findings.length > 0) io.stdout.write(renderFindings(findings, style, io.stdout.columns || 100));
    else if (samples < THRESHOLDS.minSamples) io.stdout.write(`No finding: ${samples} sample(s) are too few to judge; the rules need at least ${THRESHOLDS.minSamples}.\n`);
    else io.stdout.write(noFindingText(input.histories));
  }
  if (failOn !== null && findings.some((f) => SEVERITIES.indexOf(f.severity) >= SEVERITIES.indexOf(failOn))) return EXIT_FINDING;
  return EXIT_OK;
}
