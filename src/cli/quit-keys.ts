/**
 * `q` quits a live view (`watch`), as in top, htop and nvitop: stdin in raw mode while the view
 * runs, when it is a terminal, and put back as it was when the view ends, however it ends. In raw
 * mode the terminal sends Ctrl-C as a byte instead of a SIGINT, so that byte stops the view too.
 */

/** The part of process.stdin (a tty.ReadStream on a terminal) the keys are read from. */
export interface KeyInput {
  isTTY?: boolean;
  isRaw?: boolean;
  setRawMode?(mode: boolean): unknown;
  on(event: 'data', listener: (chunk: Buffer | string) => void): unknown;
  removeListener(event: 'data', listener: (chunk: Buffer | string) => void): unknown;
  resume(): unknown;
  pause(): unknown;
}

export type QuitReason = 'quit' | 'interrupted';

/** What a chunk of keys asks for: `q` or `Q` quits, Ctrl-C (0x03) interrupts; anything else nothing. */
export function quitKey(chunk: Buffer | string): QuitReason | null {
  const text = typeof chunk === 'string' ? chunk : chunk.toString('latin1');
  if (text.includes('\u0003')) return 'interrupted';
  if (/[qQ]/.test(text)) return 'quit';
  return null;
}

/**
 * Reads keys from `input` when it is a terminal and calls `onQuit` for `q` or Ctrl-C. Returns the
 * function that restores the terminal (idempotent; also run at process exit, should the view end
 * some other way). Not a terminal (piped, or no stdin given): nothing is touched.
 */
export function listenForQuit(input: KeyInput | undefined, onQuit: (reason: QuitReason) => void): () => void {
  if (input === undefined || input.isTTY !== true || typeof input.setRawMode !== 'function') return () => {};
  const wasRaw = input.isRaw === true;
  const listener = (chunk: Buffer | string): void => {
    const reason = quitKey(chunk);
    if (reason !== null) onQuit(reason);
  };
  let restored = false;
  const restore = (): void => {
    if (restored) return;
    restored = true;
    process.removeListener('exit', restore);
    input.removeListener('data', listener);
    input.setRawMode!(wasRaw);
    input.pause();
  };
  input.setRawMode(true);
  input.on('data', listener);
  input.resume();
  process.once('exit', restore);
  return restore;
}
