/**
 * The embedded stories260K (assets/stories260k, Karpathy's llama2.c model converted to HF layout) through
 * generation and scoring: the invariants the RL layers rely on, each checked on the real model.
 * - KV-cache decoding == full recomputation;
 * - a left-padded batch == each prompt alone (greedy and seeded sampling);
 * - scoring a completion reproduces generation's log-probs;
 * - stories end at BOS (llama2.c's stop rule), and the end token is dropped or kept as asked;
 * - top-k = 1 is greedy, top-p never leaves the nucleus;
 * - no native tensor outlives a generate call, even one that fails.
 * Float comparisons use bounds derived in test/tolerance.ts.
 * Tags: @numeric
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, afterEach, before, beforeEach, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';

import { type Completion, generate, type GenerateOptions, leftPad, positionsFromMask } from '../../src/generate/generate.js';
import { chooseTokens, sampleRows, topKFilter, topPFilter, validateSampling } from '../../src/generate/sampling.js';
import { scoreCompletions } from '../../src/generate/score.js';
import type { CausalLM } from '../../src/models/common.js';
import { loadModel, resolveModelDir } from '../../src/models/hub.js';
import { memory, noGrad, scope, type Tensor, tensor } from '../../src/tensor/index.js';
import { loadTokenizer, type Tokenizer } from '../../src/text/index.js';
import { completionBound, logitBound, STORIES260K } from '../tolerance.js';
import { reportBound } from '../env.js';

const GOLDEN = fileURLToPath(new URL('../../../test/fixtures/stories260k/expected-greedy-200.txt', import.meta.url));

let model: CausalLM;
let tok: Tokenizer;

/** Prompts of different lengths (1 to ~12 tokens), so a batch of them is left-padded. */
const TEXTS = ['', 'Once upon a time', 'The little dog ran to the park and saw a big', 'Lily'];
let prompts: number[][];

before(() => {
  model = loadModel('stories260k');
  tok = loadTokenizer(resolveModelDir('stories260k'), { eosIds: model.config.eosTokenIds });
  prompts = TEXTS.map((t) => tok.encode(t, { addBos: true }));
  // The batch really is mixed-length, and every prompt starts with BOS.
  assert.ok(new Set(prompts.map((p) => p.length)).size >= 3, JSON.stringify(prompts));
  for (const p of prompts) assert.equal(p[0], 1);
});
after(() => model.dispose());

let live = 0;
beforeEach(() => {
  live = memory().liveTensors;
});
afterEach(() => {
  assert.equal(memory().liveTensors, live, 'the test leaked native tensors');
});

const ids = (rows: number[][]): Tensor => tensor(rows, { dtype: 'int64' });
const maxAbsDiff = (a: Tensor, b: Tensor): number => {
  assert.deepEqual(a.shape, b.shape);
  return scope(() => a.sub(b).abs().max().item());
};

function gen(ps: readonly (readonly number[])[], o: GenerateOptions): Completion[] {
  return generate(model, ps, o);
}


/** Asserts |a − b| ≤ tol elementwise for two equal-length lists, naming the first bad index. */
function assertAllClose(a: readonly number[], b: readonly number[], tol: number, what: string, report?: string): void {
  assert.equal(a.length, b.length, `${what}: lengths ${a.length} vs ${b.length}`);
  if (report) reportBound(report, Math.max(0, ...a.map((x, i) => Math.abs(x - b[i]!))), tol, 1e-4);
  a.forEach((x, i) => assert.ok(Math.abs(x - b[i]!) <= tol, `${what}[${i}]: ${x} vs ${b[i]} (tolerance ${tol})`));
}

