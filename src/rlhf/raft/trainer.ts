/**
 * RAFT: rounds of best-of-N sampling (src/rlhf/bon.ts) → SFT on the winners (src/rlhf/sft, through the
 * JSONL it reads) → the next round samples from the fine-tuned policy. Each round is a directory:
 *   round-R/winners.jsonl  {prompt, completion, reward} of every kept winner
 *   round-R/sft/           the SFT run (model/, checkpoint/, metrics.jsonl): an interrupted SFT resumes
 *   round-R/summary.json   written last: a round with one is finished and skipped on rerun
 * Evaluation on fresh samples (the online trainers' evaluatePolicy and evaluation seed, so the numbers
 * compare with theirs) at the start and after each round; metrics.jsonl is rebuilt from the summaries.
 */
import { mean } from '../../stats.js';
import { cpSync, existsSync, mkdirSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { setNumThreads } from '../../tensor/index.js';
import { loadModel, resolveModelDir } from '../../models/hub.js';
import type { CausalLM } from '../../models/common.js';
import { loadTokenizer, type Tokenizer } from '../../text/index.js';
import { type BestOfNResult, bestOfN } from '../bon.js';
import { combinedReward, parseRewardSpec, type RewardSource } from '../../reward/sources.js';
import { evaluatePolicy, type SamplingSettings } from '../online/rollout.js';
import { loadPrompts } from '../online/prompts.js';
import { describeEval, type EvalRow, evalSeed, stepSeed } from '../online/trainer.js';
import { SFT_DEFAULTS, type SftConfig } from '../sft/config.js';
import { trainSft } from '../sft/trainer.js';
import { checkRaftConfig, type RaftConfig } from './config.js';
import { writeAtomic, readJsonFile } from '../../atomic.js';
import { configDiff, withRunLock } from '../../run-dir.js';

export interface RaftRound {
  round: number;
  /** Prompts sampled, and winners kept (fewer with a threshold). */
  prompts: number;
  winners: number;
  /** Mean reward of the kept winners (null: none kept), and of every candidate (the policy's own mean). */
  winnerReward: number | null;
  candidateReward: number;
  sftSteps: number;
  /** The policy after the round (the previous one when no winner was kept). */
  policy: string;
  eval: EvalRow | null;
  seconds: number;
}

/** What trainRaft returns: one row per round and the evaluations. */
export interface RaftRunSummary {
  algorithm: 'raft';
  out: string;
  rounds: RaftRound[];
  /** Rounds found finished and skipped (null: none). */
  resumedFrom: number | null;
  seconds: number;
  initial: EvalRow | null;
  final: EvalRow | null;
}

/** Options of trainRaft: a fresh start, progress lines, an abort signal. */
export interface RaftRunOptions {
  fresh?: boolean;
  progress?: (line: string) => void;
  /** Stops cleanly between rounds when aborted (a rerun resumes at the next round). */
  signal?: AbortSignal;
  /** A reward source to use instead of cfg.reward.sources (owned by the caller: not disposed). */
  reward?: RewardSource;
}


function readJson<T>(path: string): T {
  return readJsonFile<T>(path);
}

function samplingOf(cfg: RaftConfig): SamplingSettings {
  const r = cfg.rollout;
  return { maxNewTokens: r.maxNewTokens, temperature: r.temperature, topK: r.topK, topP: r.topP };
}

/** What a run keeps between rounds: the tokenizer, prompts, reward and the frozen reference. */
interface RaftContext {
  cfg: RaftConfig;
  tok: Tokenizer;
  prompts: string[];
  reward: RewardSource;
  reference: CausalLM;
  say: (line: string) => void;
}

async function evaluate(ctx: RaftContext, policy: CausalLM): Promise<EvalRow | null> {
  const n = ctx.cfg.train.evalSamples;
  if (n === 0) return null;
  const { samples: _s, rewards: _r, ...row } = await evaluatePolicy(policy, ctx.reference, ctx.tok, ctx.reward, ctx.prompts, samplingOf(ctx.cfg), { n, seed: evalSeed(ctx.cfg.seed) });
  return row;
}

/** The SFT configuration of round `round`: the winners file, starting from `policy`. */
export function roundSftConfig(cfg: RaftConfig, round: number, policy: string, maxTokens: number): SftConfig {
  const dir = join(cfg.out, `round-${round}`);
  return {
    ...SFT_DEFAULTS,
    seed: cfg.seed + round,
    out: join(dir, 'sft'),
    data: { ...SFT_DEFAULTS.data, path: join(dir, 'winners.jsonl'), format: 'completion', splitRatio: 1, maxTokens, appendEos: cfg.raft.appendEos },
    model: { ...SFT_DEFAULTS.model, policy },
    train: { ...SFT_DEFAULTS.train, ...cfg.sft, maxSteps: 0, evalEvery: 0, checkpointEvery: 0, threads: cfg.train.threads },
  };
}

/** One round: best-of-N from `policyDir` → winners.jsonl → SFT → evaluation. */
async function runRound(ctx: RaftContext, round: number, policyDir: string): Promise<RaftRound> {
  const t0 = Date.now();
  const { cfg, tok, say } = ctx;
  const dir = join(cfg.out, `round-${round}`);
  mkdirSync(dir, { recursive: true });
  const p = cfg.rollout.prompts;
  const prompts = Array.from({ length: p }, (_, i) => ctx.prompts[((round - 1) * p + i) % ctx.prompts.length]!);
  // ---- sample N per prompt and keep the best (a pure function of the policy and seed: a rerun redraws the same)
  const policy = loadModel(policyDir).eval();
  let results: BestOfNResult[];
  try {
    results = await bestOfN(policy, tok, ctx.reward, prompts, cfg.rollout.samplesPerPrompt, samplingOf(cfg), { seed: stepSeed(cfg.seed, round - 1) });
  } finally {
    policy.dispose();
  }
  const threshold = cfg.raft.threshold;
  const winners = results.filter((r) => threshold === null || threshold === undefined || r.reward > threshold);
  const candidateReward = mean(results.flatMap((r) => r.rewards));
  if (winners.length === 0) {
    say(`round ${round}: no winner above raft.threshold ${threshold} (candidates ${candidateReward.toFixed(4)}): the policy is unchanged`);
    return { round, prompts: p, winners: 0, winnerReward: null, candidateReward, sftSteps: 0, policy: policyDir, eval: null, seconds: (Date.now() - t0) / 1000 };
  }
  const winnerReward = mean(winners.map((w) => w.reward));
  say(`round ${round}: ${winners.length}/${p} winners, reward ${winnerReward.toFixed(4)} (candidates ${candidateReward.toFixed(4)})`);
  writeAtomic(join(dir, 'winners.jsonl'), winners.map((w) => JSON.stringify({ prompt: w.prompt, completion: w.text, reward: w.reward }) + '\n').join(''));
  // ---- SFT on the winners (rows longer than any prompt + completion + EOS never occur: retokenising can add a few)
  const longestPrompt = Math.max(...prompts.map((x) => tok.encode(x, { addBos: true }).length));
  const sftCfg = roundSftConfig(cfg, round, policyDir, 2 * (longestPrompt + cfg.rollout.maxNewTokens) + 2);
  const sft = await trainSft(sftCfg, { progress: (l) => say(`round ${round} ${l}`) });
  const next = join(sftCfg.out, 'model');
  // ---- evaluate the fine-tuned policy on fresh samples
  const tuned = loadModel(next).eval();
  let e: EvalRow | null;
  try {
    e = await evaluate(ctx, tuned);
  } finally {
    tuned.dispose();
  }
  if (e) say(`round ${round}: ${describeEval(e)}`);
  return { round, prompts: p, winners: winners.length, winnerReward, candidateReward, sftSteps: sft.steps, policy: next, eval: e, seconds: (Date.now() - t0) / 1000 };
}

function makeReward(cfg: RaftConfig, tok: Tokenizer): RewardSource {
  const sources = cfg.reward.sources.map((s) => parseRewardSpec(s, tok));
  if (sources.length === 1 && (cfg.reward.weights[0] ?? 1) === 1) return sources[0]!;
  return combinedReward(sources.map((source, i) => ({ source, weight: cfg.reward.weights[i] ?? 1 })));
}

/** Removes what a RAFT run wrote into `out` (for --fresh); nothing else there is touched. */
function clearRun(out: string): void {
  for (const f of readdirSync(out)) {
    if (/^round-\d+$/.test(f) || ['initial.json', 'metrics.jsonl', 'model', 'raft.json'].includes(f)) rmSync(join(out, f), { recursive: true, force: true });
  }
}

/**
 * Runs RAFT under `cfg`. A rerun with the same configuration skips finished rounds (and resumes an
 * interrupted round's SFT from its checkpoint); another configuration in the same `out` is refused.
 */
export async function trainRaft(cfg: RaftConfig, opts: RaftRunOptions = {}): Promise<RaftRunSummary> {
  checkRaftConfig(cfg);
  return withRunLock(cfg.out, () => runRaft(cfg, opts));
}

async function runRaft(cfg: RaftConfig, opts: RaftRunOptions): Promise<RaftRunSummary> {
  const start = Date.now();
  const say = (l: string) => (opts.progress ?? ((x: string) => process.stderr.write(x + '\n')))(`[train raft] ${l}`);
  if (cfg.train.threads > 0) setNumThreads(cfg.train.threads);
  mkdirSync(cfg.out, { recursive: true });
  const cfgPath = join(cfg.out, 'raft.json');
  if (opts.fresh) clearRun(cfg.out);
  // The output path is compared too: finished rounds name their policies by paths inside it.
  const diff = existsSync(cfgPath) ? configDiff(readJson(cfgPath), cfg) : [];
  if (diff.length) throw new Error(`${cfg.out} holds a RAFT run of another configuration (${diff.slice(0, 4).join('; ')}): use another out, or --fresh to start over`);
  writeAtomic(cfgPath, JSON.stringify(cfg, null, 2));
  const tok = loadTokenizer(resolveModelDir(cfg.model.policy));
  const reward = opts.reward ? { name: opts.reward.name, score: opts.reward.score.bind(opts.reward), dispose() {} } : makeReward(cfg, tok);
  const reference = loadModel(cfg.model.policy).freeze().eval();
  const ctx: RaftContext = { cfg, tok, prompts: loadPrompts(cfg.data), reward, reference, say };
  try {
    // ---- the initial policy's evaluation (KL 0: it is the reference), once
    const initialPath = join(cfg.out, 'initial.json');
    const initial = existsSync(initialPath) ? readJson<{ eval: EvalRow | null }>(initialPath).eval : await evaluate(ctx, reference);
    writeAtomic(initialPath, JSON.stringify({ eval: initial }));
    if (initial) say(`round 0: ${describeEval(initial)}`);
    const rounds: RaftRound[] = [];
    let policyDir = resolveModelDir(cfg.model.policy);
    let resumedFrom: number | null = null;
    for (let round = 1; round <= cfg.raft.rounds; round++) {
      const done = join(cfg.out, `round-${round}`, 'summary.json');
      let row: RaftRound;
      if (existsSync(done)) {
        row = readJson<RaftRound>(done);
        resumedFrom = round;
        say(`round ${round}: finished before, skipped`);
      } else {
        await new Promise((r) => setImmediate(r)); // let a pending SIGINT handler run
        if (opts.signal?.aborted) throw new Error(`interrupted after round ${round - 1}: finished rounds are kept in ${cfg.out}; rerun the same command to resume`);
        row = await runRound(ctx, round, policyDir);
        writeAtomic(done, JSON.stringify(row, null, 2));
      }
      rounds.push(row);
      policyDir = row.policy;
      writeAtomic(join(cfg.out, 'metrics.jsonl'), [{ round: 0, eval: initial }, ...rounds].map((r) => JSON.stringify(r) + '\n').join(''));
    }
    rmSync(join(cfg.out, 'model'), { recursive: true, force: true });
    cpSync(policyDir, join(cfg.out, 'model'), { recursive: true });
    const final = [...rounds].reverse().find((r) => r.eval)?.eval ?? initial;
    return { algorithm: 'raft', out: cfg.out, rounds, resumedFrom, seconds: (Date.now() - start) / 1000, initial, final };
  } finally {
    reference.dispose();
    reward.dispose();
  }
}
