/**
 * The summary statistics every layer reports with, defined once: the mean, the standard error of a mean
 * (sample standard deviation with n − 1, over √n) and Pearson's correlation. Pure arithmetic on arrays;
 * NaN for the mean of nothing, as 0/0 is.
 */

/** Σx / n, summed left to right (NaN when empty). */
export function mean(xs: readonly number[]): number {
  let s = 0;
  for (const x of xs) s += x;
  return s / xs.length;
}

/** The standard error of the mean: sqrt(Σ(x − x̄)² / max(1, n − 1) / n). */
export function standardError(xs: readonly number[]): number {
  const m = mean(xs);
  return Math.sqrt(xs.reduce((a, x) => a + (x - m) ** 2, 0) / Math.max(1, xs.length - 1) / xs.length);
}

/** The mean and its standard error. */
export function meanSe(xs: readonly number[]): { mean: number; se: number } {
  return { mean: mean(xs), se: standardError(xs) };
}

/**
 * Pearson's r = Σ(x − x̄)(y − ȳ) / sqrt(Σ(x − x̄)² · Σ(y − ȳ)²); null when it is undefined (fewer than
 * two points, or a constant variable).
 */
export function pearson(x: readonly number[], y: readonly number[]): number | null {
  if (x.length !== y.length) throw new Error(`pearson: ${x.length} x values but ${y.length} y values`);
  if (x.length < 2) return null;
  const mx = mean(x);
  const my = mean(y);
  let sxy = 0;
  let sxx = 0;
  let syy = 0;
  for (let i = 0; i < x.length; i++) {
    const dx = x[i]! - mx;
    const dy = y[i]! - my;
    sxy += dx * dy;
    sxx += dx * dx;
    syy += dy * dy;
  }
  return sxx > 0 && syy > 0 ? sxy / Math.sqrt(sxx * syy) : null;
}
