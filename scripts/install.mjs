#!/usr/bin/env node
// npm's install hook. Installed as a package (`npm install rlhf-ts`, or a tarball from `npm pack`), this
// builds the native addon against the libtorch it finds, through scripts/build-native.mjs (the one build
// step, whatever libtorch it settles on). In a checkout (src/ and tsconfig.json present) it does nothing:
// scripts/setup.sh builds there, after the system packages it installs.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
if (existsSync(join(root, 'src')) && existsSync(join(root, 'tsconfig.json'))) process.exit(0);

const r = spawnSync(process.execPath, [join(root, 'scripts', 'build-native.mjs')], { stdio: 'inherit' });
if (r.status !== 0) {
  process.stderr.write(
    'rlhf-ts: the native addon did not build (the reason is above). It needs cmake, a C++17 compiler and libtorch:\n' +
      '  Debian/Ubuntu: sudo apt-get install -y --no-install-recommends cmake g++ libtorch-dev libopenblas0-pthread\n' +
      '  or any libtorch: LIBTORCH=/path/to/libtorch npm rebuild rlhf-ts\n',
  );
  process.exit(r.status ?? 1);
}
