/**
 * `gpu-layers snapshot FILE`: fragmentation forensics of a PyTorch memory snapshot
 * (torch.cuda.memory._dump_snapshot), readable or --json. A large file on a terminal gets a
 * progress bar on stderr.
 */
import { analyzeSnapshot, type SnapshotProgress } from '../../snapshot/analyze-snapshot.js';
import { useColor, type CliIo } from '../cli-io.js';
import { EXIT_OK } from '../exit-codes.js';
import { parseFlagsAndFiles } from '../parse-flags.js';
import { renderSnapshotReport } from '../render/snapshot-text.js';
import { makeStyle } from '../render/style.js';
import { SNAPSHOT_HELP, UsageError } from '../usage.js';

/** Files smaller than this read in about a second: no bar. */
const PROGRESS_FROM_BYTES = 64 * 1024 * 1024;
const BAR = 30;

export function progressBar(io: CliIo): ((p: SnapshotProgress) => void) | undefined {
  if (io.stderr.isTTY !== true) return undefined;
  let shown = -1;
  return (p) => {
    if (p.totalBytes < PROGRESS_FROM_BYTES) return;
    // The first pass only scans: it is a fifth of the work.
    const done = p.phase === 'scan' ? 0.2 * (p.bytes / p.totalBytes) : 0.2 + 0.8 * (p.bytes / p.totalBytes);
    const percent = Math.floor(done * 100);
    if (percent === shown) return;
    shown = percent;
    const cells = Math.round(done * BAR);
    io.stderr.write(`\r[${'#'.repeat(cells)}${' '.repeat(BAR - cells)}] ${String(percent).padStart(3)}% ${p.phase === 'scan' ? 'scanning' : 'reading '}`);
    if (percent >= 100) io.stderr.write('\r\u001b[K');
  };
}

export async function snapshotCommand(args: string[], io: CliIo): Promise<number> {
  const { flags, files } = parseFlagsAndFiles(args, {
    json: { type: 'boolean' },
    help: { type: 'boolean', short: 'h' },
  });
  if (flags.help === true) {
    io.stdout.write(SNAPSHOT_HELP);
    return EXIT_OK;
  }
  if (files.length !== 1) throw new UsageError('snapshot takes one file: gpu-layers snapshot FILE (written by torch.cuda.memory._dump_snapshot)');
  const onProgress = progressBar(io);
  const report = await analyzeSnapshot(files[0]!, onProgress === undefined ? {} : { onProgress });
  if (flags.json === true) io.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
  else io.stdout.write(renderSnapshotReport(report, makeStyle(useColor(io))));
  return EXIT_OK;
}
