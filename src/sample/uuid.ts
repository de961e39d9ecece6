/**
 * GPU UUIDs compared across sources: NVML writes "GPU-0f1e...-..." (MIG: "MIG-..."), CUDA gives 16
 * raw bytes, torch prints "0f1e...-..." without a prefix. All reduce to 32 lower-case hex digits.
 */
export function normalizeUuid(uuid: string | null | undefined): string | null {
  if (uuid === null || uuid === undefined) return null;
  const hex = uuid.trim().toLowerCase().replace(/^(gpu|mig)-/, '').replaceAll('-', '');
  return /^[0-9a-f]{32}$/.test(hex) ? hex : null;
}
