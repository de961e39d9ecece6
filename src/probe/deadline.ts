/**
 * Races a native call against a deadline. The call cannot be cancelled (a thread stuck in the
 * driver stays stuck), so on timeout the caller is told at once and `onTimeout` decides what the
 * probe does about the call that is still running.
 */
import type { GpuLayersError } from '../errors.js';

export function withDeadline<T>(call: Promise<T>, ms: number, onTimeout: () => GpuLayersError): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => reject(onTimeout()), ms);
    call.then(
      (value) => {
        clearTimeout(timer);
        resolve(value);
      },
      (error: unknown) => {
        clearTimeout(timer);
        reject(error);
      },
    );
  });
}
