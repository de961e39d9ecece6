/** A GPU process's Kubernetes container as a short "namespace/pod/container", where it is known. */
import type { LayeredProcess } from '../../layers/schema.js';

export function podLabel(process: LayeredProcess): string | null {
  // Absent in a sample that is not layered (a bare probe) and in recordings made before the field.
  const identity = process.kubernetes;
  return identity === null || identity === undefined ? null : `${identity.namespace}/${identity.pod}/${identity.container}`;
}