describe('KV cache', () => {
  test('prefill + incremental decoding equals one full forward (|Δlogit| within the float32 bound)', () => {
    // The golden story: BOS + 200 tokens, a realistic sequence spanning 200 positions.
    const seq = tok.encode(readFileSync(GOLDEN, 'utf8'), { addBos: true });
    assert.ok(seq.length > 150, `${seq.length} tokens`);
    scope(() => noGrad(() => {
      const full = model.forward(ids([seq])); // (1, T, V)
      const cache = model.newCache(1, seq.length);
      try {
        // Prefill 40, then 60 single steps, then chunks of 7 (a multi-token step over a non-empty cache).
        const chunks = [40, ...new Array<number>(60).fill(1)];
        for (let at = 100; at < seq.length; at += 7) chunks.push(Math.min(7, seq.length - at));
        let at = 0;
        let worst = 0;
        for (const n of chunks) {
          const part = model.forward(ids([seq.slice(at, at + n)]), { cache }); // (1, n, V)
          assert.equal(cache.length, at + n);
          worst = Math.max(worst, maxAbsDiff(part, full.narrow(1, at, n)));
          at += n;
        }
        // Bound: the cached and the full pass sum in other orders over ≤ T keys (test/tolerance.ts).
        const bound = logitBound(STORIES260K, seq.length, full.abs().max().item());
        reportBound('stories260K KV cache vs recompute (logits)', worst, bound, 1e-4);
        assert.ok(worst <= bound, `max |Δlogit| ${worst} > ${bound}`);
        // The check can fail: logits at a shifted position are far away.
        assert.ok(maxAbsDiff(full.narrow(1, 1, 20), full.narrow(1, 2, 20)) > 1);
      } finally {
        cache.dispose();
      }
    }));
  });

  test('a left-padded batch forward equals each row alone (real positions, |Δlogit| within the float32 bound)', () => {
    scope(() => noGrad(() => {
      const width = Math.max(...prompts.map((p) => p.length));
      const { ids: batch, mask } = leftPad(prompts, width);
      const logits = model.forward(batch, { attentionMask: mask, positionIds: positionsFromMask(mask) }); // (B, W, V)
      prompts.forEach((p, i) => {
        const alone = model.forward(ids([p])); // (1, |p|, V)
        const d = maxAbsDiff(logits.narrow(0, i, 1).narrow(1, width - p.length, p.length), alone);
        // Bound: padding changes the attention sums' lengths and the GEMMs' blocking (test/tolerance.ts).
        const bound = logitBound(STORIES260K, width, alone.abs().max().item());
        reportBound('stories260K left-padded batch vs alone (logits)', d, bound, 1e-4);
        assert.ok(d <= bound, `row ${i}: max |Δlogit| ${d} > ${bound}`);
      });
    }));
  });
});

describe('batched generation', () => {
  test('greedy completions of a mixed-length batch equal each prompt alone', () => {
    const o: GenerateOptions = { maxNewTokens: 48, temperature: 0 };
    const batch = gen(prompts, o);
    const bound = completionBound(model, STORIES260K, prompts, batch.map((c) => c.tokens));
    prompts.forEach((p, i) => {
      const [alone] = gen([p], o);
      assert.deepEqual(batch[i]!.tokens, alone!.tokens, `prompt ${i} (${JSON.stringify(TEXTS[i])})`);
      assert.equal(batch[i]!.finishReason, alone!.finishReason);
      assertAllClose(batch[i]!.logprobs, alone!.logprobs, bound, `prompt ${i} logprobs`, 'stories260K greedy log-probs: batch vs alone');
    });
    // Greedy from BOS is the golden story's beginning (llama2.c run.c, temperature 0).
    assert.ok(readFileSync(GOLDEN, 'utf8').startsWith(tok.decode([1, ...batch[0]!.tokens])));
  });

  for (const [name, extra] of [
    ['temperature 1', {}],
    ['top-k 20', { topK: 20 }],
    ['top-p 0.8', { topP: 0.8 }],
    ['temperature 0.7, top-k 40, top-p 0.9', { temperature: 0.7, topK: 40, topP: 0.9 }],
  ] as const) {
    test(`seeded sampling (${name}): a sequence is the same alone (streams [i]) as at index i of a batch`, () => {
      const o: GenerateOptions = { maxNewTokens: 48, temperature: 1, seed: 1234, ...extra };
      const batch = gen(prompts, o);
      const bound = completionBound(model, STORIES260K, prompts, batch.map((c) => c.tokens));
      prompts.forEach((p, i) => {
        const [alone] = gen([p], { ...o, streams: [i] });
        assert.deepEqual(alone!.tokens, batch[i]!.tokens, `prompt ${i}`);
        assertAllClose(alone!.logprobs, batch[i]!.logprobs, bound, `prompt ${i} logprobs`, 'stories260K sampled log-probs: batch vs alone');
      });
      // Same seed twice: identical, log-probs included. A different seed: different samples.
      assert.deepEqual(gen(prompts, o), batch);
      const other = gen(prompts, { ...o, seed: 4321 });
      assert.notDeepEqual(other.map((c) => c.tokens), batch.map((c) => c.tokens));
      // Alone without streams [i] is stream 0: for i > 0 that is a different sample.
      const [wrongStream] = gen([prompts[1]!], o);
      assert.notDeepEqual(wrongStream!.tokens, batch[1]!.tokens);
    });
  }

  test('top-k 1 and a tiny top-p equal greedy', () => {
    const greedy = gen(prompts, { maxNewTokens: 32, temperature: 0 });
    assert.deepEqual(gen(prompts, { maxNewTokens: 32, temperature: 1, topK: 1, seed: 9 }), greedy);
    assert.deepEqual(gen(prompts, { maxNewTokens: 32, temperature: 1.5, topP: 1e-6, seed: 9 }), greedy);
  });

  test('scoring sampled completions reproduces generation log-probs (within the float32 bound, mixed-length batch)', () => {
    const cs = gen(prompts, { maxNewTokens: 40, temperature: 1, seed: 77, includeEos: true });
    const bound = completionBound(model, STORIES260K, prompts, cs.map((c) => c.tokens));
    scope(() => noGrad(() => {
      const { logprobs, mask } = scoreCompletions(model, prompts, cs.map((c) => c.tokens));
      const a = Math.max(...cs.map((c) => c.tokens.length));
      assert.deepEqual(logprobs.shape, [prompts.length, a]);
      const lp = logprobs.toArray() as number[][];
      const m = mask.toArray() as number[][];
      cs.forEach((c, i) => {
        assertAllClose(lp[i]!.slice(0, c.tokens.length), c.logprobs, bound, `row ${i}`, 'stories260K scoring vs generation log-probs');
        assert.deepEqual(m[i], Array.from({ length: a }, (_, j) => (j < c.tokens.length ? 1 : 0)));
        assert.ok(lp[i]!.slice(c.tokens.length).every((x) => x === 0), 'padding is zeroed');
      });
      // Scoring against the wrong prompt gives different log-probs: the comparison has teeth.
      const shifted = scoreCompletions(model, [prompts[2]!], [cs[1]!.tokens]).logprobs.toArray() as number[][];
      assert.ok(shifted[0]!.some((x, j) => Math.abs(x - cs[1]!.logprobs[j]!) > 10 * bound));
    }));
  });
});

