/**
 * The CLI's entry: picks the verb, runs it, and turns every failure into a message and an exit
 * code (never a stack trace). Pure with respect to its arguments: bin.ts passes the process's
 * argv, streams and environment; tests pass their own.
 */
import { isGpuLayersError } from '../errors.js';
import type { CliIo } from './cli-io.js';
import { EXIT_CODE_OF, EXIT_OK } from './exit-codes.js';
import { nvmlUnavailableParagraph } from './nvml-unavailable.js';
import { MAIN_HELP, UsageError } from './usage.js';
import { packageVersion } from './version.js';

type Command = (args: string[], io: CliIo) => Promise<number>;

// Each verb loads its own code on demand: `gpu-layers probe` at 3 AM should not pay for parsing
// the demo host or the JSON Schema generator (start-up time is measured against pynvml).
const COMMANDS: Record<string, () => Promise<Command>> = {
  probe: async () => (await import('./commands/probe-command.js')).probeCommand,
  demo: async () => (await import('./commands/demo-command.js')).demoCommand,
  schema: async () => (await import('./commands/schema-command.js')).schemaCommand,
  calibrate: async () => (await import('./commands/calibrate-command.js')).calibrateCommand,
  companion: async () => (await import('./commands/companion-command.js')).companionCommand,
  doctor: async () => (await import('./commands/doctor-command.js')).doctorCommand,
  watch: async () => (await import('./commands/watch-command.js')).watchCommand,
  record: async () => (await import('./commands/record-command.js')).recordCommand,
  diagnose: async () => (await import('./commands/diagnose-command.js')).diagnoseCommand,
  report: async () => (await import('./commands/report-command.js')).reportCommand,
  snapshot: async () => (await import('./commands/snapshot-command.js')).snapshotCommand,
  serve: async () => (await import('./commands/serve-command.js')).serveCommand,
  canary: async () => (await import('./commands/canary-command.js')).canaryCommand,
};

/** One message for the failure, told the way its category needs, and the exit code it carries. */
function reportError(error: unknown, io: CliIo): number {
  if (error instanceof UsageError) {
    io.stderr.write(`gpu-layers: ${error.message}\nRun \`gpu-layers --help\` for usage.\n`);
    return EXIT_CODE_OF[error.category];
  }
  if (isGpuLayersError(error)) {
    io.stderr.write(error.category === 'gpu' ? nvmlUnavailableParagraph(error) : `gpu-layers: ${error.message}\n`);
    return EXIT_CODE_OF[error.category];
  }
  const message = error instanceof Error ? error.message : String(error);
  io.stderr.write(`gpu-layers: internal error: ${message}. Please report it with the command you ran.\n`);
  if (io.env.GPU_LAYERS_DEBUG === '1' && error instanceof Error) io.stderr.write(`${error.stack ?? ''}\n`);
  return EXIT_CODE_OF.internal;
}

export async function main(argv: string[], io: CliIo): Promise<number> {
  try {
    const first = argv[0];
    if (first === '-h' || first === '--help' || first === 'help') {
      io.stdout.write(MAIN_HELP);
      return EXIT_OK;
    }
    if (first === '-v' || first === '--version') {
      io.stdout.write(`${packageVersion()}\n`);
      return EXIT_OK;
    }
    if (first === undefined || first.startsWith('-')) return await (await COMMANDS.probe!())(argv, io);
    const load = COMMANDS[first];
    if (load === undefined) {
      throw new UsageError(`unknown command "${first}" (commands: ${Object.keys(COMMANDS).join(', ')})`);
    }
    return await (await load())(argv.slice(1), io);
  } catch (error) {
    return reportError(error, io);
  }
}
