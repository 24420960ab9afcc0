/**
 * Tensor lifetime: what `scope` frees and keeps, `keep`, `dispose`, `using`, errors on disposed tensors,
 * the FinalizationRegistry backstop, and the leak test (sharp's habit): a training loop whose live
 * tensor count and native bytes must stay exactly flat, plus a deliberately leaky variant proving the
 * detector catches a single tensor kept per step.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { afterEach, beforeEach, describe, test } from 'node:test';
import {
  AdamW, cat, crossEntropy, dispose, Generator, keep, linear, memory, randint, randn, scope, type Tensor, tensor, zeros,
} from '../../src/tensor/index.js';

const live = () => memory().liveTensors;
const bytes = () => memory().nativeBytes;

let before = 0;
beforeEach(() => {
  before = live();
});
afterEach(() => {
  assert.equal(live(), before, 'the test leaked native tensors');
});

function assertDisposedError(fn: () => unknown): void {
  assert.throws(fn, (e: unknown) => e instanceof Error && /after dispose/.test(e.message));
}

describe('scope', () => {
  test('frees every tensor created inside except a returned tensor', () => {
    const b0 = bytes();
    let inner: Tensor[] = [];
    const r = scope(() => {
      const a = zeros([1000]);
      const b = a.add(1);
      inner = [a, b];
      return b.mul(2);
    });
    assert.ok(inner.every((t) => t.isDisposed));
    assert.equal(live(), before + 1);
    assert.deepEqual(r.toArray(), new Array(1000).fill(2));
    r.dispose();
    assert.equal(bytes(), b0, 'native bytes return to where they were');
  });

  test('keeps the tensors of a returned array or (nested) plain object, and only those', () => {
    const arr = scope(() => {
      zeros([3]);
      return [zeros([1]), tensor([1])];
    });
    assert.equal(live(), before + 2);
    const obj = scope(() => {
      zeros([3]);
      return { loss: zeros([]), parts: { a: zeros([2]), list: [zeros([3])] }, step: 7 };
    });
    assert.equal(live(), before + 5);
    assert.equal(obj.step, 7);
    assert.deepEqual(obj.parts.list[0]!.shape, [3]);
    dispose([arr, obj]);
    assert.ok(arr.every((t) => t.isDisposed) && obj.loss.isDisposed && obj.parts.a.isDisposed);
  });

  test('returning a tensor created outside leaves it to its owner', () => {
    scope(() => {
      const outer = zeros([2]);
      const r = scope(() => {
        zeros([2]);
        return outer;
      });
      assert.equal(r, outer);
      assert.equal(outer.isDisposed, false);
      assert.equal(live(), before + 1);
    });
    assert.equal(live(), before);
  });

  test('nested scopes: the inner result moves to the outer scope, which frees it unless it returns it too', () => {
    let moved: Tensor | undefined;
    const kept = scope(() => {
      moved = scope(() => {
        zeros([4]);
        return zeros([5]);
      });
      assert.equal(live(), before + 1);
      const k = scope(() => moved!.add(1));
      assert.equal(live(), before + 2);
      return k;
    });
    assert.ok(moved!.isDisposed, 'the outer scope freed the inner result it did not return');
    assert.equal(kept.isDisposed, false);
    kept.dispose();
  });

  test('an exception frees the scope’s tensors (nested ones too) and rethrows the same error', () => {
    const boom = new Error('boom');
    let made: Tensor[] = [];
    assert.throws(
      () =>
        scope(() => {
          made.push(zeros([8]));
          scope(() => {
            made.push(zeros([8]));
            throw boom;
          });
        }),
      (e) => e === boom,
    );
    assert.ok(made.every((t) => t.isDisposed));
    // A native error mid-scope behaves the same.
    made = [];
    assert.throws(() =>
      scope(() => {
        made.push(zeros([2, 3]));
        return made[0]!.matmul(zeros([2, 3]));
      }),
    /matmul/);
    assert.ok(made[0]!.isDisposed);
  });

  test('a promise-returning fn is an error, and what it created synchronously is freed', async () => {
    let t: Tensor | undefined;
    assert.throws(
      () =>
        scope(async () => {
          t = zeros([3]);
          return t;
        }),
      /synchronous/,
    );
    assert.ok(t!.isDisposed);
    assert.throws(() => scope(() => Promise.resolve(1)), /synchronous/);
  });

  test('a tensor disposed inside a scope is not freed twice', () => {
    scope(() => {
      const a = zeros([2]);
      a.dispose();
      zeros([2]);
    });
    assert.equal(live(), before);
  });
});

describe('keep and dispose', () => {
  test('keep() exempts a tensor from every enclosing scope until disposed', () => {
    let k: Tensor | undefined;
    scope(() => {
      scope(() => {
        k = keep(zeros([3]).add(1));
        zeros([3]);
      });
    });
    assert.equal(live(), before + 1);
    assert.deepEqual(k!.toArray(), [1, 1, 1]);
    k!.dispose();
  });

  test('dispose is idempotent, on tensors and on nested structures', () => {
    const a = zeros([2]);
    a.dispose();
    a.dispose();
    assert.equal(a.isDisposed, true);
    assert.equal(a.toString(), 'Tensor(disposed)');
    const group = { x: zeros([1]), ys: [zeros([1]), zeros([1])] };
    dispose(group);
    dispose(group);
    assert.equal(live(), before);
  });

  test('`using` disposes at the end of the block (tensors, generators, optimizers)', () => {
    let t: Tensor | undefined;
    let g: Generator | undefined;
    {
      using u = zeros([2]).requiresGrad_();
      using gen = new Generator(1);
      using opt = new AdamW([u], { lr: 0.1 });
      t = u;
      g = gen;
      assert.equal(u.isDisposed, false);
      opt.step();
    }
    assert.equal(t.isDisposed, true);
    assertDisposedError(() => t!.sum());
    assert.throws(() => randn([2], { generator: g }), /generator used after dispose/);
  });

  test('using a disposed tensor is a clear Error, never a native crash', () => {
    const a = zeros([2, 2]);
    const b = zeros([2, 2]);
    a.dispose();
    assertDisposedError(() => a.add(1));
    assertDisposedError(() => b.add(a));
    assertDisposedError(() => b.matmul(a));
    assertDisposedError(() => cat([b, a]));
    assertDisposedError(() => a.shape);
    assertDisposedError(() => a.item());
    assertDisposedError(() => a.toArray());
    assertDisposedError(() => a.fill_(0));
    b.dispose();
  });
});

test('FinalizationRegistry backstop: escaped tensors are freed once collected', () => {
  // A child process with --expose-gc, so the collection is under our control whatever flags the test
  // runner was given. Tensors made outside any scope are registered; dropping them must free them.
  const index = new URL('../../src/tensor/index.js', import.meta.url).href;
  const child = `
    const { zeros, memory } = await import(${JSON.stringify(index)});
    const held = zeros([3]).add(2);
    const start = memory();
    (() => { for (let i = 0; i < 200; i++) zeros([1024]); })();
    const created = memory();
    let end = created;
    for (let i = 0; i < 100 && end.liveTensors > start.liveTensors; i++) {
      gc();
      await new Promise((r) => setTimeout(r, 5));
      end = memory();
    }
    console.log(JSON.stringify({ start, created, end, held: held.toArray() }));`;
  const r = spawnSync(process.execPath, ['--expose-gc', '--input-type=module', '-e', child], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  const out = JSON.parse(r.stdout) as { start: Mem; created: Mem; end: Mem; held: number[] };
  assert.equal(out.created.liveTensors - out.start.liveTensors, 200);
  assert.equal(out.end.liveTensors, out.start.liveTensors, 'every dropped tensor was freed');
  assert.equal(out.end.nativeBytes, out.start.nativeBytes);
  assert.deepEqual(out.held, [2, 2, 2], 'a referenced tensor survives collection');
});

type Mem = ReturnType<typeof memory>;

// ---- the leak test -----------------------------------------------------------------------------------
interface Sample {
  live: number;
  bytes: number;
}

/**
 * Trains a 8-16-4 tanh MLP with AdamW on a fixed batch, one scope per step, sampling the live tensors
 * and native bytes after each step. `leakOnePerStep` makes the classic mistake: keeping the loss tensor
 * (not its number) in a history array.
 */
