import type { KeyInput } from './quit-keys.js';

/** What a CLI command may touch: its output streams and environment, passed in so tests can
 * run main() in-process and capture everything. */
export interface CliIo {
  stdout: { write(text: string): unknown; isTTY?: boolean; columns?: number };
  stderr: { write(text: string): unknown; isTTY?: boolean };
  env: Record<string, string | undefined>;
  /** The keyboard, for `q` in `watch` (bin.ts gives process.stdin, looked up only when read). */
  stdin?: KeyInput;
}

/** Colour only on a terminal, and never when NO_COLOR is set (https://no-color.org). */
export function useColor(io: CliIo): boolean {
  return io.stdout.isTTY === true && (io.env.NO_COLOR === undefined || io.env.NO_COLOR === '') && io.env.TERM !== 'dumb';
}
