/**
 * Iterated (online) RLHF: R rounds of
 *   sample pairs from the current policy → annotate → reward model on all labels so far → RL from the
 *   current policy against it,
 * (Bai et al. 2022 §4.5; "RLHF Deciphered" §7.6.4). The reward model and RL are the ordinary trainers
 * (src/reward/train.ts, the online algorithms of src/rlhf/algorithms.ts), each writing into out/round-r/; nothing here copies
 * their loops. Every round's RL starts from the previous round's saved policy (a fresh optimiser and, for
 * PPO, a fresh value head: neither is part of the saved policy) and keeps the *initial* policy as its KL
 * reference, so the KL logged is the distance travelled since round 1.
 *
 * Resume: out/round-r/round.json pins the round's configuration fingerprint when the round starts;
 * out/round-r/done.json, written last, holds it with the round's results, and a rerun skips such a round.
 * Inside an unfinished round, labels.jsonl (written atomically once the annotator answered) is reused —
 * an annotator is never asked twice — and the reward-model and RL trainers resume from their checkpoints.
 */
import { meanSe } from '../../stats.js';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { validateConfig } from '../../config.js';
import { loadModel, resolveModelDir } from '../../models/hub.js';
import { loadTokenizer } from '../../text/index.js';
import { setNumThreads } from '../../tensor/index.js';
import { REWARD_DEFAULTS, REWARD_SCHEMA } from '../../reward/config.js';
import { trainRewardModel } from '../../reward/train.js';
import { sample } from '../online/rollout.js';
import type { EvalRow, OnlineRunOptions, OnlineRunSummary } from '../online/trainer.js';
import type { PolicyEvaluation } from '../online/rollout.js';
import { embeddedMiniBatch, ONLINE_ALGORITHMS } from '../algorithms.js';
import { type Annotator, checkLabels, type Comparison, type PairwiseLabel } from './annotator.js';
import { checkIteratedConfig, type IteratedConfig } from './config.js';
import { writeAtomic, readJsonFile } from '../../atomic.js';
import { withRunLock } from '../../run-dir.js';

/** Options of trainIterated: progress lines, an abort signal, and an evaluator scoring fresh samples (e.g. the gold reward). */
export interface IteratedRunOptions {
  progress?: (line: string) => void;
  /** Stops after the current RL step (checkpoint written), or before the next phase; a rerun resumes. */
  signal?: AbortSignal;
  /**
   * Scores fresh samples, one number per text (e.g. the lab's gold reward). At every RL evaluation their
   * mean and standard error are logged as `score` and `scoreSe`; a round's score is its last evaluation's.
   */
  evaluate?: (texts: readonly string[]) => number[];
}

/** One round's results: a line of out/rounds.jsonl. */
export interface RoundRow {
  round: number;
  /** Labels the reward model of this round saw: every round's so far. */
  labels: number;
  /** Labels collected in this round. */
  newLabels: number;
  /** Fraction of this round's labels that prefer the completion `evaluate` scores higher (null without one). */
  agreement: number | null;
  /** skippedIdentical: labelled pairs whose two texts are the same (no preference to learn; skipped, counted). */
  rm: { dir: string; trainPairs: number; heldOutPairs: number; skippedIdentical: number; accuracy: number | null; seconds: number };
  rl: { algorithm: string; policy: string; steps: number; resumedFrom: number | null; seconds: number; initial: EvalRow | null; final: EvalRow | null };
  /** The evaluator's mean score on fresh samples of the round's final policy, with its standard error (null without one). */
  score: number | null;
  scoreSe: number | null;
  /** KL(π‖π_initial) in nats on those samples. */
  kl: number | null;
  seconds: number;
}

/** What trainIterated returns: one row per round. */
export interface IteratedSummary {
  out: string;
  rounds: RoundRow[];
  seconds: number;
}

const readJsonl = <T>(path: string): T[] => readFileSync(path, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as T);
const toJsonl = (rows: readonly object[]): string => rows.map((r) => JSON.stringify(r) + '\n').join('');


/** What a finished round must have been run with to be reused: everything but where, how many rounds and threads. */
function fingerprint(cfg: IteratedConfig, annotator: Annotator): unknown {
  const { out: _o, rounds: _r, threads: _t, ...rest } = cfg;
  return { ...rest, annotator: annotator.id };
}