function train(steps: number, leakOnePerStep = false): { samples: Sample[]; losses: number[]; rss: number[] } {
  const g = new Generator(7);
  const init = (shape: number[], scale: number) => scope(() => randn(shape, { generator: g }).mul(scale)).requiresGrad_();
  const params = [init([16, 8], 0.35), init([16], 0), init([4, 16], 0.25), init([4], 0)];
  const [w1, b1, w2, b2] = params as [Tensor, Tensor, Tensor, Tensor];
  const x = randn([32, 8], { generator: g });
  const y = randint(0, 4, [32], { generator: g });
  const opt = new AdamW(params, { lr: 0.01 });
  const history: Tensor[] = [];
  const out = { samples: [] as Sample[], losses: [] as number[], rss: [] as number[] };
  try {
    for (let s = 0; s < steps; s++) {
      const loss = scope(() => {
        const logits = linear(linear(x, w1, b1).tanh(), w2, b2); // (32, 4)
        const l = crossEntropy(logits, y);
        l.backward();
        opt.step();
        opt.zeroGrad();
        if (leakOnePerStep) history.push(keep(l));
        return l.item();
      });
      out.losses.push(loss);
      out.samples.push({ live: live(), bytes: bytes() });
      out.rss.push(process.memoryUsage().rss);
    }
  } finally {
    opt.dispose();
    g.dispose();
    dispose([params, x, y, history]);
  }
  return out;
}

