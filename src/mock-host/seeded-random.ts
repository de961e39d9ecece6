/**
 * Deterministic randomness for the fake hosts: the same seed gives the same host, so a recording
 * made from a model or an incident is the same on every machine. mulberry32 (Tommy Ettinger's
 * 32-bit generator: small, fast, well distributed for simulation), with the normal (Box-Muller)
 * and Poisson draws the host model needs.
 */
export interface SeededRandom {
  /** Uniform in [0, 1). */
  next(): number;
  /** Normal with mean 0 and the given standard deviation. */
  normal(sd: number): number;
  /** Poisson with the given mean (normal approximation above 50). */
  poisson(mean: number): number;
}

export function seededRandom(seed: number): SeededRandom {
  let a = seed >>> 0;
  const next = (): number => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const normal = (sd: number): number => {
    const u = Math.max(next(), 1e-12);
    return sd * Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * next());
  };
  const poisson = (mean: number): number => {
    if (mean <= 0) return 0;
    if (mean > 50) return Math.max(0, Math.round(mean + normal(Math.sqrt(mean))));
    // Knuth: multiply uniforms until the product falls below e^-mean.
    const limit = Math.exp(-mean);
    let k = 0;
    for (let p = next(); p > limit; p *= next()) k++;
    return k;
  };
  return { next, normal, poisson };
}
