/**
 * `rlhf bench peers --quick --json` (bench/peers.ts against TRL, bench/baseline/peers.py): one JSON line with a
 * ratio per workload (rm, dpo, grpo and GRPO's phases), both sides' quality figures and the TRL versions; without TRL, a one-line reason that
 * names the install script. The quick run checks the machinery only: its timings mean nothing.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { ROOT, rlhf } from '../model/run-cli.js';

const PEERS_PYTHON = process.env.RLHF_PEERS_PYTHON ?? join(ROOT, '.venv-peers', 'bin', 'python');
const HAVE_TRL = existsSync(PEERS_PYTHON);

test('without TRL, rlhf bench peers says how to install it', async () => {
  const r = await rlhf(['bench', 'peers', '--quick', '--json', '--python', join(ROOT, 'no-such-python')]);
  assert.equal(r.status, 1);
  assert.equal(r.stdout, '');
  assert.match(r.stderr, /scripts\/setup-peers\.sh/);
});

test('rlhf bench peers --quick --json: ratios, quality and versions per workload', { skip: HAVE_TRL ? false : `TRL is not installed (${PEERS_PYTHON}); scripts/setup-peers.sh installs it` }, async () => {
  const r = await rlhf(['bench', 'peers', '--quick', '--json'], 300_000);
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stdout.trim().split('\n').length, 1);
  const b = JSON.parse(r.stdout) as {
    bench: string; ratios: Record<string, number>; quality: Record<string, Record<string, { ours: { median: number }; theirs: { median: number } }>>;
    env: { peers: { trl: string; torch: string }; torch: { ours: string; theirs: string }; threads: { ours: { torch: number }; theirs: { torch: number } } };
  };
  assert.equal(b.bench, 'peers');
  for (const w of ['rm', 'dpo', 'grpo', 'grpo.generation', 'grpo.scoring', 'grpo.update']) {
    assert.ok(Number.isFinite(b.ratios[w]) && b.ratios[w]! > 0, `ratio ${w}: ${b.ratios[w]}`);
  }
  for (const w of ['rm', 'dpo']) {
    const acc = b.quality[w]!.accuracy!;
    for (const side of [acc.ours, acc.theirs]) assert.ok(side.median >= 0 && side.median <= 1, `${w} accuracy ${side.median}`);
  }
  const reward = b.quality.grpo!.reward!;
  for (const side of [reward.ours, reward.theirs]) assert.ok(Number.isFinite(side.median), `grpo reward ${side.median}`);
  assert.match(b.env.peers.trl, /^\d+\.\d+/);
  assert.equal(b.env.peers.torch, b.env.torch.theirs, 'TRL runs on the torch the baseline reports');
  assert.equal(b.env.threads.ours.torch, b.env.threads.theirs.torch);
});
