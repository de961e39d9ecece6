/**
 * Deterministic randomness for the fake hosts: the same seed gives the same host, so a recording
 * made from a model or an incident is the same on every machine: the uniform generator of
 * seeded-uniform.ts, with the normal (Box-Muller) and Poisson draws the host model needs.
 */
import { seededUniform } from '../seeded-uniform.js';

export interface SeededRandom {
  /** Uniform in [0, 1). */
  next(): number;
  /** Normal with mean 0 and the given standard deviation. */
  normal(sd: number): number;
  /** Poisson with the given mean (normal approximation above 50). */
  poisson(mean: number): number;
}

export function seededRandom(seed: number): SeededRandom {
  const next = seededUniform(seed);
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
