/**
 * Preference pairs labelled by a real external judge, for DPO on the embedded default: two completions
 * sampled per prompt from the model (temperature 1, separate seeded streams), the one with the higher
 * AFINN-165 comparative sentiment (npm `sentiment`, src/reward/functions.ts) chosen; ties (often both 0:
 * no sentiment words) are dropped. Records are in the `pairwise` format loadRewardRecords reads.
 */
import { writeFileSync } from 'node:fs';
import type { CausalLM } from '../../models/common.js';
import { generate } from '../../generate/generate.js';
import type { Tokenizer } from '../../text/index.js';
import { afinnComparative } from '../../reward/functions.js';

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
  writeFileSync(path, pairs.map((p) => JSON.stringify({ prompt: p.prompt, chosen: p.chosen, rejected: p.rejected })).join('\n') + '\n');
}
