/**
 * Preference pairs labelled by a real external judge, for DPO on the embedded default: two completions
 * sampled per prompt from the model (temperature 1, separate seeded streams), the one with the higher
 * AFINN-165 comparative sentiment (npm `sentiment`, src/reward/functions.ts) chosen; ties (often both 0:
 * no sentiment words) are dropped. Records are in the `pairwise` format loadRewardRecords reads.
 */
import type { CausalLM } from '../../models/common.js';
import { generate } from '../../generate/generate.js';
import type { Tokenizer } from '../../text/index.js';
import { afinnComparative } from '../../reward/functions.js';
import { writeAtomic } from '../../atomic.js';

/** Story openings (TinyStories style); '' samples from BOS alone. */
export const STORY_PROMPTS: readonly string[] = [
  '', 'Once upon a time', 'One day', 'Lily and Tom', 'There was a little dog', 'The sun was', 'Ben went to the park',
  'Mom said', 'A little bird', 'Sara had a toy', 'In the big forest', 'The cat saw',
];

export interface SentimentPair {
  prompt: string;
  chosen: string;
  rejected: string;
  /** The judge's scores of chosen and rejected (chosen > rejected). */
  scores: [number, number];
}

export interface SentimentPairOptions {
  /** Pairs wanted. */
  n: number;
  /** Seed of the sampling streams: different seeds give disjoint samples. */
  seed: number;
  /** New tokens per completion (default 48). */
  maxNewTokens?: number;
  /** Prompts per generate() call (each sampled twice; default 64). */
  batch?: number;
  prompts?: readonly string[];
}

/** Samples until n pairs with unequal sentiment exist; prompts cycle through STORY_PROMPTS. */
export function sentimentPairs(model: CausalLM, tok: Tokenizer, opts: SentimentPairOptions): SentimentPair[] {
  const prompts = opts.prompts ?? STORY_PROMPTS;
  const batch = opts.batch ?? 64;
  const out: SentimentPair[] = [];
  let next = 0; // the index of the next prompt draw; its two samples use streams 2·next and 2·next + 1
  for (let round = 0; out.length < opts.n; round++) {
    if (round > 1000) throw new Error(`sentimentPairs: fewer than ${opts.n} non-tied pairs after ${next} prompts`);
    const texts = Array.from({ length: batch }, (_, i) => prompts[(next + i) % prompts.length]!);
    const ids = texts.flatMap((t) => [tok.encode(t, { addBos: true }), tok.encode(t, { addBos: true })]);
    const streams = Array.from({ length: 2 * batch }, (_, i) => 2 * next + i);
    const completions = generate(model, ids, { maxNewTokens: opts.maxNewTokens ?? 48, temperature: 1, seed: opts.seed, streams });
    for (let i = 0; i < batch && out.length < opts.n; i++) {
      // After BOS alone the decoded text starts with the word's space; the prompt '' + text must not.
      const [a, b] = [completions[2 * i]!, completions[2 * i + 1]!].map((c) => (texts[i] ? tok.decode(c.tokens) : tok.decode(c.tokens).trimStart()));
      const [sa, sb] = [afinnComparative(a!), afinnComparative(b!)];
      if (sa === sb) continue;
      out.push(sa > sb ? { prompt: texts[i]!, chosen: a!, rejected: b!, scores: [sa, sb] } : { prompt: texts[i]!, chosen: b!, rejected: a!, scores: [sb, sa] });
    }
    next += batch;
  }
  return out;
}

/** Writes pairs as `pairwise` JSONL: {prompt, chosen, rejected} per line. */
export function writePairs(path: string, pairs: readonly SentimentPair[]): void {
  writeAtomic(path, pairs.map((p) => JSON.stringify({ prompt: p.prompt, chosen: p.chosen, rejected: p.rejected })).join('\n') + '\n');
}

/** An unpaired completion labelled desirable or not (KTO's `binary` format). */
export interface SentimentLabel {
  prompt: string;
  completion: string;
  /** true: sentiment above the median of all samples drawn; false: below it. */
  label: boolean;
  score: number;
}

/**
 * Unpaired, balanced binary feedback by the same judge as sentimentPairs, for KTO: single completions
 * (one per prompt draw, temperature 1, seeded streams) scored by AFINN comparative sentiment; those above
 * the median of every sample drawn so far are desirable, those below undesirable, those at it dropped.
 * Draws continue until each side has n/2; the first n/2 of each (in draw order) are kept, interleaved.
 */
export function sentimentLabels(model: CausalLM, tok: Tokenizer, opts: SentimentPairOptions): SentimentLabel[] {
  const prompts = opts.prompts ?? STORY_PROMPTS;
  const batch = opts.batch ?? 64;
  const half = Math.ceil(opts.n / 2);
  const drawn: { prompt: string; completion: string; score: number }[] = [];
  for (let round = 0; ; round++) {
    if (round > 1000) throw new Error(`sentimentLabels: fewer than ${half} completions on one side of the median after ${drawn.length} samples`);
    const texts = Array.from({ length: batch }, (_, i) => prompts[(drawn.length + i) % prompts.length]!);
    const streams = Array.from({ length: batch }, (_, i) => drawn.length + i);
    const ids = texts.map((t) => tok.encode(t, { addBos: true }));
    const completions = generate(model, ids, { maxNewTokens: opts.maxNewTokens ?? 48, temperature: 1, seed: opts.seed, streams });
    completions.forEach((c, i) => {
      const completion = texts[i] ? tok.decode(c.tokens) : tok.decode(c.tokens).trimStart();
      drawn.push({ prompt: texts[i]!, completion, score: afinnComparative(completion) });
    });
    const sorted = drawn.map((x) => x.score).sort((a, b) => a - b);
    const median = (sorted[(sorted.length - 1) >> 1]! + sorted[sorted.length >> 1]!) / 2;
    const up = drawn.filter((x) => x.score > median).slice(0, half);
    const down = drawn.filter((x) => x.score < median).slice(0, half);
    if (up.length < half || down.length < half) continue;
    return up.flatMap((x, i) => [{ ...x, label: true }, { ...down[i]!, label: false }]).slice(0, opts.n);
  }
}

/** Writes labelled completions as `binary` JSONL: {prompt, completion, label} per line. */
export function writeLabels(path: string, labels: readonly SentimentLabel[]): void {
  writeAtomic(path, labels.map((x) => JSON.stringify({ prompt: x.prompt, completion: x.completion, label: x.label })).join('\n') + '\n');
}
