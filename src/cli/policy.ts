/**
 * `rlhf train ppo|grpo|rloo|remax|reinforce|reinforcepp` (online policy optimisation from a YAML config),
 * `rlhf train raft` (rounds of best-of-N → SFT on the winners) and `rlhf sample bon` (best-of-N with any
 * reward source). Ctrl-C stops a training run after its current step with a
 * checkpoint written; rerunning the command resumes.
 */
import { describeSchema, loadConfig } from '../config.js';
import { loadModel, resolveModelDir } from '../models/hub.js';
import { loadTokenizer } from '../text/index.js';
import { setNumThreads } from '../tensor/index.js';
import { describeEval, type OnlineRunSummary } from '../rlhf/online/trainer.js';
import { ONLINE_ALGORITHMS, type OnlineAlgorithmEntry } from '../rlhf/algorithms.js';
import { RAFT_DEFAULTS, RAFT_SCHEMA } from '../rlhf/raft/config.js';
import { type RaftRunSummary, trainRaft } from '../rlhf/raft/trainer.js';
import { bestOfN, klBestOfN } from '../rlhf/bon.js';
import { combinedReward, parseRewardSpec } from '../reward/sources.js';
import { UsageError, seedOption, THREADS_OPTION, withInterrupt } from './args.js';
import type { Command } from './main.js';

const CONFIG_OPTIONS: Command['options'] = [
  { name: 'config', type: 'string', help: 'YAML/JSON config file (fields below; omitted fields take their defaults)' },
  { name: 'set', type: 'strings', default: [], help: 'override a config field: --set train.lr=1e-4 (repeatable)' },
  { name: 'fresh', type: 'boolean', default: false, help: 'ignore an existing checkpoint in the output directory and start over' },
];

function onlineCommand(a: OnlineAlgorithmEntry): Command {
  return {
    summary: a.summary,
    options: CONFIG_OPTIONS,
    helpExtra: () => `config fields (YAML; nested keys as in --set):\n${a.describeConfig().map((l) => '  ' + l).join('\n')}`,
    async run(o) {
      return withInterrupt((signal) => a.trainFromFile(o.config as string | undefined, o.set as string[], { fresh: o.fresh as boolean, signal }));
    },
    human(r) {
      const s = r as OnlineRunSummary;
      return `${a.title}: policy saved to ${s.out}/model after ${s.steps} steps (${s.seconds.toFixed(1)} s)\n` +
        (s.initial ? `before: ${describeEval(s.initial)}\n` : '') + (s.final ? `after:  ${describeEval(s.final)}\n` : '');
    },
  };
}

export const policyCommands: Record<string, Command> = {
  ...Object.fromEntries(Object.entries(ONLINE_ALGORITHMS).map(([name, a]) => [`train ${name}`, onlineCommand(a)])),
  'train raft': {
    summary: 'RAFT: rounds of best-of-N sampling under a reward source → SFT on the winners (a finished round is skipped on rerun)',
    options: CONFIG_OPTIONS,
    helpExtra: () => `config fields (YAML; nested keys as in --set):\n${describeSchema(RAFT_DEFAULTS, RAFT_SCHEMA).map((l) => '  ' + l).join('\n')}`,
    async run(o) {
      const cfg = loadConfig(o.config as string | undefined, o.set as string[], RAFT_DEFAULTS, RAFT_SCHEMA);
      return withInterrupt((signal) => trainRaft(cfg, { fresh: o.fresh as boolean, signal }));
    },
    human(r) {
      const s = r as RaftRunSummary;
      const rounds = s.rounds.map((x) => `round ${x.round}: ${x.winners}/${x.prompts} winners, reward ${x.winnerReward === null ? 'n/a' : x.winnerReward.toFixed(4)} (candidates ${x.candidateReward.toFixed(4)})${x.eval ? `; ${describeEval(x.eval)}` : ''}\n`).join('');
      return `RAFT: policy saved to ${s.out}/model after ${s.rounds.length} rounds (${s.seconds.toFixed(1)} s)\n` +
        (s.initial ? `before: ${describeEval(s.initial)}\n` : '') + rounds;
    },
  },
  'sample bon': {
    summary: 'best-of-N sampling: N completions per prompt, the best under a reward source',
    options: [
      { name: 'model', type: 'string', default: 'stories260k', help: "policy: a model directory, or 'stories260k'" },
      { name: 'reward', type: 'strings', default: ['function:afinn_comparative'], help: "reward source(s), summed: 'function:NAME', 'model:DIR', 'module:./file.mjs#export' or 'http://HOST:PORT/get_reward' (repeatable)" },
      { name: 'prompt', type: 'strings', default: [''], help: 'a prompt (repeatable); empty means BOS only' },
      { name: 'n', type: 'number', default: 8, help: 'candidates per prompt' },
      { name: 'max-new-tokens', type: 'number', default: 64, help: 'tokens per candidate at most' },
      { name: 'temperature', type: 'number', default: 1, help: 'sampling temperature (> 0)' },
      { name: 'top-k', type: 'number', default: 0, help: 'top-k filter (0 = off)' },
      { name: 'top-p', type: 'number', default: 1, help: 'nucleus filter (1 = off)' },
      seedOption('seed', 'sampling seed'),
      THREADS_OPTION,
    ],
    async run(o) {
      const n = o.n as number;
      if (!(Number.isInteger(n) && n >= 1)) throw new UsageError(`--n must be an integer ≥ 1, got ${n}`);
      if (!((o.temperature as number) > 0)) throw new UsageError(`--temperature must be > 0 for best-of-N, got ${o.temperature}`);
      if ((o.threads as number) > 0) setNumThreads(o.threads as number);
      const dir = resolveModelDir(o.model as string);
      const tok = loadTokenizer(dir);
      const specs = o.reward as string[];
      const sources = specs.map((s) => parseRewardSpec(s, tok));
      const reward = sources.length === 1 ? sources[0]! : combinedReward(sources.map((source) => ({ source, weight: 1 })));
      const model = loadModel(dir);
      try {
        const results = await bestOfN(model, tok, reward, o.prompt as string[], n, {
          maxNewTokens: o['max-new-tokens'] as number, temperature: o.temperature as number, topK: o['top-k'] as number, topP: o['top-p'] as number,
        }, { seed: o.seed as number, progress: (l) => process.stderr.write(`[sample bon] ${l}\n`) });
        return { n, kl_bon: klBestOfN(n), reward: reward.name, results: results.map(({ candidates: _c, ...r }) => r) };
      } finally {
        model.dispose();
        reward.dispose();
      }
    },
    human(r) {
      const s = r as { n: number; kl_bon: number; results: { prompt: string; text: string; reward: number; rewards: number[] }[] };
      return s.results.map((x) => `[best of ${s.n}: reward ${x.reward.toFixed(4)} (candidates ${Math.min(...x.rewards).toFixed(3)}…${Math.max(...x.rewards).toFixed(3)})]\n${x.prompt}${x.text}`).join('\n\n') +
        `\n(KL of best-of-${s.n} from the policy: ${s.kl_bon.toFixed(3)} nats)\n`;
    },
  },
};
