/**
 * Gao et al. 2022 ("Scaling laws for reward model over-optimization", §3) functional forms of the gold
 * reward R against d = √KL(π ‖ π_ref), the distance the optimisation has moved the policy:
 *
 *     best-of-n:  R_bon(d) = d (α − β d)
 *     RL:         R_RL(d)  = d (α − β log d)
 *
 * (R measured relative to the initial policy, so R(0) = 0.) Both are linear in (α, β) — R = α·x₁ − β·x₂ with
 * x₁ = d and x₂ = d² or d·log d — so the least-squares fit without intercept is closed form: the 2 × 2
 * normal equations. And best-of-n's KL from the base policy has a closed form too (Stiennon et al. 2020,
 * appendix G.3; used by Gao et al.): KL_bon = log n − (n − 1)/n.
 */

export type FitForm = 'bon' | 'rl';

/** A fitted curve: R(d) = d(α − β·d) ('bon') or d(α − β·log d) ('rl'). */
export interface Fit {
  form: FitForm;
  alpha: number;
  beta: number;
  /** coefficient of determination, 1 − SS_res / SS_tot (SS_tot about the mean of R); NaN if R is constant */
  r2: number;
  /** number of points fitted */
  n: number;
}

/** The second regressor of each form: R = α·d − β·x₂(d). */
const SECOND: Readonly<Record<FitForm, (d: number) => number>> = {
  bon: (d) => d * d,
  rl: (d) => d * Math.log(d),
};

/** The form's value at d (for d = 0 the RL form's limit, 0). */
export function fitValue(f: Pick<Fit, 'form' | 'alpha' | 'beta'>, d: number): number {
  if (d === 0) return 0;
  return f.alpha * d - f.beta * SECOND[f.form](d);
}

/**
 * The d at which the fitted curve peaks, where dR/dd = 0: α/(2β) for best-of-n, exp(α/β − 1) for RL; null
 * when it has no interior maximum (β ≤ 0: still rising).
 */
export function fitPeak(f: Pick<Fit, 'form' | 'alpha' | 'beta'>): { d: number; value: number } | null {
  if (!(f.beta > 0)) return null;
  const d = f.form === 'bon' ? f.alpha / (2 * f.beta) : Math.exp(f.alpha / f.beta - 1);
  return d > 0 && Number.isFinite(d) ? { d, value: fitValue(f, d) } : null;
}

/**
 * Least-squares (α, β) of `form` through the points (d[i], r[i]). Errors on fewer than 2 points,
 * non-finite values, negative d (d = √KL), d ≤ 0 for the RL form (log d), or points that cannot separate
 * the two terms (all d equal, which makes the normal equations singular).
 */
export function fitOveroptimisation(form: FitForm, d: readonly number[], r: readonly number[]): Fit {
  const n = d.length;
  if (r.length !== n) throw new Error(`fit ${form}: ${n} d values but ${r.length} rewards`);
  if (n < 2) throw new Error(`fit ${form}: needs at least 2 points to fit α and β, got ${n}`);
  for (let i = 0; i < n; i++) {
    if (!Number.isFinite(d[i]!) || !Number.isFinite(r[i]!)) throw new Error(`fit ${form}: point ${i} is not finite (d = ${d[i]}, R = ${r[i]})`);
    if (form === 'rl' && d[i]! <= 0) throw new Error(`fit rl: d must be > 0 for the log form (d = √KL), point ${i} has d = ${d[i]}`);
    if (d[i]! < 0) throw new Error(`fit ${form}: d = √KL must be ≥ 0, point ${i} has d = ${d[i]}`);
  }
  // normal equations of R ≈ a·x1 + b·x2 with x1 = d, x2 = −second(d): [s11 s12; s12 s22] [a; b] = [t1; t2]
  let s11 = 0, s12 = 0, s22 = 0, t1 = 0, t2 = 0;
  for (let i = 0; i < n; i++) {
    const x1 = d[i]!;
    const x2 = -SECOND[form](x1);
    s11 += x1 * x1;
    s12 += x1 * x2;
    s22 += x2 * x2;
    t1 += x1 * r[i]!;
    t2 += x2 * r[i]!;
  }
  const det = s11 * s22 - s12 * s12;
  // Cauchy–Schwarz: det ≥ 0, = 0 exactly when x1 and x2 are proportional (all nonzero d equal)
  if (!(det > 1e-10 * s11 * s22)) {
    throw new Error(`fit ${form}: the points cannot separate α from β (all d equal or zero: ${[...new Set(d)].slice(0, 3).join(', ')})`);
  }
  const alpha = (t1 * s22 - t2 * s12) / det;
  const beta = (s11 * t2 - s12 * t1) / det;
  let mean = 0;
  for (const v of r) mean += v / n;
  let ssRes = 0, ssTot = 0;
  for (let i = 0; i < n; i++) {
    ssRes += (r[i]! - fitValue({ form, alpha, beta }, d[i]!)) ** 2;
    ssTot += (r[i]! - mean) ** 2;
  }
  return { form, alpha, beta, r2: ssTot > 0 ? 1 - ssRes / ssTot : NaN, n };
}

/** KL(best-of-n ‖ base) in nats for n ≥ 1 samples: log n − (n − 1)/n (0 at n = 1). */
export function klBestOfN(n: number): number {
  if (!Number.isInteger(n) || n < 1) throw new Error(`best-of-n needs an integer n ≥ 1, got ${n}`);
  return Math.log(n) - (n - 1) / n;
}
