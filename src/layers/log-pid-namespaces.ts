/**
 * vLLM's log tags each worker's lines with its pid as the worker itself sees it: inside a
 * container, its pid in the container's PID namespace. NVML and the /proc gpu-layers reads name
 * the same process by its pid in an outer namespace; /proc/<pid>/status NSpid lists both. This
 * re-keys the log's per-pid figures to the outer pids, where the inner pid is unambiguous.
 */

/** `innermost`: per outer pid, its pid in its own (innermost) namespace, from NSpid. */
export function rekeyLogPids<T>(byPid: ReadonlyMap<number, T>, innermost: ReadonlyMap<number, number>): Map<number, T> {
  const rekeyed = new Map(byPid);
  // An inner pid two processes share (two containers each with their own "pid 7") says nothing.
  const owners = new Map<number, number[]>();
  for (const [outer, inner] of innermost) if (inner !== outer) owners.set(inner, [...(owners.get(inner) ?? []), outer]);
  for (const [inner, outers] of owners) {
    const figures = byPid.get(inner);
    if (figures === undefined || outers.length !== 1 || byPid.has(outers[0]!)) continue;
    rekeyed.set(outers[0]!, figures);
  }
  return rekeyed;
}
