/**
 * Which item an annotator sees next, as a registry of rules. Each returns the index it chose and the
 * probability that it would choose it, which the store logs with the assignment so the collected data can
 * be re-weighted (inverse propensity) for an unbiased estimate under another rule.
 *
 * The uncertainty rules work on each pair's Bradley–Terry preference probability θ = P(candidate 0 ≻
 * candidate 1), with a uniform prior and the labels so far (a tie counts half a win each): the posterior is
 * Beta(1 + wins₀, 1 + wins₁). "ucb" takes the pair with the widest posterior (the largest standard
 * deviation: the dueling-bandit rule of querying where the comparison is least known); "thompson" draws θ
 * from every posterior and takes the pair whose draw is nearest ½ (Thompson sampling for the most
 * informative comparison), its probability estimated from further draws. "random" is uniform.
 */

/** An eligible item and its pairwise outcomes so far: [wins of candidate 0, wins of candidate 1]. */
export interface Candidate {
  itemId: number;
  outcomes: [number, number];
}

/** A rule: picks an index of `pool` (non-empty) with `rand`, and says how likely that pick was. */
export type SelectionFn = (pool: readonly Candidate[], rand: () => number) => { index: number; probability: number };

/** How many extra Thompson rounds estimate the chosen item's selection probability. */
export const THOMPSON_ROUNDS = 64;

function betaSd([a, b]: [number, number]): number {
  const al = 1 + a;
  const be = 1 + b;
  return Math.sqrt((al * be) / ((al + be) ** 2 * (al + be + 1)));
}

/** A standard normal draw (Box–Muller). */
function normal(rand: () => number): number {
  return Math.sqrt(-2 * Math.log(1 - rand())) * Math.cos(2 * Math.PI * rand());
}

/** A Gamma(shape, 1) draw (Marsaglia & Tsang 2000; shape ≥ 1 here since the prior adds 1). */
function gamma(shape: number, rand: () => number): number {
  const d = shape - 1 / 3;
  const c = 1 / Math.sqrt(9 * d);
  for (;;) {
    let x: number;
    let v: number;
    do {
      x = normal(rand);
      v = 1 + c * x;
    } while (v <= 0);
    v = v * v * v;
    const u = rand();
    if (Math.log(u) < 0.5 * x * x + d - d * v + d * Math.log(v)) return d * v;
  }
}

function thompsonPick(pool: readonly Candidate[], rand: () => number): number {
  let best = 0;
  let bestGap = Infinity;
  pool.forEach((c, i) => {
    const x = gamma(1 + c.outcomes[0], rand);
    const theta = x / (x + gamma(1 + c.outcomes[1], rand));
    const gap = Math.abs(theta - 0.5);
    if (gap < bestGap) (bestGap = gap), (best = i);
  });
  return best;
}

/** The selection rules by name (a project's `selection` setting). */
export const SELECTION_RULES = {
  random: ((pool, rand) => ({ index: Math.floor(rand() * pool.length), probability: 1 / pool.length })) as SelectionFn,
  ucb: ((pool, rand) => {
    const sds = pool.map((c) => betaSd(c.outcomes));
    const top = Math.max(...sds);
    const ties = sds.flatMap((s, i) => (s === top ? [i] : []));
    return { index: ties[Math.floor(rand() * ties.length)]!, probability: 1 / ties.length };
  }) as SelectionFn,
  thompson: ((pool, rand) => {
    const index = thompsonPick(pool, rand);
    let hits = 1; // the draw that chose it, plus the rounds that agree
    for (let r = 0; r < THOMPSON_ROUNDS; r++) if (thompsonPick(pool, rand) === index) hits++;
    return { index, probability: hits / (THOMPSON_ROUNDS + 1) };
  }) as SelectionFn,
} satisfies Record<string, SelectionFn>;

/** A selection rule's name. */
export type SelectionRule = keyof typeof SELECTION_RULES;