describe('end of sequence', () => {
  test('stories260K ends stories at BOS: sampling stops there, and the end token is dropped or kept as asked', () => {
    assert.deepEqual(model.config.eosTokenIds, [1, 2]);
    const bos = Array.from({ length: 32 }, () => [1]);
    const o: GenerateOptions = { maxNewTokens: 400, temperature: 1, seed: 2024 };
    const dropped = gen(bos, o);
    const ended = dropped.filter((c) => c.finishReason === 'eos');
    assert.ok(ended.length > 0, 'no sequence ended at BOS/EOS within 400 tokens');
    for (const c of dropped) {
      assert.ok(!c.tokens.includes(1) && !c.tokens.includes(2), `a completion contains an end token: ${c.tokens.join(' ')}`);
      assert.equal(c.tokens.length, c.logprobs.length);
      if (c.finishReason === 'length') assert.equal(c.tokens.length, 400);
      else assert.ok(c.tokens.length < 400);
    }
    // includeEos: the same samples (same seed and streams), now with the end token and its log-prob
    // appended. Rerunning only the 8 earliest-ending rows keeps this cheap.
    const rows = dropped.map((c, i) => ({ c, i })).filter(({ c }) => c.finishReason === 'eos');
    const early = rows.sort((a, b) => a.c.tokens.length - b.c.tokens.length).slice(0, 8).map(({ i }) => i);
    const kept = gen(early.map(() => [1]), { ...o, includeEos: true, streams: early });
    kept.forEach((c, j) => {
      const d = dropped[early[j]!]!;
      assert.equal(c.finishReason, 'eos', `row ${early[j]}`);
      assert.ok([1, 2].includes(c.tokens.at(-1)!), `row ${early[j]} ends with ${c.tokens.at(-1)}`);
      assert.deepEqual(c.tokens.slice(0, -1), d.tokens);
      assert.equal(c.logprobs.length, d.logprobs.length + 1);
      assert.ok(c.logprobs.at(-1)! < 0);
    });
    // With no end ids (eosTokenIds overrides the config) the same stream runs on past the end token.
    const first = early[0]!;
    const n = dropped[first]!.tokens.length;
    const [past] = gen([[1]], { ...o, maxNewTokens: n + 5, eosTokenIds: [], streams: [first] });
    assert.equal(past!.finishReason, 'length');
    assert.deepEqual(past!.tokens.slice(0, n), dropped[first]!.tokens);
    assert.ok([1, 2].includes(past!.tokens[n]!));
  });
});

