/** Byte counts for people: binary units, one decimal, "n/a" for unknown; changes with their sign. */
const UNITS = ['KiB', 'MiB', 'GiB', 'TiB', 'PiB'];

export function formatBytes(bytes: number | null): string {
  if (bytes === null) return 'n/a';
  if (bytes < 1024) return `${bytes} B`;
  let value = bytes / 1024;
  let unit = 0;
  while (value >= 1024 && unit < UNITS.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${value.toFixed(1)} ${UNITS[unit]}`;
}

/** A figure that can be negative (a gap): "1.2 GiB", "-300.0 MiB", "n/a" for unknown. */
export function formatSignedBytes(bytes: number | null): string {
  if (bytes === null) return 'n/a';
  return bytes < 0 ? `-${formatBytes(-bytes)}` : formatBytes(bytes);
}

/** A change or a difference: "+1.2 GiB", "-300.0 MiB" ("+0 B" for none). */
export function formatChange(bytes: number): string {
  const rounded = Math.round(bytes);
  return rounded < 0 ? `-${formatBytes(-rounded)}` : `+${formatBytes(rounded)}`;
}
