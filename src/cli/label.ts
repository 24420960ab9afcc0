/** `rlhf label --judge SPEC --data FILE --out FILE`: pairs labelled offline by an LLM judge (RLAIF) → pairwise JSONL. */
import { readFileSync } from 'node:fs';
import { writeAtomic } from '../atomic.js';
import { judgePairs, pairwiseJudge, type UnlabelledPair } from '../reward/judge.js';
import { UsageError } from './args.js';
import type { Command } from './main.js';

/** The unlabelled pairs of a JSONL file: one `{prompt, a, b}` per line; a bad line is an error naming it and the field. */
export function readUnlabelledPairs(path: string): UnlabelledPair[] {
  return readFileSync(path, 'utf8').split('\n').flatMap((line, i) => {
    if (!line.trim()) return [];
    let rec: Record<string, unknown>;
    try {
      rec = JSON.parse(line) as Record<string, unknown>;
    } catch (e) {
      throw new UsageError(`${path}:${i + 1}: not JSON (${(e as Error).message})`);
    }
    for (const k of ['prompt', 'a', 'b']) if (typeof rec?.[k] !== 'string') throw new UsageError(`${path}:${i + 1}: '${k}' must be a string (each line is {"prompt", "a", "b"})`);
    return [{ prompt: rec.prompt as string, a: rec.a as string, b: rec.b as string }];
  });
}

export const labelCommands: Record<string, Command> = {
  label: {
    summary: 'label pairs with an LLM judge (both orders asked; ties left out) → pairwise JSONL for `rlhf train rm`',
    options: [
      { name: 'judge', type: 'string', help: "the judge: 'judge:http://HOST:PORT/v1#model=NAME' (any OpenAI-compatible endpoint; required)" },
      { name: 'data', type: 'string', help: 'JSONL of {"prompt", "a", "b"} pairs to label (required)' },
      { name: 'out', type: 'string', help: 'pairwise JSONL to write: {"prompt", "chosen", "rejected", "annotator", "preference"} (required)' },
    ],
    async run(o) {
      for (const k of ['judge', 'data', 'out']) if (!o[k]) throw new UsageError(`--${k} is required`);
      const judge = pairwiseJudge(o.judge as string);
      const pairs = readUnlabelledPairs(o.data as string);
      const { labels, ties } = await judgePairs(judge, pairs);
      writeAtomic(o.out as string, labels.map((l) => JSON.stringify(l) + '\n').join(''));
      return { out: o.out, pairs: pairs.length, labelled: labels.length, ties, judge: judge.name, ...judge.stats };
    },
    human(r) {
      const s = r as { out: string; pairs: number; labelled: number; ties: number; requests: number; cacheHits: number; promptTokens: number; completionTokens: number; malformed: number };
      return `${s.labelled} of ${s.pairs} pairs labelled (${s.ties} ties left out) → ${s.out}; ${s.requests} requests, ${s.promptTokens} + ${s.completionTokens} tokens, ${s.malformed} malformed verdicts\n`;
    },
  },
};
