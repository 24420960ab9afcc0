#!/usr/bin/env node
// Builds the native addon (native/ → <build dir>/rlhf_native.node) against one libtorch, chosen by:
//   1. LIBTORCH=/path (a libtorch distribution or a torch package directory);
//   2. RLHF_LIBTORCH=debian: the system's (Debian's libtorch-dev 1.13: /usr/lib/<triplet>/cmake/Torch);
//      RLHF_LIBTORCH=venv (the default): the pinned pip wheel in the package's own .venv/ (scripts/setup.sh
//      makes it); RLHF_LIBTORCH=/path/to/python: the `torch` of that interpreter (scripts/cuda-build.sh);
//   3. without RLHF_LIBTORCH and no .venv/: a Python `torch` whose share/cmake/Torch exists ($PYTHON, then
//      python3; Debian's python3-torch points at a cmake folder that does not exist, so it is skipped), then
//      the system's.
// RLHF_CMAKE_ARGS adds cmake -D arguments. RLHF_BUILD_DIR (default build/) is where the addon goes, so one checkout can hold a 2.x build, a 1.13
// one (build-debian/) and a CUDA one (build-cuda/); RLHF_ADDON points the library at any of them.
// Beside the addon, rlhf_native.json records the libtorch and the Python interpreter whose `torch` is that
// same libtorch (null for a bare libtorch): `rlhf bench` runs its baseline with that interpreter.
// Rebuilds only when the sources, the build script or the libtorch location changed (a stamp file holds
// their hash). Progress goes to stderr; `--print-torch` prints the chosen cmake dir and exits.
import { createHash } from 'node:crypto';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync, copyFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const outDir = resolve(root, process.env.RLHF_BUILD_DIR || 'build');
const buildDir = join(outDir, 'native');
const output = join(outDir, 'rlhf_native.node');
const stampFile = join(outDir, 'native.stamp');
const recordFile = join(outDir, 'rlhf_native.json');
const venvPython = join(root, '.venv', 'bin', 'python');
const log = (msg) => process.stderr.write(`[build-native] ${msg}\n`);

const fromPrefix = (p) => {
  for (const c of [join(p, 'share', 'cmake', 'Torch'), join(p, 'torch', 'share', 'cmake', 'Torch')]) {
    if (existsSync(join(c, 'TorchConfig.cmake'))) return c;
  }
  return null;
};

function pythonTorch(py) {
  const r = spawnSync(py, ['-c', 'import torch, os; print(os.path.dirname(torch.__file__))'], { encoding: 'utf8' });
  if (r.status !== 0) return null;
  const dir = fromPrefix(r.stdout.trim());
  return dir ? { dir, python: py } : null;
}

function systemTorch() {
  for (const lib of ['/usr/lib/x86_64-linux-gnu', '/usr/lib/aarch64-linux-gnu', '/usr/lib', '/usr/local/lib']) {
    const dir = join(lib, 'cmake', 'Torch');
    // Debian's python3-torch is the same libtorch as libtorch-dev: the baseline for this build.
    if (existsSync(join(dir, 'TorchConfig.cmake'))) return { dir, source: 'system', python: existsSync('/usr/bin/python3') ? '/usr/bin/python3' : null };
  }
  return null;
}

function torchCmakeDir() {
  if (process.env.LIBTORCH) {
    const dir = fromPrefix(resolve(process.env.LIBTORCH));
    if (!dir) throw new Error(`LIBTORCH=${process.env.LIBTORCH} has no share/cmake/Torch/TorchConfig.cmake`);
    return { dir, source: 'LIBTORCH', python: process.env.PYTHON ?? null };
  }
  const choice = process.env.RLHF_LIBTORCH;
  if (choice === 'debian' || choice === 'system') {
    const t = systemTorch();
    if (!t) throw new Error(`RLHF_LIBTORCH=${choice}: no /usr/lib/<triplet>/cmake/Torch; install libtorch-dev`);
    return t;
  }
  if (choice && choice !== 'venv') {
    const t = pythonTorch(choice);
    if (!t) throw new Error(`RLHF_LIBTORCH=${choice}: that interpreter has no torch with share/cmake/Torch (expected venv, debian or a python path)`);
    return { ...t, source: `python torch (${choice})` };
  }
  if (existsSync(venvPython)) {
    const t = pythonTorch(venvPython);
    if (t) return { ...t, source: 'venv' };
    if (choice === 'venv') throw new Error(`RLHF_LIBTORCH=venv: ${venvPython} has no torch; run scripts/setup.sh`);
  } else if (choice === 'venv') throw new Error(`RLHF_LIBTORCH=venv: ${venvPython} not found; run scripts/setup.sh`);
  for (const py of [process.env.PYTHON, 'python3'].filter(Boolean)) {
    const t = pythonTorch(py);
    if (t) return { ...t, source: `python torch (${py})` };
  }
  const t = systemTorch();
  if (t) return t;
  throw new Error('libtorch not found: run scripts/setup.sh (pip torch into .venv/), install libtorch-dev (RLHF_LIBTORCH=debian) or set LIBTORCH=/path/to/libtorch');
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
// CMake caches every library it found: a build folder configured for another libtorch starts over.
const cache = join(buildDir, 'CMakeCache.txt');
const cachedTorch = existsSync(cache) ? /^Torch_DIR:[A-Z]+=(.*)$/m.exec(readFileSync(cache, 'utf8'))?.[1] : undefined;
if (cachedTorch !== undefined && cachedTorch !== torch.dir) rmSync(buildDir, { recursive: true, force: true });
mkdirSync(buildDir, { recursive: true });
const run = (args) => execFileSync('cmake', args, { stdio: ['ignore', process.stderr, process.stderr] });
run([
  '-S', join(root, 'native'), '-B', buildDir, '-DCMAKE_BUILD_TYPE=Release',
  `-DTorch_DIR=${torch.dir}`, `-DNODE_INCLUDE_DIR=${nodeInclude}`, `-DNODE_ADDON_API_DIR=${addonApi}`,
  // TorchConfig.cmake looks for Caffe2's config and its libraries with the system paths first: with Debian's
  // libtorch-dev also installed, a wheel build would otherwise take Debian's libtorch.so and headers.
  `-DCMAKE_PREFIX_PATH=${resolve(torch.dir, '..', '..', '..')}`,
  // Extra cache entries for unusual layouts (scripts/cuda-build.sh names the wheel's libnvrtc this way).
  ...(process.env.RLHF_CMAKE_ARGS ?? '').split(/\s+/).filter(Boolean),
]);
run(['--build', buildDir, '--parallel', String(Math.max(1, Number(process.env.BUILD_JOBS ?? 2)))]);
// Install atomically: a half-copied .node would crash the next process that loads it.
copyFileSync(join(buildDir, 'rlhf_native.node'), `${output}.tmp`);
renameSync(`${output}.tmp`, output);
writeFileSync(`${recordFile}.tmp`, JSON.stringify({ torchCmakeDir: torch.dir, source: torch.source, python: torch.python }) + '\n');
renameSync(`${recordFile}.tmp`, recordFile);
writeFileSync(stampFile, hash);
log(`built ${output}`);
