/** ANSI styling that disappears when colour is off, so the plain text stays the same. */
export interface Style {
  bold(text: string): string;
  dim(text: string): string;
  used(text: string): string;
  reserved(text: string): string;
  warn(text: string): string;
}

const wrap = (open: number, close: number) => (text: string) => `\u001b[${open}m${text}\u001b[${close}m`;

export function makeStyle(color: boolean): Style {
  if (!color) {
    const plain = (text: string): string => text;
    return { bold: plain, dim: plain, used: plain, reserved: plain, warn: plain };
  }
  return { bold: wrap(1, 22), dim: wrap(2, 22), used: wrap(36, 39), reserved: wrap(33, 39), warn: wrap(31, 39) };
}
