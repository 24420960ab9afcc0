/**
 * `rlhf train sft|dpo|ipo|simpo|orpo|kto` and `rlhf sample sentiment-pairs|sentiment-labels`: the offline policy
 * trainers and their demo data. IPO, SimPO and ORPO are `train dpo` with another default loss.type and out.
 * Ctrl-C stops a training run before its next step with a checkpoint written (exit 130); rerunning resumes.
 */
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { describeSchema, loadConfig } from '../config.js';
import { SFT_DEFAULTS, SFT_SCHEMA } from '../rlhf/sft/config.js';
import { trainSft, type SftRunSummary } from '../rlhf/sft/trainer.js';
import { DPO_SCHEMA, OFFLINE_METHOD_DEFAULTS } from '../rlhf/dpo/config.js';
import { trainDpo, type DpoEval, type DpoRunSummary } from '../rlhf/dpo/trainer.js';
import { sentimentLabels, sentimentPairs, writeLabels, writePairs } from '../rlhf/dpo/synthetic-pairs.js';
import { KTO_DEFAULTS, KTO_SCHEMA } from '../rlhf/kto/config.js';
import { trainKto, type KtoRunSummary } from '../rlhf/kto/trainer.js';
import { loadModel, resolveModelDir } from '../models/hub.js';
import { loadTokenizer, type Tokenizer } from '../text/index.js';
import type { CausalLM } from '../models/common.js';
import { setNumThreads } from '../tensor/index.js';
import { type OptionSpec, UsageError, seedOption, THREADS_OPTION, withInterrupt } from './args.js';
import type { Command } from './main.js';

const CONFIG_OPTIONS: OptionSpec[] = [
  { name: 'config', type: 'string', help: 'YAML/JSON config file (fields below; omitted fields take their defaults)' },
  { name: 'set', type: 'strings', default: [], help: 'override a config field: --set train.lr=3e-4 (repeatable)' },
  { name: 'fresh', type: 'boolean', default: false, help: 'ignore an existing checkpoint in the output directory and start over' },
];

const evalLine = (e: DpoEval | null) =>
  e ? `held-out implicit-reward accuracy ${e.accuracy.toFixed(3)} (ties ½), margin ${e.margin.toFixed(4)} (n ${e.n})\n` : '';

/**
 * `rlhf sample sentiment-*`: n records drawn from a model's samples scored by AFINN (src/rlhf/dpo/
 * synthetic-pairs.ts), written as JSONL; the command's JSON is { out, ...result(records) }.
 */
function sentimentSampler<R>(spec: {
  summary: string;
  n: number;
  minN: number;
  nHelp: string;
  seedHelp: string;
  draw(model: CausalLM, tok: Tokenizer, o: { n: number; seed: number; maxNewTokens: number }): R[];
  write(path: string, records: readonly R[]): void;
  result(records: readonly R[]): Record<string, number>;
  human(r: Record<string, number> & { out: string }): string;
}): Command {
  return {
    summary: spec.summary,
    options: [
      { name: 'model', type: 'string', default: 'stories260k', help: "model directory or 'stories260k'" },
      { name: 'n', type: 'number', default: spec.n, help: spec.nHelp },
      seedOption('seed', spec.seedHelp),
      { name: 'max-new-tokens', type: 'number', default: 48, help: 'tokens per completion' },
      { name: 'out', type: 'string', help: 'output JSONL file (required)' },
      THREADS_OPTION,
    ],
    async run(o) {
      if (!o.out) throw new UsageError('--out is required');
      const n = o.n as number;
      if (!(Number.isInteger(n) && n >= spec.minN)) throw new UsageError(`--n must be an integer >= ${spec.minN}, got ${n}`);
      if ((o.threads as number) > 0) setNumThreads(o.threads as number);
      const model = loadModel(o.model as string);
      try {
        const records = spec.draw(model, loadTokenizer(resolveModelDir(o.model as string)), { n, seed: o.seed as number, maxNewTokens: o['max-new-tokens'] as number });
        mkdirSync(dirname(o.out as string), { recursive: true });
        spec.write(o.out as string, records);
        return { out: o.out, ...spec.result(records) };
      } finally {
        model.dispose();
      }
    },
    human: (r) => spec.human(r as Record<string, number> & { out: string }),
  };
}

