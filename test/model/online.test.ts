/**
 * Online policy optimisation on stories260K (src/rlhf/online, ppo, grpo, rloo), the invariants:
 *   - gradient accumulation: a rollout of 8 sequences of unequal lengths as one batch and one optimiser
 *     step equals 8 micro-batches of 1 and one optimiser step (advantages over the full rollout, the loss
 *     normalised by the global token count), for PPO with its value head, within the float32 bound of a
 *     gradient (test/tolerance.ts; an SGD step of lr 1 makes the parameter change the gradient itself);
 *   - GRPO and RLOO with KL coefficient 0, weight decay 0, no entropy bonus and identical rewards: zero
 *     advantages, and the parameters do not move;
 *   - resume: a run that dies after step 3 resumes from its step-2 checkpoint and logs the same metrics as an
 *     uninterrupted run; an aborted run (SIGINT) checkpoints and resumes too;
 *   - bad input: unknown config keys and wrong types, a reward function that throws or returns NaN, a
 *     reference with another tokenizer — a clear error, and the last checkpoint stays loadable.
 * Tags: @numeric
 */
import assert from 'node:assert/strict';
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';

import { loadConfig, validateConfig } from '../../src/config.js';
import { loadTensors } from '../../src/nn/serialize.js';
import { loadModel, resolveModelDir } from '../../src/models/hub.js';
import { scope, SGD, type Tensor } from '../../src/tensor/index.js';
import { functionReward, type RewardSource } from '../../src/reward/sources.js';
import { closeRun, oldFromUpdate, openRun, shapeRewards, trainOnline, update } from '../../src/rlhf/online/trainer.js';
import { disposeScored, scoreRollout, type Samples } from '../../src/rlhf/online/rollout.js';
import { PPO_DEFAULTS, PPO_SCHEMA, type PpoConfig } from '../../src/rlhf/ppo/config.js';
import { ppoAlgorithm } from '../../src/rlhf/ppo/trainer.js';
import { GRPO_DEFAULTS, GRPO_SCHEMA } from '../../src/rlhf/grpo/config.js';
import { grpoAlgorithm } from '../../src/rlhf/grpo/trainer.js';
import { RLOO_DEFAULTS, RLOO_SCHEMA } from '../../src/rlhf/rloo/config.js';
import { rlooAlgorithm } from '../../src/rlhf/rloo/trainer.js';
import { afinnComparative } from '../../src/reward/functions.js';
import { gamma, gradientBound, logitBound, logprobBound, maxAbsLogit, STORIES260K, STORIES260K_VOCAB } from '../tolerance.js';
import { reportBound } from '../env.js';

const TMP = mkdtempSync(join(tmpdir(), 'rlhf-online-test-'));
after(() => rmSync(TMP, { recursive: true, force: true }));
const quiet = () => {};

/** A small PPO/GRPO/RLOO config: 8 rows of 16 tokens, evaluation on 8 samples. */
const SMALL = { rollout: { prompts: 4, samplesPerPrompt: 2, maxNewTokens: 16 }, train: { evalSamples: 8, checkpointEvery: 0, lr: 1e-3, miniBatchSize: 4 }, data: { prompts: ['', 'Once upon a time', 'Lily'] } };

function maxDiff(a: ReadonlyMap<string, Tensor>, b: ReadonlyMap<string, Tensor>): number {
  let m = 0;
  for (const [k, t] of a) scope(() => (m = Math.max(m, t.sub(b.get(k)!).abs().max().item())));
  return m;
}

/** Copies of a state dict's tensors (the originals die with their module). */
function copyOf(m: ReadonlyMap<string, Tensor>): Map<string, Tensor> {
  return new Map([...m].map(([k, v]) => [k, v.detach().clone()]));
}

/** The policy's and the value head's parameters in one map (the head's names prefixed 'v.'). */
function withValueHead(policy: ReadonlyMap<string, Tensor>, head: ReadonlyMap<string, Tensor>): Map<string, Tensor> {
  return new Map([...policy, ...[...head].map(([k, v]) => [`v.${k}`, v] as [string, Tensor])]);
}

function weightsOf(dir: string): Map<string, Tensor> {
  return loadTensors(join(dir, 'model.safetensors')).tensors;
}

