/**
 * A small deterministic generator of uniform numbers in [0, 1): the same seed gives the same
 * sequence on every machine, for plans and fake hosts that must repeat exactly. mulberry32
 * (Tommy Ettinger's 32-bit generator: small, fast, well distributed for simulation).
 */
export function seededUniform(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
