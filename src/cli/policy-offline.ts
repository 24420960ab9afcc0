/** `rlhf train sft`, `rlhf train dpo` and `rlhf sample sentiment-pairs`: the offline policy trainers and their demo data. */
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { describeSchema, loadConfig } from '../config.js';
import { SFT_DEFAULTS, SFT_SCHEMA } from '../rlhf/sft/config.js';
import { trainSft, type SftRunSummary } from '../rlhf/sft/trainer.js';
import { DPO_DEFAULTS, DPO_SCHEMA } from '../rlhf/dpo/config.js';
import { trainDpo, type DpoRunSummary } from '../rlhf/dpo/trainer.js';
import { sentimentPairs, writePairs } from '../rlhf/dpo/synthetic-pairs.js';
import { loadModel, resolveModelDir } from '../models/hub.js';
import { loadTokenizer } from '../text/index.js';
import { setNumThreads } from '../tensor/index.js';
import { type OptionSpec, UsageError } from './args.js';
import type { Command } from './main.js';

const CONFIG_OPTIONS: OptionSpec[] = [
  { name: 'config', type: 'string', help: 'YAML/JSON config file (fields below; omitted fields take their defaults)' },
  { name: 'set', type: 'strings', default: [], help: 'override a config field: --set train.lr=3e-4 (repeatable)' },
  { name: 'fresh', type: 'boolean', default: false, help: 'ignore an existing checkpoint in the output directory and start over' },
];

const fields = (lines: string[]) => `config fields (YAML; nested keys as in --set):\n${lines.map((l) => '  ' + l).join('\n')}`;

export const offlineCommands: Record<string, Command> = {
  'train sft': {
    summary: 'supervised fine-tuning on prompt/completion data, completion-only loss, optional packing (YAML config; see --help)',
    options: CONFIG_OPTIONS,
    helpExtra: () => fields(describeSchema(SFT_DEFAULTS, SFT_SCHEMA)),
    async run(o) {
      const cfg = loadConfig(o.config as string | undefined, o.set as string[], SFT_DEFAULTS, SFT_SCHEMA);
      return trainSft(cfg, { fresh: o.fresh as boolean });
    },
    human(r) {
      const s = r as SftRunSummary;
      return `policy saved to ${s.out}/model after ${s.steps} steps (${s.seconds.toFixed(1)} s)\n` +
        (s.eval ? `held-out loss ${s.eval.loss.toFixed(4)} per completion token (${s.eval.tokens} tokens)\n` : '');
    },
  },
  'train dpo': {
    summary: 'Direct Preference Optimization on preference pairs, reference log-probs cached (YAML config; see --help)',
    options: CONFIG_OPTIONS,
    helpExtra: () => fields(describeSchema(DPO_DEFAULTS, DPO_SCHEMA)),
    async run(o) {
      const cfg = loadConfig(o.config as string | undefined, o.set as string[], DPO_DEFAULTS, DPO_SCHEMA);
      return trainDpo(cfg, { fresh: o.fresh as boolean });
    },
    human(r) {
      const s = r as DpoRunSummary;
      const e = s.eval;
      return `policy saved to ${s.out}/model after ${s.steps} steps (${s.seconds.toFixed(1)} s)\n` +
        (e ? `held-out implicit-reward accuracy ${e.accuracy.toFixed(3)} (ties ½), margin ${e.margin.toFixed(4)} (n ${e.n})\n` : '');
    },
  },
  'sample sentiment-pairs': {
    summary: 'preference pairs for DPO: two samples per story prompt, the one with higher AFINN sentiment chosen (pairwise JSONL)',
    options: [
      { name: 'model', type: 'string', default: 'stories260k', help: "model directory or 'stories260k'" },
      { name: 'n', type: 'number', default: 1000, help: 'pairs to write (ties are dropped and resampled)' },
      { name: 'seed', type: 'number', default: 0, help: 'seed of the sampling streams (use different seeds for train and held-out files)' },
      { name: 'max-new-tokens', type: 'number', default: 48, help: 'tokens per completion' },
      { name: 'out', type: 'string', help: 'output JSONL file (required)' },
      { name: 'threads', type: 'number', default: 0, help: 'libtorch + OpenBLAS threads (0 = default)' },
    ],
    async run(o) {
      if (!o.out) throw new UsageError('--out is required');
      const n = o.n as number;
      if (!(Number.isInteger(n) && n > 0)) throw new UsageError(`--n must be a positive integer, got ${n}`);
      if ((o.threads as number) > 0) setNumThreads(o.threads as number);
      const model = loadModel(o.model as string);
      try {
        const pairs = sentimentPairs(model, loadTokenizer(resolveModelDir(o.model as string)), { n, seed: o.seed as number, maxNewTokens: o['max-new-tokens'] as number });
        mkdirSync(dirname(o.out as string), { recursive: true });
        writePairs(o.out as string, pairs);
        return { out: o.out, pairs: pairs.length };
      } finally {
        model.dispose();
      }
    },
    human: (r) => `${(r as { pairs: number }).pairs} pairs written to ${(r as { out: string }).out}\n`,
  },
};