/** A per-round seed for sampling and the annotator: a pure function of (seed, round). */
function roundSeed(seed: number, round: number): number {
  return (Math.imul(seed, 1000003) ^ Math.imul(round, 0x9e3779b1)) >>> 0;
}

const roundDir = (cfg: IteratedConfig, round: number) => join(cfg.out, `round-${round}`);

/** Phase 1: perRound comparisons of two fresh samples of the current policy, labelled once (labels.jsonl is reused). */
async function collectLabels(cfg: IteratedConfig, round: number, policyDir: string, annotator: Annotator, signal: AbortSignal | undefined, say: (l: string) => void): Promise<PairwiseLabel[]> {
  const path = join(roundDir(cfg, round), 'labels.jsonl');
  if (existsSync(path)) {
    say(`reusing ${path}`);
    return readJsonl<PairwiseLabel>(path);
  }
  const n = cfg.labels.perRound;
  const rows = Array.from({ length: 2 * n }, (_, i) => cfg.prompts[Math.floor(i / 2) % cfg.prompts.length]!);
  const settings = { maxNewTokens: cfg.maxNewTokens, temperature: 1, topK: 0, topP: 1 };
  const texts: string[] = [];
  const policy = loadModel(policyDir);
  try {
    const tok = loadTokenizer(resolveModelDir(policyDir));
    for (let i = 0; i < rows.length; i += 128) {
      texts.push(...sample(policy, tok, rows.slice(i, i + 128), settings, roundSeed(cfg.seed, round), i).completions);
      say(`sampled ${texts.length}/${rows.length}`);
    }
    // Two samples can be the same text (a short story the policy knows by heart): no one can prefer one of
    // them and the feedback loader refuses the pair, so its second sample is drawn again, from streams past
    // the first 2n (deterministic); a pair still identical after 8 draws is left out.
    for (let attempt = 1; attempt <= 8; attempt++) {
      const same = Array.from({ length: n }, (_, k) => k).filter((k) => texts[2 * k] === texts[2 * k + 1]);
      if (same.length === 0) break;
      const redrawn = sample(policy, tok, same.map((k) => rows[2 * k + 1]!), settings, roundSeed(cfg.seed, round), attempt * rows.length).completions;
      same.forEach((k, j) => (texts[2 * k + 1] = redrawn[j]!));
    }
  } finally {
    policy.dispose();
  }
  const comparisons: Comparison[] = Array.from({ length: n }, (_, i) => ({ prompt: rows[2 * i]!, a: texts[2 * i]!, b: texts[2 * i + 1]! })).filter((c) => c.a !== c.b);
  say(`asking annotator '${annotator.id}' for ${comparisons.length} labels`);
  const answer = await annotator.label(comparisons, { round, seed: roundSeed(cfg.seed, round), ...(signal ? { signal } : {}) });
  const records = checkLabels(comparisons, answer, annotator.id, round);
  writeAtomic(path, toJsonl(records.map((r) => ({ ...r, source: `round-${round}` }))));
  return records;
}

/** Phase 2: a reward model from the initial backbone on every label of rounds 1..r (rm-data.jsonl). */
async function fitRewardModel(cfg: IteratedConfig, round: number, say: (l: string) => void): Promise<{ row: RoundRow['rm']; labels: number }> {
  const dir = roundDir(cfg, round);
  const all = Array.from({ length: round }, (_, k) => readFileSync(join(roundDir(cfg, k + 1), 'labels.jsonl'), 'utf8')).join('');
  const data = join(dir, 'rm-data.jsonl');
  writeAtomic(data, all);
  const c = cfg.rm;
  const rmCfg = validateConfig({
    seed: cfg.seed, out: join(dir, 'rm'),
    // Two samples of the policy can be the same text: such a pair says nothing and is skipped (counted).
    data: { path: data, format: 'pairwise', splitSeed: cfg.seed, splitRatio: c.splitRatio, maxTokens: c.maxTokens, skipInvalid: true },
    model: { init: 'pretrained', base: cfg.model },
    train: { epochs: c.epochs, batchSize: c.batchSize, lr: c.lr, warmupSteps: c.warmupSteps, threads: cfg.threads },
  }, REWARD_DEFAULTS, REWARD_SCHEMA, `round ${round} reward model`);
  const r = await trainRewardModel(rmCfg, { progress: say });
  const labels = all.split('\n').filter(Boolean).length;
  return { labels, row: { dir: join(rmCfg.out, 'model'), trainPairs: r.trainPairs, heldOutPairs: r.heldOutPairs, skippedIdentical: r.dropped.invalid, accuracy: r.eval?.accuracy ?? null, seconds: r.seconds } };
}

