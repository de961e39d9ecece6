/**
 * The one plain paragraph `gpu-layers` prints when it cannot read the GPUs: which library it
 * tried, what NVML (and the CUDA driver) said, and what to do. No stack trace.
 */
import type { GpuLayersError } from '../errors.js';

function cudaSentence(error: GpuLayersError): string {
  const cuda = error.cuda;
  if (cuda === null) return '';
  const version = cuda.driverVersion !== null
    ? ` (driver API ${Math.floor(cuda.driverVersion / 1000)}.${Math.floor((cuda.driverVersion % 1000) / 10)})`
    : '';
  if (cuda.available) return ` The CUDA driver${version} lists ${cuda.deviceCount ?? 0} device(s).`;
  return ` The CUDA driver${version} says: ${cuda.error?.message ?? 'unavailable'}.`;
}

export function nvmlUnavailableParagraph(error: GpuLayersError): string {
  const hints = error.hints.length > 0 ? ` What to do: ${error.hints.join('; ')}.` : '';
  return (
    `gpu-layers cannot read the GPUs: ${error.message} [${error.code}].` +
    cudaSentence(error) +
    hints +
    ' To see gpu-layers work without a GPU, run `gpu-layers demo`.\n'
  );
}
