/**
 * Shared helpers for the native-tier tests: approximate equality on nested arrays and tensors, error
 * assertions, scoped test bodies, leak counting, and a finite-difference gradient checker.
 */
import assert from 'node:assert/strict';
import { Generator, memory, type NestedArray, noGrad, randn, scope, Tensor, tensor } from '../../src/tensor/index.js';

export type Nested = NestedArray<number | boolean>;

export interface Tolerance {
  /** absolute tolerance (default 1e-6) */
  atol?: number;
  /** relative tolerance, against |expected| (default 1e-6) */
  rtol?: number;
}

/** Tolerances by dtype: float32 keeps ~7 digits, bfloat16 ~2–3 (8-bit mantissa). */
export const TOL = {
  float64: { atol: 1e-12, rtol: 1e-12 },
  float32: { atol: 1e-6, rtol: 1e-5 },
  bfloat16: { atol: 1e-2, rtol: 1e-2 },
} as const;

function shapeOf(v: Nested): number[] {
  const s: number[] = [];
  let x: Nested = v;
  while (Array.isArray(x)) {
    s.push(x.length);
    x = x[0] as Nested;
  }
  return s;
}

/**
 * Asserts `actual` ≈ `expected` elementwise (|a − e| ≤ atol + rtol·|e|) with equal shapes. A tensor is
 * read back with toArray(). NaN matches NaN, ±Infinity match exactly, booleans compare exactly.
 */
export function assertClose(actual: Tensor | Nested, expected: Nested, tol: Tolerance = {}, msg = ''): void {
  const a = actual instanceof Tensor ? actual.toArray() : actual;
  const { atol = 1e-6, rtol = 1e-6 } = tol;
  const where = msg ? `${msg}: ` : '';
  assert.deepEqual(shapeOf(a), shapeOf(expected), `${where}shape [${shapeOf(a)}] != [${shapeOf(expected)}]`);
  const walk = (x: Nested, y: Nested, path: string): void => {
    if (Array.isArray(x) && Array.isArray(y)) {
      for (let i = 0; i < y.length; i++) walk(x[i] as Nested, y[i] as Nested, `${path}[${i}]`);
      return;
    }
    if (typeof y === 'boolean' || typeof x === 'boolean') {
      assert.equal(x, y, `${where}at ${path || '()'}: got ${String(x)}, want ${String(y)}`);
      return;
    }
    const [u, v] = [x as number, y as number];
    const ok = Number.isNaN(v) ? Number.isNaN(u) : !Number.isFinite(v) ? u === v : Math.abs(u - v) <= atol + rtol * Math.abs(v);
    // Build the message only on failure: stringifying both arrays per element would be quadratic.
    if (!ok) assert.fail(`${where}at ${path || '()'}: got ${u}, want ${v} (atol ${atol}, rtol ${rtol})\n  actual:   ${JSON.stringify(a)}\n  expected: ${JSON.stringify(expected)}`);
  };
  walk(a, expected, '');
}

/**
 * Asserts `fn` throws an Error whose message matches `re` (assert.throws matches a RegExp against
 * String(error), "Error: …", so `^` anchors would not work there).
 */
export function assertThrowsMessage(fn: () => unknown, re: RegExp): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof Error, `expected an Error, got ${String(e)}`);
    assert.match(e.message, re);
    return true;
  });
}

/** Asserts a tensor's dtype, shape and exact values. */
export function assertTensor(t: Tensor, dtype: string, shape: readonly number[], values?: Nested): void {
  assert.equal(t.dtype, dtype, `dtype of ${t.toString()}`);
  assert.deepEqual(t.shape, [...shape], `shape of ${t.toString()}`);
  if (values !== undefined) assert.deepEqual(t.toArray(), values);
}

/** The tensor's elements, flattened, as numbers. */
export function flat(t: Tensor): number[] {
  return Array.from(t.data() as ArrayLike<number | bigint>, Number);
}

/** A test body run inside `scope`, so every tensor it creates is freed when it ends (or throws). */
export function scoped(fn: () => void): () => void {
  return () => {
    scope(fn);
  };
}

/** Live native tensors now (leak checks compare it before and after each test). */
export function liveTensors(): number {
  return memory().liveTensors;
}

// ---- gradient checking ----------------------------------------------------------------------------------
export interface GradcheckOptions {
  /** central-difference step (default 1e-6) */
  eps?: number;
  /** pass when |autograd − numeric| ≤ atol + rtol·|numeric| (defaults 1e-6, 1e-6) */
  atol?: number;
  rtol?: number;
  /** allow every gradient to be zero (floor, sign, …); otherwise an all-zero gradient fails the check */
  zeroGrad?: boolean;
}

function asList(y: Tensor | Tensor[]): Tensor[] {
  return Array.isArray(y) ? y : [y];
}

/**
 * Checks autograd's gradient of L = Σᵢ sum(wᵢ ⊙ fn(inputs)ᵢ), with fixed random weights wᵢ (so every
 * output element gets a distinct cotangent), against central differences
 * (L(x + eps·eₖ) − L(x − eps·eₖ)) / 2·eps for every element k of every input. Inputs are float64 and
 * are not modified; `fn` may return one tensor or several (split, chunk).
 */
export function gradcheck(fn: (...xs: Tensor[]) => Tensor | Tensor[], inputs: readonly Tensor[], opts: GradcheckOptions = {}): void {
  const { eps = 1e-6, atol = 1e-6, rtol = 1e-6 } = opts;
  scope(() => {
    for (const x of inputs) assert.equal(x.dtype, 'float64', 'gradcheck needs float64 inputs');
    const g = new Generator(20240601);
    try {
      // Analytic: backward through L from leaf copies of the inputs.
      const leaves = inputs.map((x) => x.detach().clone().requiresGrad_());
      const outs = asList(fn(...leaves));
      for (const o of outs) assert.equal(o.dtype, 'float64', `output ${o.toString()} is not float64`);
      const weights = outs.map((o) => randn(o.shape, { dtype: 'float64', generator: g }));
      const loss = (os: Tensor[]) => os.map((o, i) => o.mul(weights[i]!).sum()).reduce((a, b) => a.add(b));
      loss(outs).backward();
      const analytic = leaves.map((l) => {
        const gr = l.grad;
        return gr === null ? new Array<number>(l.numel).fill(0) : flat(gr);
      });
      // Numeric: perturb one element at a time, outside autograd.
      let nonzero = false;
      inputs.forEach((x, j) => {
        const base = x.data() as Float64Array;
        const at = (k: number, delta: number) =>
          scope(() =>
            noGrad(() => {
              const moved = base.slice();
              moved[k]! += delta;
              const xs = inputs.map((y, i) => (i === j ? tensor(moved, { shape: x.shape }) : y));
              return loss(asList(fn(...xs))).item();
            }),
          );
        for (let k = 0; k < base.length; k++) {
          const numeric = (at(k, eps) - at(k, -eps)) / (2 * eps);
          const got = analytic[j]![k]!;
          if (got !== 0 || numeric !== 0) nonzero = true;
          if (!(Math.abs(got - numeric) <= atol + rtol * Math.abs(numeric))) {
            assert.fail(`input ${j} (${x.toString()}) element ${k}: autograd ${got}, finite differences ${numeric}\n  autograd: [${analytic[j]!.join(', ')}]`);
          }
        }
      });
      if (!opts.zeroGrad) assert.ok(nonzero, 'every gradient is zero: the check would prove nothing');
    } finally {
      g.dispose();
    }
  });
}