/** Phase 3: RL from `policyDir` against this round's reward model, KL to the initial policy. */
function continueRl(cfg: IteratedConfig, round: number, policyDir: string, rmDir: string, opts: IteratedRunOptions, say: (l: string) => void): Promise<OnlineRunSummary> {
  const c = cfg.rl;
  const raw = {
    seed: cfg.seed + round, out: join(roundDir(cfg, round), 'rl'),
    model: { policy: policyDir, reference: cfg.model },
    data: { prompts: cfg.prompts },
    reward: { sources: [`model:${rmDir}`] },
    rollout: { prompts: c.prompts, samplesPerPrompt: c.samplesPerPrompt, maxNewTokens: cfg.maxNewTokens },
    kl: { coef: c.klCoef },
    train: {
      steps: c.steps, lr: c.lr, evalEvery: c.evalEvery, evalSamples: c.evalSamples, checkpointEvery: c.checkpointEvery, threads: cfg.threads,
      ...embeddedMiniBatch(c.algorithm, c.prompts * c.samplesPerPrompt),
    },
  };
  const evaluate = opts.evaluate;
  const onEval = evaluate ? (_step: number, e: PolicyEvaluation) => {
    const scores = evaluate(e.samples.completions);
    if (scores.length !== e.samples.completions.length || !scores.every(Number.isFinite)) {
      throw new Error(`round ${round}: evaluate returned ${scores.length} scores (all finite: ${scores.every(Number.isFinite)}) for ${e.samples.completions.length} texts`);
    }
    const { mean, se } = meanSe(scores);
    return { score: mean, scoreSe: se };
  } : undefined;
  const run: OnlineRunOptions = { progress: say, ...(opts.signal ? { signal: opts.signal } : {}), ...(onEval ? { onEval } : {}) };
  const where = `round ${round} RL`;
  return ONLINE_ALGORITHMS[c.algorithm].train(raw, where, run);
}

/** One whole round: labels → reward model → RL; returns its row (the caller logs it and writes done.json). */
async function runRound(cfg: IteratedConfig, round: number, policyDir: string, annotator: Annotator, opts: IteratedRunOptions, say: (l: string) => void): Promise<RoundRow> {
  const t0 = Date.now();
  const tag = (phase: string) => (l: string) => say(`[round ${round}/${cfg.rounds} ${phase}] ${l}`);
  const stopIfAborted = (next: string) => {
    if (opts.signal?.aborted) throw new Error(`interrupted in round ${round} before its ${next}: rerun the same command to resume`);
  };
  stopIfAborted('labels');
  const labels = await collectLabels(cfg, round, policyDir, annotator, opts.signal, tag('labels'));
  const agreement = opts.evaluate ? scoreAgreement(labels, opts.evaluate) : null;
  stopIfAborted('reward model');
  const rm = await fitRewardModel(cfg, round, tag('rm'));
  tag('rm')(`${rm.labels} labels so far; held-out accuracy ${rm.row.accuracy?.toFixed(3) ?? 'n/a'} (n ${rm.row.heldOutPairs})`);
  stopIfAborted('RL');
  const rl = await continueRl(cfg, round, policyDir, rm.row.dir, opts, tag(cfg.rl.algorithm));
  const fin = rl.final as (EvalRow & { score?: number; scoreSe?: number }) | null;
  return {
    round, labels: rm.labels, newLabels: labels.length, agreement, rm: rm.row,
    rl: { algorithm: rl.algorithm, policy: policyDir, steps: rl.steps, resumedFrom: rl.resumedFrom, seconds: rl.seconds, initial: rl.initial, final: rl.final },
    score: fin?.score ?? null, scoreSe: fin?.scoreSe ?? null, kl: fin?.kl ?? null, seconds: (Date.now() - t0) / 1000,
  };
}