describe('sampling filters on hand-built logits', () => {
  // Row 0: p = [.05, .3, .15, .5]; row 1: p = [.6, .1, .1, .2]. Unsorted, so the scatter back to vocabulary
  // order is exercised.
  const P = [[0.05, 0.3, 0.15, 0.5], [0.6, 0.1, 0.1, 0.2]];
  const logits = () => tensor(P.map((r) => r.map(Math.log)));

  test('top-p keeps the smallest set reaching p (the most likely token always stays)', () => {
    scope(() => {
      const isKept = (t: Tensor) => (t.toArray() as number[][]).map((r) => r.map((x) => x !== -Infinity));
      // p = 0.7: row 0 keeps .5, .3 (mass before .15 is .8 ≥ .7); row 1 keeps .6, .2.
      assert.deepEqual(isKept(topPFilter(logits(), 0.7)), [[false, true, false, true], [true, false, false, true]]);
      assert.deepEqual(isKept(topPFilter(logits(), 0.4)), [[false, false, false, true], [true, false, false, false]]);
      assert.deepEqual(isKept(topPFilter(logits(), 1e-9)), [[false, false, false, true], [true, false, false, false]]);
      assert.deepEqual(isKept(topPFilter(logits(), 0.85))[0], [false, true, true, true]);
      assert.deepEqual(isKept(topPFilter(logits(), 1)), [[true, true, true, true], [true, true, true, true]]);
      // Kept logits are untouched.
      assert.deepEqual((topPFilter(logits(), 0.7).toArray() as number[][])[0]![3], Math.fround(Math.log(0.5)));
    });
  });

  test('sampling after top-p never leaves the nucleus, and samples it in proportion', () => {
    scope(() => {
      const n = 4001;
      // A grid of uniforms over [0, 1), including the extremes 0 and the largest double below 1.
      const u = Float64Array.from({ length: n }, (_, i) => (i === n - 1 ? 1 - 2 ** -53 : i / (n - 1)));
      for (const [row, nucleus, share] of [[0, [1, 3], 0.3 / 0.8], [1, [0, 3], 0.6 / 0.8]] as const) {
        const rows = logits().narrow(0, row, 1).repeat(n, 1); // (n, V)
        const drawn = Array.from(sampleRows(topPFilter(rows, 0.7), u).data() as BigInt64Array, Number);
        const outside = drawn.filter((t) => !(nucleus as readonly number[]).includes(t));
        assert.deepEqual(outside, [], `row ${row}: sampled outside the nucleus ${JSON.stringify(nucleus)}`);
        // Renormalised: token nucleus[0] (the smaller of the two by id) gets its share of the nucleus mass.
        const freq = drawn.filter((t) => t === nucleus[0]).length / n;
        assert.ok(Math.abs(freq - share) < 0.01, `row ${row}: frequency ${freq}, expected ${share}`);
      }
    });
  });

  test('top-k keeps the k largest; top-k 1 chooses the argmax whatever the uniform', () => {
    scope(() => {
      const l = tensor([[1, 5, 3, 4, 2]]);
      assert.deepEqual((topKFilter(l, 2).toArray() as number[][])[0], [-Infinity, 5, -Infinity, 4, -Infinity]);
      assert.deepEqual(topKFilter(l, 5).toArray(), l.toArray());
      const o = validateSampling({ temperature: 1, topK: 1 });
      for (const x of [0, 0.3, 0.999999]) assert.equal(chooseTokens(l, o, () => Float64Array.of(x)).item(), 1);
      // Without top-k, u near 1 picks the last token: the filter is what makes top-k 1 greedy.
      assert.equal(chooseTokens(l, validateSampling({}), () => Float64Array.of(1 - 2 ** -53)).item(), 4);
    });
  });

  test('sampling options are validated', () => {
    assert.throws(() => validateSampling({ temperature: -1 }), /temperature must be >= 0/);
    assert.throws(() => validateSampling({ topK: 1.5 }), /top_k must be a non-negative integer/);
    assert.throws(() => validateSampling({ topP: 0 }), /top_p must be in \(0, 1\]/);
    assert.throws(() => validateSampling({ topP: 1.1 }), /top_p must be in \(0, 1\]/);
  });
});

describe('native memory', () => {
  test('generate and scoreCompletions leave no live tensors, also when they fail', () => {
    // Warm-up outside the count (lazy native state, if any).
    gen([[1]], { maxNewTokens: 2 });
    const before = memory().liveTensors;
    gen(prompts, { maxNewTokens: 20, temperature: 0 });
    gen(prompts, { maxNewTokens: 20, temperature: 0.8, topK: 30, topP: 0.9, seed: 3 });
    gen(prompts, { maxNewTokens: 20, includeEos: true, stopStrings: ['.'], decode: (t) => tok.decode(t) });
    gen(prompts, { maxNewTokens: 0 });
    const cs = gen(prompts, { maxNewTokens: 10 });
    scope(() => noGrad(() => {
      scoreCompletions(model, prompts, cs.map((c) => c.tokens));
    }));
    assert.equal(memory().liveTensors, before, 'generation leaked native tensors');
    // Failures part-way: an id outside the vocabulary (caught by the first forward) and a throwing callback.
    assert.throws(() => gen([[1, 600]], { maxNewTokens: 4 }), /outside the vocabulary/);
    assert.throws(() => gen(prompts, { maxNewTokens: 8, onToken: (_r, _t) => { throw new Error('stop here'); } }), /stop here/);
    assert.equal(memory().liveTensors, before, 'a failed generate leaked native tensors');
  });
});
