/**
 * The README's TypeScript program (reward model → DPO → PPO from code) is examples/reward-dpo-ppo.ts
 * verbatim, and it runs: built to dist/, imported as the package (`from 'rlhf-ts'`, Node's self-reference
 * through package.json `exports`), it trains all three on stories260K and prints one line for each.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { ROOT } from './run-cli.js';

const TMP = mkdtempSync(join(tmpdir(), 'rlhf-readme-program-'));
after(() => rmSync(TMP, { recursive: true, force: true }));

/** The ```ts blocks of the README. */
function tsBlocks(markdown: string): string[] {
  return [...markdown.matchAll(/```ts\n([\s\S]*?)```/g)].map((m) => m[1]!);
}

test('the README shows examples/reward-dpo-ppo.ts verbatim', () => {
  const program = readFileSync(join(ROOT, 'examples', 'reward-dpo-ppo.ts'), 'utf8');
  assert.ok(
    tsBlocks(readFileSync(join(ROOT, 'README.md'), 'utf8')).includes(program),
    'README.md must hold examples/reward-dpo-ppo.ts as a ```ts block, unchanged',
  );
});

test('the program runs: a reward model, DPO and PPO, one line each', async () => {
  const child = spawn(process.execPath, [join(ROOT, 'dist', 'examples', 'reward-dpo-ppo.js'), TMP], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
  assert.equal(code, 0, stderr);
  const lines = stdout.trim().split('\n');
  assert.equal(lines.length, 3, stdout);
  assert.match(lines[0]!, /^reward model: held-out accuracy \d\.\d{3} on \d+ pairs$/);
  assert.match(lines[1]!, /^DPO: \d+ steps, held-out implicit-reward accuracy \d\.\d{3}$/);
  assert.match(lines[2]!, /^PPO: 2 steps, reward -?\d\.\d{3} → -?\d\.\d{3}, policy in .*ppo\/model$/);
});