/** Fraction of labels whose chosen completion the evaluator scores at least as high as the rejected one. */
function scoreAgreement(labels: readonly PairwiseLabel[], evaluate: (texts: readonly string[]) => number[]): number {
  const s = evaluate(labels.flatMap((l) => [l.chosen, l.rejected]));
  return labels.filter((_, i) => s[2 * i]! >= s[2 * i + 1]!).length / Math.max(1, labels.length);
}

/** The round's fingerprint pinned at its start; a round begun under another configuration is refused. */
function pinRound(cfg: IteratedConfig, round: number, fp: unknown): { done: RoundRow | null } {
  const dir = roundDir(cfg, round);
  const same = (path: string) => JSON.stringify(readJsonFile<{ fingerprint: unknown }>(path).fingerprint) === JSON.stringify(fp);
  for (const name of ['done.json', 'round.json']) {
    const path = join(dir, name);
    if (existsSync(path) && !same(path)) {
      throw new Error(`${dir} was ${name === 'done.json' ? 'finished' : 'started'} under another configuration or annotator: use another out (or remove ${dir} and the rounds after it)`);
    }
  }
  if (existsSync(join(dir, 'done.json'))) return { done: readJsonFile<{ row: RoundRow }>(join(dir, 'done.json')).row };
  mkdirSync(dir, { recursive: true });
  writeAtomic(join(dir, 'round.json'), JSON.stringify({ fingerprint: fp }));
  return { done: null };
}

/**
 * Runs rounds 1..cfg.rounds, skipping finished ones; logs out/rounds.jsonl (one row per round) and
 * returns every round's row.
 */
export async function trainIterated(cfg: IteratedConfig, annotator: Annotator, opts: IteratedRunOptions = {}): Promise<IteratedSummary> {
  checkIteratedConfig(cfg);
  return withRunLock(cfg.out, () => runIterated(cfg, annotator, opts));
}

async function runIterated(cfg: IteratedConfig, annotator: Annotator, opts: IteratedRunOptions): Promise<IteratedSummary> {
  const t0 = Date.now();
  const say = opts.progress ?? ((l: string) => process.stderr.write(l + '\n'));
  // Before anything samples: round 1's labels would otherwise be drawn with whatever thread count the
  // process had (OpenBLAS's sums differ with it) and later rounds, or a resumed run, with cfg.threads.
  if (cfg.threads > 0) setNumThreads(cfg.threads);
  mkdirSync(cfg.out, { recursive: true });
  const fp = fingerprint(cfg, annotator);
  const rows: RoundRow[] = [];
  let policy = cfg.model;
  for (let round = 1; round <= cfg.rounds; round++) {
    const { done } = pinRound(cfg, round, fp);
    const row = done ?? await runRound(cfg, round, policy, annotator, opts, say);
    if (done) say(`[round ${round}/${cfg.rounds}] finished earlier: skipped`);
    rows.push(row);
    say(`[round ${round}/${cfg.rounds}] ${describeRound(row)}`);
    if (!done) {
      writeAtomic(join(cfg.out, 'rounds.jsonl'), toJsonl(rows));
      writeAtomic(join(roundDir(cfg, round), 'done.json'), JSON.stringify({ fingerprint: fp, row })); // last: the round counts as done
    }
    policy = join(roundDir(cfg, round), 'rl', 'model');
  }
  writeAtomic(join(cfg.out, 'rounds.jsonl'), toJsonl(rows));
  return { out: cfg.out, rounds: rows, seconds: (Date.now() - t0) / 1000 };
}

/** One line for people: labels, reward-model accuracy, proxy reward, KL and score at the round's end. */
export function describeRound(r: RoundRow): string {
  const f = (x: number | null | undefined, d = 4) => (typeof x === 'number' ? x.toFixed(d) : 'n/a');
  const fin = r.rl.final;
  return `round ${r.round}: ${r.labels} labels (${r.newLabels} new), RM held-out accuracy ${f(r.rm.accuracy, 3)} (n ${r.rm.heldOutPairs}); ` +
    `after ${r.rl.steps} ${r.rl.algorithm.toUpperCase()} steps: proxy ${f(fin?.reward)}, KL ${f(r.kl, 2)} nats` +
    `${r.score === null ? '' : `, score ${f(r.score)} ± ${f(r.scoreSe)}`} (${r.seconds.toFixed(0)} s)`;
}
