/** `rlhf bench …`: benchmarks against the Python PyTorch baseline, JSON out (bench/). */
import type { Command } from './main.js';
import { MAX_THREADS } from '../config.js';
import { type OptionSpec, UsageError } from './args.js';

const benchOptions: OptionSpec[] = [
  { name: 'reps', type: 'number', help: 'interleaved repetitions per case (ours, theirs, ours, …); default per bench (5 or 7; quick: 2)' },
  { name: 'threads', type: 'number', help: "threads for libtorch and OpenBLAS on both sides (default: libtorch's default)", integer: true, min: 1, max: MAX_THREADS },
  { name: 'python', type: 'string', help: 'Python interpreter with torch, for the baseline (default: $PYTHON, else the Python whose torch is the libtorch the addon links: .venv/bin/python or Debian\'s /usr/bin/python3)' },
  { name: 'quick', type: 'boolean', default: false, help: 'tiny sizes and 2 repetitions: checks the machinery, not speed' },
];

const benchArgs = (o: Record<string, unknown>) => ({
  reps: o.reps as number | undefined,
  threads: o.threads as number | undefined,
  python: o.python as string | undefined,
  quick: o.quick as boolean,
});

export const benchCommands: Record<string, Command> = {
  'bench generate': {
    summary: 'stories260K sampling throughput at batch 1/16/64/256 vs a plain-PyTorch KV-cache loop',
    options: benchOptions,
    async run(o) {
      const { runGenerateBench } = await import('../../bench/generate.js');
      return runGenerateBench(benchArgs(o));
    },
  },
  'bench rm': {
    summary: 'reward-model training and evaluation throughput (pairs/s) on stories260K vs plain PyTorch',
    options: benchOptions,
    async run(o) {
      const { runRmBench } = await import('../../bench/rm.js');
      return runRmBench(benchArgs(o));
    },
  },
  'bench ppo': {
    summary: 'one PPO iteration on stories260K (batch 64, 64 new tokens; generation, scoring, update) vs plain PyTorch',
    options: benchOptions,
    async run(o) {
      const { runPpoBench } = await import('../../bench/ppo.js');
      return runPpoBench(benchArgs(o));
    },
  },
  'bench peers': {
    summary: 'rlhf-ts against TRL 1.13 itself (reward model on SST-2, DPO and GRPO on stories260K): s/step, phases and quality; needs scripts/setup-peers.sh',
    options: benchOptions,
    async run(o) {
      const { runPeersBench } = await import('../../bench/peers.js');
      return runPeersBench(benchArgs(o));
    },
  },
  'bench serve-model': {
    summary: 'rlhf serve-model over loopback: requests/s, p50/p99 latency and tokens/s at 1, 8 and 32 concurrent clients vs generate at the same batch',
    options: benchOptions.filter((x) => x.name !== 'python'),
    async run(o) {
      const { runServeBench } = await import('../../bench/serve-model.js');
      return runServeBench({ reps: o.reps as number | undefined, threads: o.threads as number | undefined, quick: o.quick as boolean });
    },
  },
  'bench serve': {
    summary: 'the feedback app under load: scripted annotators over loopback at 10 and 50 concurrent (labels/s, p50/p99 latency, every acknowledged label counted)',
    options: [
      { name: 'seconds', type: 'number', default: 8, help: 'seconds per concurrency level (quick: 2)', min: 1, max: 120 },
      { name: 'levels', type: 'string', default: '10,50', help: 'concurrent annotators per level, comma-separated (quick: 4)' },
      { name: 'quick', type: 'boolean', default: false, help: 'one small level for 2 s: checks the machinery, measures nothing' },
    ],
    async run(o) {
      const { runServeBench: runFeedbackServeBench } = await import('../../bench/serve.js');
      const levels = (o.levels as string).split(',').map(Number);
      if (levels.some((n) => !Number.isInteger(n) || n < 1 || n > 200)) throw new UsageError(`--levels must be integers in 1..200, got '${o.levels as string}'`);
      return runFeedbackServeBench(o.quick ? { quick: true } : { levels, seconds: o.seconds as number });
    },
  },
  'bench engine': {
    summary: 'tensor-engine overhead, matmul GFLOP/s and a transformer-block training step vs PyTorch',
    options: benchOptions,
    async run(o) {
      const { runEngineBench } = await import('../../bench/engine.js');
      return runEngineBench(benchArgs(o));
    },
  },
};
