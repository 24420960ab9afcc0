#!/usr/bin/env node
// Runs the test tiers with node's test runner over the compiled tests (dist/test/):
//   pure/   pure math, no native code;   native/ the engine on CPU;   model/ the tiny real model;
//   cli/    the command line;   browser/ the HTML report opened in Debian's chromium (playwright-core);
//   gpu/    only with RLHF_TEST_GPU=1 (needs a CUDA libtorch and a GPU);
//   cuda-build/ only through scripts/cuda-build.sh (`npm run test:cuda`), which builds the CUDA addon it checks.
// Selections by a tag in a test file's header comment:
//   --numeric   files tagged @numeric: every test whose bound comes from float arithmetic (parity of two
//               computations, invariants) — CI runs them again with RLHF_SCALAR_KERNELS=1 on 2 threads;
//   --learning  files tagged @learning: the "learning works" runs that `npm run test:matrix` repeats over
//               seeds, kernel paths and thread counts.
// RLHF_TEST_THREADS=N runs every test process on N libtorch/OpenBLAS threads (test/setup.ts), RLHF_TEST_SEED
// moves the learning runs' seeds (test/env.ts). --tiers=native,model runs only those tiers (CI's pass on Debian's
// libtorch 1.13). Other arguments are passed to `node --test`.
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

const TAGS = { '--numeric': '@numeric', '--learning': '@learning' };
const args = process.argv.slice(2);
const tags = args.filter((a) => a in TAGS).map((a) => TAGS[a]);
const only = args.find((a) => a.startsWith('--tiers='))?.slice('--tiers='.length).split(',');
const passThrough = args.filter((a) => !(a in TAGS) && !a.startsWith('--tiers='));

const ALL_TIERS = ['pure', 'native', 'model', 'cli', 'browser'];
if (process.env.RLHF_TEST_GPU === '1') ALL_TIERS.push('gpu');
const unknown = only?.filter((t) => !ALL_TIERS.includes(t)) ?? [];
if (unknown.length > 0) {
  console.error(`--tiers: unknown tier ${unknown.join(', ')} (tiers: ${ALL_TIERS.join(', ')})`);
  process.exit(1);
}
const tiers = only ?? ALL_TIERS;
const files = [];
for (const tier of tiers) {
  const dir = join('dist', 'test', tier);
  if (!existsSync(dir)) continue;
  for (const f of readdirSync(dir).sort()) {
    if (!f.endsWith('.test.js')) continue;
    const path = join(dir, f);
    if (tags.length > 0 && !tags.some((t) => readFileSync(path, 'utf8').includes(t))) continue;
    files.push(path);
  }
}
if (files.length === 0) {
  console.error(tags.length ? `no compiled test carries ${tags.join(' or ')}` : 'no compiled tests found under dist/test: run `npm run setup` first');
  process.exit(1);
}
const preload = process.env.RLHF_TEST_THREADS ? ['--import', './dist/test/setup.js'] : [];
const r = spawnSync(process.execPath, ['--expose-gc', ...preload, '--test', '--test-concurrency=1', ...passThrough, ...files], { stdio: 'inherit' });
process.exit(r.status ?? 1);