describe('gradient accumulation', () => {
  test('8 sequences of unequal lengths: one batch = 8 micro-batches of 1 (PPO with a value head; the SGD step, within the float32 bound)', async () => {
    const tok = [[3, 7, 1, 12, 5, 9, 2, 6], ['', 'Once upon a time', 'Lily', 'The dog', '', 'Tom saw', 'One day', 'Sue']] as const;
    const completionIds = tok[0].map((n, i) => Array.from({ length: n }, (_, j) => 30 + ((i * 31 + j * 17) % 400)));
    const params: Map<string, Tensor>[] = [];
    let initial: Map<string, Tensor> | null = null;
    let rows: number[] = [];
    for (const micro of [0, 1]) {
      const cfg = validateConfig({ ...SMALL, out: join(TMP, `accum-${micro}`), rollout: { prompts: 8, samplesPerPrompt: 1, maxNewTokens: 16 }, train: { epochs: 1, miniBatchSize: 8, microBatchSize: micro, lr: 1, evalSamples: 0 } }, PPO_DEFAULTS, PPO_SCHEMA, 'test');
      const algo = ppoAlgorithm(cfg);
      const length = functionReward('length', (c) => c.length / 10);
      const run = openRun(cfg, algo, length);
      try {
        initial ??= copyOf(withValueHead(run.policy.stateDict(), run.critic!.head!.stateDict()));
        // SGD with lr 1: the step is the accumulated gradient itself (Adam's first step, ≈ lr·sign(g),
        // would turn float noise in near-zero gradients into full-size differences).
        run.opt.dispose();
        run.opt = new SGD([{ params: run.policy.trainableParameters() }, { params: run.critic!.head!.trainableParameters() }], { lr: 1 });
        const samples: Samples = {
          prompts: [...tok[1]], promptIds: tok[1].map((p) => run.tok.encode(p, { addBos: true })), completionIds,
          completions: completionIds.map((c) => run.tok.decode(c)), finish: completionIds.map(() => 'length'),
        };
        rows = samples.promptIds.map((p, i) => p.length + completionIds[i]!.length);
        const r = await scoreRollout(samples, run.policy, run.reference, run.critic, run.reward);
        const { advantages, returns } = algo.advantages(r, shapeRewards(r, run), run.kl.value, cfg);
        const u = update(run, algo, r, advantages, returns, 0, run.kl.value);
        assert.equal(u.optimiserSteps, 1);
        params.push(copyOf(withValueHead(run.policy.stateDict(), run.critic!.head!.stateDict())));
        disposeScored(r);
      } finally {
        closeRun(run);
      }
    }
    const policyOnly = (m: Map<string, Tensor>) => new Map([...m].filter(([k]) => !k.startsWith('v.')));
    const moved = maxDiff(policyOnly(initial!), policyOnly(params[0]!));
    assert.ok(moved > 1e-4, `the update must move the policy (moved ${moved})`);
    // Bound: the largest gradient (policy or value head) as the scale, over the longest sequence and every token.
    const bound = gradientBound(STORIES260K, Math.max(...rows), rows.reduce((s, n) => s + n, 0), maxDiff(initial!, params[0]!));
    const d = maxDiff(params[0]!, params[1]!);
    reportBound('PPO gradient accumulation 8×1 vs 8 (one SGD step)', d, bound, 1e-5);
    assert.ok(d <= bound, `one batch vs 8 micro-batches differ by ${d} > ${bound}`);
  });
});