/** What a leak-free loop guarantees after its warm-up: the same live tensors and no more native bytes. */
function leaks(samples: readonly Sample[], warmup: number, slackBytes = 64 * 1024): string[] {
  const base = samples[warmup - 1]!;
  const found: string[] = [];
  const moved = samples.findIndex((s, i) => i >= warmup && s.live !== base.live);
  if (moved >= 0) found.push(`liveTensors ${base.live} after warm-up, ${samples[moved]!.live} at step ${moved}, ${samples.at(-1)!.live} at the end`);
  const maxBytes = Math.max(...samples.slice(warmup).map((s) => s.bytes));
  if (maxBytes > base.bytes + slackBytes) found.push(`nativeBytes grew from ${base.bytes} to ${maxBytes}`);
  return found;
}

describe('leak test', () => {
  const WARMUP = 50;

  test('1000 training steps: live tensors exactly flat, native bytes and RSS bounded', () => {
    const { samples, losses, rss } = train(1000);
    assert.deepEqual(leaks(samples, WARMUP), []);
    assert.equal(samples.at(-1)!.bytes, samples[WARMUP - 1]!.bytes, 'native bytes end exactly where the warm-up left them');
    const rssGrowth = rss.at(-1)! - rss[WARMUP - 1]!;
    assert.ok(rssGrowth < 50 * 2 ** 20, `RSS grew ${(rssGrowth / 2 ** 20).toFixed(1)} MB`);
    assert.ok(losses.at(-1)! < 0.5 * losses[0]!, `the model trained: loss ${losses[0]} → ${losses.at(-1)}`);
  });

  test('the detector catches one tensor kept per step', () => {
    const steps = 150;
    const { samples } = train(steps, true);
    const found = leaks(samples, WARMUP);
    assert.ok(found.some((f) => f.startsWith('liveTensors')), `the leak went unnoticed: ${found.join('; ')}`);
    assert.equal(samples.at(-1)!.live - samples[WARMUP - 1]!.live, steps - WARMUP, 'exactly one tensor per step');
  });
});
