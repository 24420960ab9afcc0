#!/usr/bin/env node
// Builds the native addon (native/ → build/rlhf_native.node) against the first libtorch found:
//   1. LIBTORCH=/path (a libtorch distribution or a torch package directory);
//   2. a Python `torch` whose share/cmake/Torch exists (pip wheels; Debian's python3-torch points at a
//      cmake folder that does not exist, so it is skipped);
//   3. the system's (Debian's libtorch-dev: /usr/lib/<triplet>/cmake/Torch).
// Rebuilds only when the sources, the build script or the libtorch location changed (a stamp file holds
// their hash). Progress goes to stderr; `--print-torch` prints the chosen cmake dir and exits.
import { createHash } from 'node:crypto';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, writeFileSync, copyFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const buildDir = join(root, 'build', 'native');
const output = join(root, 'build', 'rlhf_native.node');
const stampFile = join(root, 'build', 'native.stamp');
const log = (msg) => process.stderr.write(`[build-native] ${msg}\n`);

function torchCmakeDir() {
  const fromPrefix = (p) => {
    for (const c of [join(p, 'share', 'cmake', 'Torch'), join(p, 'torch', 'share', 'cmake', 'Torch')]) {
      if (existsSync(join(c, 'TorchConfig.cmake'))) return c;
    }
    return null;
  };
  if (process.env.LIBTORCH) {
    const dir = fromPrefix(resolve(process.env.LIBTORCH));
    if (!dir) throw new Error(`LIBTORCH=${process.env.LIBTORCH} has no share/cmake/Torch/TorchConfig.cmake`);
    return { dir, source: 'LIBTORCH' };
  }
  for (const py of [process.env.PYTHON, 'python3'].filter(Boolean)) {
    const r = spawnSync(py, ['-c', 'import torch, os; print(os.path.dirname(torch.__file__))'], { encoding: 'utf8' });
    if (r.status === 0) {
      const dir = fromPrefix(r.stdout.trim());
      if (dir) return { dir, source: `python torch (${py})` };
    }
  }
  for (const lib of ['/usr/lib/x86_64-linux-gnu', '/usr/lib/aarch64-linux-gnu', '/usr/lib', '/usr/local/lib']) {
    const dir = join(lib, 'cmake', 'Torch');
    if (existsSync(join(dir, 'TorchConfig.cmake'))) return { dir, source: 'system' };
  }
  throw new Error('libtorch not found: install libtorch-dev (Debian/Ubuntu) or set LIBTORCH=/path/to/libtorch');
}

function sourcesHash(torchDir) {
  const h = createHash('sha256');
  h.update(torchDir);
  h.update(process.version);
  const files = readdirSync(join(root, 'native')).sort();
  for (const f of files) h.update(f).update(readFileSync(join(root, 'native', f)));
  h.update(readFileSync(fileURLToPath(import.meta.url)));
  return h.digest('hex');
}

const torch = torchCmakeDir();
if (process.argv.includes('--print-torch')) {
  console.log(torch.dir);
  process.exit(0);
}
const hash = sourcesHash(torch.dir);
if (existsSync(output) && existsSync(stampFile) && readFileSync(stampFile, 'utf8') === hash) {
  log(`up to date (${output})`);
  process.exit(0);
}

log(`libtorch: ${torch.dir} (${torch.source})`);
const nodeInclude = join(dirname(dirname(process.execPath)), 'include', 'node');
if (!existsSync(join(nodeInclude, 'node_api.h'))) throw new Error(`Node headers not found at ${nodeInclude}`);
const addonApi = dirname(fileURLToPath(import.meta.resolve('node-addon-api/package.json')));
mkdirSync(buildDir, { recursive: true });
const run = (args) => execFileSync('cmake', args, { stdio: ['ignore', process.stderr, process.stderr] });
run([
  '-S', join(root, 'native'), '-B', buildDir, '-DCMAKE_BUILD_TYPE=Release',
  `-DTorch_DIR=${torch.dir}`, `-DNODE_INCLUDE_DIR=${nodeInclude}`, `-DNODE_ADDON_API_DIR=${addonApi}`,
]);
run(['--build', buildDir, '--parallel', String(Math.max(1, Number(process.env.BUILD_JOBS ?? 2)))]);
// Install atomically: a half-copied .node would crash the next process that loads it.
copyFileSync(join(buildDir, 'rlhf_native.node'), `${output}.tmp`);
renameSync(`${output}.tmp`, output);
writeFileSync(stampFile, hash);
log(`built ${output}`);
