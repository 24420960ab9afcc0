/**
 * `rlhf train online`: iterated RLHF (src/rlhf/iterated) with the lab's synthetic annotator — Bradley–Terry
 * on the gold reward at a chosen rationality β (src/lab/annotators.ts) — or people through the feedback app
 * (`--annotator app`, src/rlhf/iterated/app-annotator.ts), and the gold reward of fresh
 * samples logged at every evaluation. The CLI sits above both layers, so it is where the lab plugs into
 * the trainer. Ctrl-C stops after the current RL step; rerunning the command resumes.
 */
import { describeSchema, loadConfig, type Schema } from '../config.js';
import { annotatePairs } from '../lab/annotators.js';
import { goldReward } from '../lab/gold.js';
import type { Annotator } from '../rlhf/iterated/annotator.js';
import { appAnnotator } from '../rlhf/iterated/app-annotator.js';
import { ITERATED_DEFAULTS, ITERATED_SCHEMA, type IteratedConfig } from '../rlhf/iterated/config.js';
import { trainIterated, type IteratedSummary } from '../rlhf/iterated/trainer.js';
import { withInterrupt } from './args.js';
import type { Command } from './main.js';

/** Who labels each round: the synthetic gold annotator, or people through the feedback app. */
export const ONLINE_ANNOTATORS = ['gold', 'app'] as const;

/** The trainer's config plus who labels: the synthetic gold annotator or the feedback app. */
export interface OnlineCliConfig extends IteratedConfig {
  annotator: {
    /** 'gold': the lab's synthetic Bradley–Terry annotator; 'app': people, through `rlhf feedback serve`'s database. */
    kind: (typeof ONLINE_ANNOTATORS)[number];
    /** Rationality β per unit of gold: P(a ≻ b) = σ(β·(gold_a − gold_b)) (the demo's 20; Infinity is not a YAML number here). */
    rationality: number;
    /** For 'app': the feedback app's database, its pairwise project, and the seconds between looks for labels. */
    db: string;
    project: string;
    pollSeconds: number;
  };
}

export const ONLINE_CLI_DEFAULTS: OnlineCliConfig = {
  ...ITERATED_DEFAULTS, annotator: { kind: 'gold', rationality: 20, db: 'feedback.sqlite', project: 'online', pollSeconds: 2 },
};

export const ONLINE_CLI_SCHEMA: Schema<OnlineCliConfig> = {
  ...ITERATED_SCHEMA,
  annotator: {
    kind: { doc: "who labels: 'gold' (synthetic Bradley–Terry on the gold reward) or 'app' (people, through the feedback app)", oneOf: ONLINE_ANNOTATORS },
    rationality: { doc: 'synthetic annotator rationality β per unit of gold (Bradley–Terry; 0 = coin flips)', min: 0 },
    db: { doc: "kind 'app': the feedback app's database (rlhf feedback serve --db)" },
    project: { doc: "kind 'app': its pairwise project that receives each round's pairs" },
    pollSeconds: { doc: "kind 'app': seconds between looks for the round's labels", min: 0.05 },
  },
};

/** The lab's Bradley–Terry annotator on the gold reward, as the trainer's pluggable annotator. */
export function goldAnnotator(beta: number): Annotator {
  return {
    id: `gold-bt(beta=${beta})`,
    label: (comparisons, ctx) => annotatePairs(comparisons, { annotators: [{ id: 'gold-bt', beta }], seed: ctx.seed, source: 'rlhf train online' }),
  };
}

export const iteratedCommands: Record<string, Command> = {
  'train online': {
    summary: 'iterated RLHF: per round, sample pairs from the current policy → synthetic gold annotator → reward model on all labels so far → PPO/GRPO from the current policy; gold logged per round',
    options: [
      { name: 'config', type: 'string', help: 'YAML/JSON config file (fields below; omitted fields take their defaults; example configs/online-stories.yaml)' },
      { name: 'set', type: 'strings', default: [], help: 'override a config field: --set rounds=5 (repeatable)' },
      { name: 'annotator', type: 'string', help: "gold | app: shorthand for --set annotator.kind=… (app: each round's pairs go into annotator.db's annotator.project and the round waits for people's labels)" },
    ],
    helpExtra: () => `config fields (YAML; nested keys as in --set):\n${describeSchema(ONLINE_CLI_DEFAULTS, ONLINE_CLI_SCHEMA).map((l) => '  ' + l).join('\n')}`,
    async run(o) {
      const sets = [...(o.set as string[]), ...(o.annotator === undefined ? [] : [`annotator.kind=${o.annotator as string}`])];
      const { annotator, ...cfg } = loadConfig(o.config as string | undefined, sets, ONLINE_CLI_DEFAULTS, ONLINE_CLI_SCHEMA);
      const who = annotator.kind === 'app' ? appAnnotator({ db: annotator.db, project: annotator.project, pollSeconds: annotator.pollSeconds }) : goldAnnotator(annotator.rationality);
      return withInterrupt((signal) => trainIterated(cfg, who, { signal, evaluate: (texts) => texts.map(goldReward) }));
    },
    human(r) {
      const s = r as IteratedSummary;
      const f = (x: number | null | undefined, d = 4) => (typeof x === 'number' ? x.toFixed(d) : 'n/a');
      const first = s.rounds[0]?.rl.initial as { score?: number; scoreSe?: number } | null | undefined;
      return [
        `iterated RLHF: ${s.rounds.length} rounds, ${s.rounds.reduce((a, x) => a + x.seconds, 0).toFixed(0)} s of rounds (this run ${s.seconds.toFixed(0)} s; out ${s.out}, per-round log rounds.jsonl)`,
        `  initial policy: gold ${f(first?.score)} ± ${f(first?.scoreSe)}`,
        ...s.rounds.map((x) => `  round ${x.round}: ${x.labels} labels, RM held-out accuracy ${f(x.rm.accuracy, 3)}, proxy ${f(x.rl.final?.reward)}, KL ${f(x.kl, 2)} nats, gold ${f(x.score)} ± ${f(x.scoreSe)}`),
        `  policy: ${s.out}/round-${s.rounds.length}/rl/model`,
        '',
      ].join('\n');
    },
  },
};
