/** `rlhf train rm` and `rlhf eval rm`: reward models from the command line. */
import { describeSchema, loadConfig } from '../config.js';
import { REWARD_DEFAULTS, REWARD_SCHEMA } from '../reward/config.js';
import { FORMAT_KINDS, loadRewardRecords, tokenizeRecords } from '../reward/pairs.js';
import { loadRewardEnsemble } from '../reward/ensemble-model.js';
import { describeHeldOut, evaluateHeldOut } from '../reward/evaluate.js';
import { trainRewardModel } from '../reward/train.js';
import { resolveModelDir } from '../models/hub.js';
import { loadTokenizer } from '../text/index.js';
import { setNumThreads } from '../tensor/index.js';
import { UsageError, seedOption, THREADS_OPTION, withInterrupt } from './args.js';
import type { Command } from './main.js';

export const rewardCommands: Record<string, Command> = {
  'train rm': {
    summary: 'train a reward model (or an ensemble) on pairs, rankings or ratings (YAML config; see --help for every field)',
    options: [
      { name: 'config', type: 'string', help: 'YAML/JSON config file (fields below; omitted fields take their defaults)' },
      { name: 'set', type: 'strings', default: [], help: 'override a config field: --set train.lr=3e-4 (repeatable)' },
      { name: 'fresh', type: 'boolean', default: false, help: 'ignore an existing checkpoint in the output directory and start over' },
    ],
    helpExtra: () => `config fields (YAML; nested keys as in --set):\n${describeSchema(REWARD_DEFAULTS, REWARD_SCHEMA).map((l) => '  ' + l).join('\n')}`,
    async run(o) {
      const cfg = loadConfig(o.config as string | undefined, o.set as string[], REWARD_DEFAULTS, REWARD_SCHEMA);
      return withInterrupt((signal) => trainRewardModel(cfg, { fresh: o.fresh as boolean, signal }));
    },
    human(r) {
      const s = r as Awaited<ReturnType<typeof trainRewardModel>>;
      const e = s.eval;
      const what = s.members ? `ensemble of ${s.members.length} reward models` : 'reward model';
      return `${what} saved to ${s.out}/model after ${s.steps} steps${s.members ? ' each' : ''} (${s.seconds.toFixed(1)} s)\n` +
        (e ? `held-out accuracy ${e.accuracy.toFixed(3)} [${e.accuracy_ci[0].toFixed(3)}, ${e.accuracy_ci[1].toFixed(3)}], ECE ${e.ece.toFixed(3)}, length-only baseline ${e.length_baseline_accuracy?.toFixed(3) ?? 'n/a'}${e.spread !== undefined ? `, member spread ${e.spread.toFixed(3)}` : ''} (n ${e.n})\n` : '') +
        (s.ratingEval ? `held-out ${describeHeldOut({ eval: null, ratingEval: s.ratingEval })}\n` : '');
    },
  },
  'eval rm': {
    summary: 'evaluate a reward model or ensemble: accuracy with CI, calibration (ECE), length bias; rankings as their implied pairs; ratings by correlation and RMSE',
    options: [
      { name: 'model', type: 'string', help: 'reward-model directory, or an ensemble directory with ensemble.json (required)' },
      { name: 'data', type: 'string', help: 'feedback file (required)' },
      { name: 'format', type: 'string', default: 'pairwise', help: Object.keys(FORMAT_KINDS).join(' | ') },
      { name: 'part', type: 'string', default: 'test', help: "which part of the seeded split: test | train | all" },
      seedOption('split-seed', 'seed of the split (as in training: data.splitSeed)'),
      { name: 'split-ratio', type: 'number', default: 0.8, help: 'training fraction of the split (data.splitRatio)', min: 0, max: 1 },
      { name: 'split-key', type: 'string', default: 'record', help: 'record | prompt (data.splitKey)' },
      { name: 'max-tokens', type: 'number', default: 256, help: 'drop records longer than this (data.maxTokens)', integer: true, min: 1 },
      { name: 'skip-invalid', type: 'boolean', default: false, help: 'skip malformed records' },
      seedOption('seed', 'seed of the bootstrap interval'),
      THREADS_OPTION,
    ],
    async run(o) {
      for (const k of ['model', 'data']) if (!o[k]) throw new UsageError(`--${k} is required`);
      const part = o.part as string;
      if (!['test', 'train', 'all'].includes(part)) throw new UsageError(`--part must be test, train or all, got '${part}'`);
      if ((o.threads as number) > 0) setNumThreads(o.threads as number);
      const src = { path: o.data as string, testPath: '', format: o.format as string, splitSeed: o['split-seed'] as number, splitRatio: part === 'all' ? 0 : (o['split-ratio'] as number), splitKey: o['split-key'] as string, skipInvalid: o['skip-invalid'] as boolean };
      const { records, invalid } = await loadRewardRecords(src, part === 'train' ? 'train' : 'test');
      const model = loadRewardEnsemble(o.model as string);
      try {
        const tok = loadTokenizer(resolveModelDir(o.model as string));
        const t = tokenizeRecords(records, tok, o['max-tokens'] as number);
        if (t.records.length === 0) throw new Error(`${o.data as string}: no records to evaluate (part ${part})`);
        const ev = evaluateHeldOut(model, t.records, { seed: o.seed as number, scoreScale: model.scoreScale });
        return { ...(ev.eval ?? ev.ratingEval), dropped: { invalid, tooLong: t.tooLong } };
      } finally {
        model.dispose();
      }
    },
  },
};