/** `rlhf train <method>` for a method that is a loss of the DPO trainer: its defaults, the DPO schema. */
function pairedCommand(method: keyof typeof OFFLINE_METHOD_DEFAULTS, summary: string): Command {
  const defaults = OFFLINE_METHOD_DEFAULTS[method];
  return {
    summary: `${summary} (YAML config; see --help)`,
    options: CONFIG_OPTIONS,
    helpExtra: () => fields(describeSchema(defaults, DPO_SCHEMA)),
    async run(o) {
      const cfg = loadConfig(o.config as string | undefined, o.set as string[], defaults, DPO_SCHEMA);
      return withInterrupt((signal) => trainDpo(cfg, { fresh: o.fresh as boolean, signal }));
    },
    human(r) {
      const s = r as DpoRunSummary;
      return `policy saved to ${s.out}/model after ${s.steps} steps (${s.seconds.toFixed(1)} s)\n` + evalLine(s.eval);
    },
  };
}

const fields = (lines: string[]) => `config fields (YAML; nested keys as in --set):\n${lines.map((l) => '  ' + l).join('\n')}`;

export const offlineCommands: Record<string, Command> = {
  'train sft': {
    summary: 'supervised fine-tuning on prompt/completion data, completion-only loss, optional packing (YAML config; see --help)',
    options: CONFIG_OPTIONS,
    helpExtra: () => fields(describeSchema(SFT_DEFAULTS, SFT_SCHEMA)),
    async run(o) {
      const cfg = loadConfig(o.config as string | undefined, o.set as string[], SFT_DEFAULTS, SFT_SCHEMA);
      return withInterrupt((signal) => trainSft(cfg, { fresh: o.fresh as boolean, signal }));
    },
    human(r) {
      const s = r as SftRunSummary;
      return `policy saved to ${s.out}/model after ${s.steps} steps (${s.seconds.toFixed(1)} s)\n` +
        (s.eval ? `held-out loss ${s.eval.loss.toFixed(4)} per completion token (${s.eval.tokens} tokens)\n` : '');
    },
  },
  'train dpo': pairedCommand('dpo', 'Direct Preference Optimization on preference pairs (loss.type sigmoid; also conservative and robust DPO, IPO, SimPO, ORPO), reference log-probs cached'),
  'train ipo': pairedCommand('ipo', 'IPO (Azar et al. 2023): `train dpo` with loss.type ipo, the squared loss (h − 1/(2β))²'),
  'train simpo': pairedCommand('simpo', 'SimPO (Meng et al. 2024): `train dpo` with loss.type simpo, reference-free, length-normalised, target margin γ'),
  'train orpo': pairedCommand('orpo', 'ORPO (Hong et al. 2024): `train dpo` with loss.type orpo, SFT + λ·odds-ratio term, reference-free'),
  'train kto': {
    summary: 'KTO (Ethayarajh et al. 2024) on unpaired {prompt, completion, label} feedback, evaluated on held-out pairs (YAML config; see --help)',
    options: CONFIG_OPTIONS,
    helpExtra: () => fields(describeSchema(KTO_DEFAULTS, KTO_SCHEMA)),
    async run(o) {
      const cfg = loadConfig(o.config as string | undefined, o.set as string[], KTO_DEFAULTS, KTO_SCHEMA);
      return withInterrupt((signal) => trainKto(cfg, { fresh: o.fresh as boolean, signal }));
    },
    human(r) {
      const s = r as KtoRunSummary;
      return `policy saved to ${s.out}/model after ${s.steps} steps (${s.seconds.toFixed(1)} s) on ${s.desirable} desirable and ${s.undesirable} undesirable completions\n` + evalLine(s.eval);
    },
  },
  'sample sentiment-pairs': sentimentSampler({
    summary: 'preference pairs for DPO: two samples per story prompt, the one with higher AFINN sentiment chosen (pairwise JSONL)',
    n: 1000, minN: 1, nHelp: 'pairs to write (ties are dropped and resampled)',
    seedHelp: 'seed of the sampling streams (use different seeds for train and held-out files)',
    draw: sentimentPairs, write: writePairs,
    result: (pairs) => ({ pairs: pairs.length }),
    human: (r) => `${r.pairs} pairs written to ${r.out}\n`,
  }),
  'sample sentiment-labels': sentimentSampler({
    summary: 'unpaired feedback for KTO: one sample per story prompt, desirable when its AFINN sentiment is above the median, undesirable below (binary JSONL, balanced)',
    n: 2000, minN: 2, nHelp: 'labelled completions to write, half of each label (completions at the median are dropped)',
    seedHelp: 'seed of the sampling streams',
    draw: sentimentLabels, write: writeLabels,
    result: (labels) => ({ completions: labels.length, desirable: labels.filter((x) => x.label).length }),
    human: (r) => `${r.completions} labelled completions written to ${r.out}\n`,
  }),
};