describe('one update per rollout (GRPO, one epoch, one mini-batch)', () => {
  test('the old log-probs come from the update\'s forward: no scoring pass of the policy, the same values as one', async () => {
    const cfg = validateConfig({ ...SMALL, out: join(TMP, 'old-from-update'), train: { epochs: 1, miniBatchSize: 0, microBatchSize: 4, evalSamples: 0 } }, GRPO_DEFAULTS, GRPO_SCHEMA, 'test');
    const run = openRun(cfg, grpoAlgorithm as never, functionReward('length', (c) => c.length / 10));
    try {
      const completionIds = [[30, 31, 32], [40, 41, 42, 43, 44], [50], [60, 61, 62, 63], [70, 71], [80, 81, 82], [90, 91, 92, 93, 94, 95], [100]];
      const prompts = ['', 'Once upon a time', 'Lily', 'The dog', '', 'Tom saw', 'One day', 'Sue'];
      const samples: Samples = {
        prompts, promptIds: prompts.map((p) => run.tok.encode(p, { addBos: true })), completionIds,
        completions: completionIds.map((c) => run.tok.decode(c)), finish: completionIds.map(() => 'length'),
      };
      assert.equal(oldFromUpdate(cfg as never, grpoAlgorithm as never, 8), true);
      const reference = await scoreRollout(samples, run.policy, run.reference, run.critic, run.reward); // the scoring pass, for comparison
      let forwards = 0;
      const hidden = run.policy.hidden.bind(run.policy);
      run.policy.hidden = (...a: Parameters<typeof hidden>) => (forwards++, hidden(...a));
      const r = await scoreRollout(samples, run.policy, run.reference, run.critic, run.reward, { oldFromUpdate: true });
      assert.equal(forwards, 0, 'scoring ran the policy');
      const { advantages } = grpoAlgorithm.advantages(r, shapeRewards(r, run), run.kl.value, cfg as never);
      update(run, grpoAlgorithm as never, r, advantages, null, 0, run.kl.value);
      assert.equal(forwards, 2, 'one forward per micro-batch of 4');
      const rows = samples.promptIds.map((p, i) => [...p, ...completionIds[i]!]);
      const keys = Math.max(...rows.map((x) => x.length));
      const m = maxAbsLogit(run.reference, rows); // the policy before its step is the reference
      const bound = logprobBound(STORIES260K, keys, m, STORIES260K_VOCAB);
      const d = scope(() => r.oldLogProbs.sub(reference.oldLogProbs).abs().max().item());
      assert.ok(d <= bound, `old log-probs from the update differ from the scoring pass's by ${d} > ${bound}`);
      // H = lse(l) − Σ p·l: lse moves by δ (the logit bound), Σ p·l by δ + M·‖Δp‖₁ ≤ δ + 2Mδ, plus lse's own rounding.
      const delta = logitBound(STORIES260K, keys, m);
      const entropyBound = (2 + 2 * m) * delta + 2 * gamma(STORIES260K_VOCAB);
      assert.ok(Math.abs(r.entropy - reference.entropy) <= entropyBound, `entropy ${r.entropy} vs ${reference.entropy} (bound ${entropyBound})`);
      advantages.dispose();
      disposeScored(r);
      disposeScored(reference);
    } finally {
      closeRun(run);
    }
  });
});

describe('zero advantages', () => {
  for (const [name, defaults, schema, algo] of [['grpo', GRPO_DEFAULTS, GRPO_SCHEMA, grpoAlgorithm], ['rloo', RLOO_DEFAULTS, RLOO_SCHEMA, rlooAlgorithm]] as const) {
    test(`${name}: identical rewards, β 0, weight decay 0, no entropy bonus → parameters do not move`, async () => {
      const out = join(TMP, `zero-${name}`);
      const cfg = validateConfig({ ...SMALL, out, kl: { coef: 0 }, train: { steps: 2, weightDecay: 0, entropyCoef: 0, evalSamples: 0, lr: 1e-2 } }, defaults as never, schema as never, 'test');
      await trainOnline(cfg as never, algo as never, { progress: quiet, reward: functionReward('constant', () => 0.7) });
      const before = loadModel('stories260k');
      const after = weightsOf(join(out, 'model'));
      assert.equal(maxDiff(before.stateDict(), after), 0);
      before.dispose();
    });
  }
});

