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
import { pairwiseJudge } from '../reward/judge.js';
import { type Annotator, judgeAnnotator } from '../rlhf/iterated/annotator.js';
import { appAnnotator } from '../rlhf/iterated/app-annotator.js';
import { ITERATED_DEFAULTS, ITERATED_SCHEMA, type IteratedConfig } from '../rlhf/iterated/config.js';
import { trainIterated, type IteratedSummary } from '../rlhf/iterated/trainer.js';
import { UsageError, withInterrupt } from './args.js';
import type { Command } from './main.js';

/** The trainer's config plus who labels: the synthetic gold annotator, or people through the feedback app. */
export interface OnlineCliConfig extends IteratedConfig {
  annotator: {
    /** Rationality β per unit of gold: P(a ≻ b) = σ(β·(gold_a − gold_b)) (the demo's 20; Infinity is not a YAML number here). */
    rationality: number;
    /** A pairwise `judge:URL#model=NAME…` spec: an LLM judge labels instead of the synthetic annotator ('' = none). */
    rlaifJudge: string;
  };
  /** People instead of the synthetic annotator: each round's pairs go into the feedback app's database. */
  app: {
    /** Label through the app (`--annotator app`) instead of the gold annotator. */
    enabled: boolean;
    /** The app's database (`rlhf feedback serve --db`), its pairwise project, seconds between looks for labels. */
    db: string;
    project: string;
    pollSeconds: number;
  };
}

export const ONLINE_CLI_DEFAULTS: OnlineCliConfig = {
  ...ITERATED_DEFAULTS, annotator: { rationality: 20, rlaifJudge: '' }, app: { enabled: false, db: 'feedback.sqlite', project: 'online', pollSeconds: 2 },
};

export const ONLINE_CLI_SCHEMA: Schema<OnlineCliConfig> = {
  ...ITERATED_SCHEMA,
  annotator: {
    rationality: { doc: 'synthetic annotator rationality β per unit of gold (Bradley–Terry; 0 = coin flips)', min: 0 },
    rlaifJudge: { doc: "an LLM judge labels instead (RLAIF): 'judge:http://HOST:PORT/v1#model=NAME' (pairwise, both orders asked; '' = the synthetic annotator)" },
  },
  app: {
    enabled: { doc: 'label each round through the feedback app (people) instead of the synthetic annotator' },
    db: { doc: "the feedback app's database (rlhf feedback serve --db)" },
    project: { doc: "its pairwise project that receives each round's pairs" },
    pollSeconds: { doc: "seconds between looks for the round's labels", min: 0.05 },
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
      { name: 'annotator', type: 'string', default: 'gold', help: "gold | app (= --set app.enabled=true: each round's pairs go into app.db's app.project and the round waits for people's labels)" },
    ],
    helpExtra: () => `config fields (YAML; nested keys as in --set):\n${describeSchema(ONLINE_CLI_DEFAULTS, ONLINE_CLI_SCHEMA).map((l) => '  ' + l).join('\n')}`,
    async run(o) {
      if (o.annotator !== 'gold' && o.annotator !== 'app') throw new UsageError(`--annotator must be gold or app, got '${o.annotator as string}'`);
      const sets = [...(o.set as string[]), ...(o.annotator === 'app' ? ['app.enabled=true'] : [])];
      const { annotator, app, ...cfg } = loadConfig(o.config as string | undefined, sets, ONLINE_CLI_DEFAULTS, ONLINE_CLI_SCHEMA);
      if (app.enabled && annotator.rlaifJudge) throw new UsageError('choose one annotator: --annotator app (people) or annotator.rlaifJudge (an LLM judge), not both');
      const who = app.enabled
        ? appAnnotator({ db: app.db, project: app.project, pollSeconds: app.pollSeconds })
        : annotator.rlaifJudge
          ? judgeAnnotator(pairwiseJudge(annotator.rlaifJudge))
          : goldAnnotator(annotator.rationality);
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
