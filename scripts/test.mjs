#!/usr/bin/env node
// Runs the test tiers with node's test runner over the compiled tests (dist/test/):
//   pure/   pure math, no native code;   native/ the engine on CPU;   model/ the tiny real model;
//   cli/    the command line;   browser/ the HTML report opened in Debian's chromium (playwright-core);
//   gpu/    only with RLHF_TEST_GPU=1 (needs a CUDA libtorch and a GPU).
// Extra arguments are passed to `node --test` (e.g. --test-name-pattern=xor).
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';

const tiers = ['pure', 'native', 'model', 'cli', 'browser'];
if (process.env.RLHF_TEST_GPU === '1') tiers.push('gpu');
const files = [];
for (const tier of tiers) {
  const dir = join('dist', 'test', tier);
  if (!existsSync(dir)) continue;
  for (const f of readdirSync(dir).sort()) if (f.endsWith('.test.js')) files.push(join(dir, f));
}
if (files.length === 0) {
  console.error('no compiled tests found under dist/test: run `npm run setup` first');
  process.exit(1);
}
const r = spawnSync(process.execPath, ['--expose-gc', '--test', '--test-concurrency=1', ...process.argv.slice(2), ...files], { stdio: 'inherit' });
process.exit(r.status ?? 1);