/** metrics.jsonl rows without wall-clock fields. */
function trajectory(out: string): unknown[] {
  return readFileSync(join(out, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => {
    const { seconds: _s, tokensPerSecond: _t, peakBytes: _p, ...rest } = JSON.parse(l) as Record<string, unknown>;
    return rest;
  });
}

describe('resume', () => {
  const cfgFor = (out: string): PpoConfig => validateConfig({ ...SMALL, out, train: { steps: 4, checkpointEvery: 2, evalSamples: 8, lr: 1e-3, miniBatchSize: 4 } }, PPO_DEFAULTS, PPO_SCHEMA, 'test');
  const reward = functionReward('afinn', (c) => afinnComparative(c));

  test('a run that dies after step 3 resumes from its step-2 checkpoint and logs what an uninterrupted run logs', async () => {
    const full = await trainOnline(cfgFor(join(TMP, 'resume-a')), ppoAlgorithm(cfgFor('')), { progress: quiet, reward });
    const b = join(TMP, 'resume-b');
    await assert.rejects(trainOnline(cfgFor(b), ppoAlgorithm(cfgFor('')), {
      reward, progress: (l) => {
        if (l.includes('step 3/4')) throw new Error('simulated crash');
      },
    }), /simulated crash/);
    const resumed = await trainOnline(cfgFor(b), ppoAlgorithm(cfgFor('')), { progress: quiet, reward });
    assert.equal(resumed.resumedFrom, 2);
    assert.deepEqual(trajectory(b), trajectory(join(TMP, 'resume-a')));
    assert.deepEqual(resumed.final, full.final);
    assert.equal(maxDiff(weightsOf(join(TMP, 'resume-a', 'model')), weightsOf(join(b, 'model'))), 0);
  });

  test('an aborted run (SIGINT) writes its checkpoint, says how to resume, and resumes', async () => {
    const c = join(TMP, 'resume-c');
    const ac = new AbortController();
    await assert.rejects(trainOnline(cfgFor(c), ppoAlgorithm(cfgFor('')), { reward, signal: ac.signal, progress: (l) => l.includes('step 1/4') && ac.abort() }), /interrupted after step 1: .*rerun the same command to resume/);
    const resumed = await trainOnline(cfgFor(c), ppoAlgorithm(cfgFor('')), { progress: quiet, reward });
    assert.equal(resumed.resumedFrom, 1);
    assert.deepEqual(trajectory(c), trajectory(join(TMP, 'resume-a')));
  });

  test('another configuration in the same directory is refused, naming --fresh', async () => {
    const other = { ...cfgFor(join(TMP, 'resume-a')), seed: 5 };
    await assert.rejects(trainOnline(other, ppoAlgorithm(other), { progress: quiet, reward }), /different run.*--fresh/);
  });
});

describe('bad input', () => {
  test('unknown config keys and wrong types are errors naming the field', () => {
    assert.throws(() => loadConfig(undefined, ['train.lrr=1e-4'], PPO_DEFAULTS, PPO_SCHEMA), /unknown key 'train\.lrr' \(did you mean 'train\.lr'\?\)/);
    assert.throws(() => loadConfig(undefined, ['train.epochs=two'], PPO_DEFAULTS, PPO_SCHEMA), /'train\.epochs' must be a number/);
    assert.throws(() => loadConfig(undefined, ['reward.weights=[1, x]'], PPO_DEFAULTS, PPO_SCHEMA), /'reward\.weights\[1\]' must be a number/);
    assert.throws(() => loadConfig(undefined, ['ppo.value.kind=shared'], PPO_DEFAULTS, PPO_SCHEMA), /'ppo\.value\.kind' must be one of head, separate/);
  });

  for (const [what, fn, message] of [
    ['throws', (c: string) => (c.length > 0 ? (() => { throw new Error('judge offline'); })() : 0), /reward 'bad' threw on sample 0 .*judge offline/],
    ['returns NaN', () => NaN, /reward 'bad' returned NaN for sample 0/],
  ] as const) {
    test(`a reward function that ${what}: a clear error, and the last checkpoint stays loadable`, async () => {
      const out = join(TMP, `bad-${what.replace(' ', '-')}`);
      const cfg = validateConfig({ ...SMALL, out, train: { steps: 3, checkpointEvery: 1, evalSamples: 0, miniBatchSize: 4 } }, RLOO_DEFAULTS, RLOO_SCHEMA, 'test');
      let calls = 0;
      const flaky: RewardSource = functionReward('bad', (c) => (calls++ < 16 ? afinnComparative(c) : (fn as (c: string) => number)(c)));
      await assert.rejects(trainOnline(cfg, rlooAlgorithm, { progress: quiet, reward: flaky }), message);
      // Steps 1 and 2 took 16 rewards; step 3's failed: the step-2 checkpoint is intact, and resuming works.
      const resumed = await trainOnline(cfg, rlooAlgorithm, { progress: quiet, reward: functionReward('afinn', (c) => afinnComparative(c)) });
      assert.equal(resumed.resumedFrom, 2);
    });
  }

  test('a reference with another tokenizer is refused, naming both models', async () => {
    const ref = join(TMP, 'other-tokenizer');
    cpSync(resolveModelDir('stories260k'), ref, { recursive: true });
    rmSync(join(ref, 'tokenizer.bin'));
    for (const f of ['vocab.json', 'merges.txt']) cpSync(join(resolveModelDir('assets/gpt2-bpe'), f), join(ref, f));
    const cfg = validateConfig({ ...SMALL, out: join(TMP, 'mismatch'), model: { reference: ref } }, PPO_DEFAULTS, PPO_SCHEMA, 'test');
    await assert.rejects(trainOnline(cfg, ppoAlgorithm(cfg), { progress: quiet }), /model\.reference .*other-tokenizer does not share the policy's tokenizer \(stories260k\)/);
    assert.ok(!existsSync(join(TMP, 'mismatch', 'checkpoint')));
  });
});


