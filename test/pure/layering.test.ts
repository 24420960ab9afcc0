/**
 * Layering holds: a module never imports from a layer above its own. The order (README, "Map of the
 * code") is
 *   base < tensor < nn < models = text < generate < data = feedback < reward < rlhf = serve < lab = app < cli < the package root
 * where `base` is the top-level files every layer may use because they import no layer themselves:
 * src/atomic.ts (atomic writes, bounded reads), src/config.ts (config files and their schemas) and
 * src/run-dir.ts (run lock, metrics log, resume check), src/random.ts (the seeded PRNGs), src/stats.ts
 * (mean, standard error, correlation); src/machine.ts reads the engine's facts, so it
 * sits with tensor. The check parses every `import … from` / `export … from` of src/ (type-only ones
 * included: a type import is a dependency too) and lists every edge that points up.
 */
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

function root(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'package.json'))) dir = dirname(dir);
  return dir;
}

const SRC = join(root(), 'src');

/** Each layer's rank; a file may import its own rank or lower. */
const RANK: Readonly<Record<string, number>> = {
  base: 0,
  tensor: 1,
  nn: 2,
  models: 3,
  text: 3,
  generate: 4,
  data: 5,
  feedback: 5,
  reward: 6,
  rlhf: 7,
  serve: 7,
  lab: 8,
  app: 8,
  cli: 9,
  root: 10,
};

/** The top-level files' layers (a file in a folder is in that folder's layer). */
const TOP_LEVEL: Readonly<Record<string, string>> = {
  'atomic.ts': 'base',
  'config.ts': 'base',
  'random.ts': 'base',
  'run-dir.ts': 'base',
  'stats.ts': 'base',
  'tensorboard.ts': 'base',
  'machine.ts': 'tensor',
  'index.ts': 'root',
};

function layerOf(file: string): string {
  const rel = relative(SRC, file).split('/');
  if (rel.length === 1) {
    const layer = TOP_LEVEL[rel[0]!];
    if (!layer) throw new Error(`src/${rel[0]}: a top-level file with no layer: add it to TOP_LEVEL and the README's map`);
    return layer;
  }
  if (!(rel[0]! in RANK)) throw new Error(`src/${rel[0]}/: a folder with no layer: add it to RANK and the README's map`);
  return rel[0]!;
}

function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name);
    return statSync(p).isDirectory() ? sources(p) : p.endsWith('.ts') ? [p] : [];
  });
}

/** The relative module specifiers a file imports or re-exports. */
function importsOf(text: string): string[] {
  const specs = [...text.matchAll(/^\s*(?:import|export)\s[^;]*?\sfrom\s+'(\.[^']+)'/gms)].map((m) => m[1]!);
  const dynamic = [...text.matchAll(/import\(\s*'(\.[^']+)'\s*\)/g)].map((m) => m[1]!);
  return [...specs, ...dynamic];
}

/** Every import that points to a higher layer, as 'src/a.ts (layer) → src/b.ts (layer)'. */
export function upwardImports(): string[] {
  const bad: string[] = [];
  for (const file of sources(SRC)) {
    const from = layerOf(file);
    for (const spec of importsOf(readFileSync(file, 'utf8'))) {
      const target = resolve(dirname(file), spec.replace(/\.js$/, '.ts'));
      if (!target.startsWith(SRC + '/')) continue; // outside src/ (bench, package.json): not layered here
      const to = layerOf(target);
      if (RANK[to]! > RANK[from]!) bad.push(`src/${relative(SRC, file)} (${from}) → src/${relative(SRC, target)} (${to})`);
    }
  }
  return bad;
}

test('the import parser sees static, re-exported, multi-line, type-only and dynamic imports', () => {
  const text =
    "import { a } from './a.js';\nimport type { B } from '../b.js';\nexport { c } from './c.js';\nimport {\n  d,\n  e,\n} from './d.js';\nconst f = await import('./f.js');\nimport { g } from 'node:fs';\n";
  assert.deepEqual(importsOf(text), ['./a.js', '../b.js', './c.js', './d.js', './f.js']);
});

test('no module imports from a layer above its own', () => {
  assert.deepEqual(upwardImports(), []);
});

test('nothing a user reads points at ../shared (a folder of this workspace, not of the package)', () => {
  const ROOT = root();
  const readable = [
    ...sources(SRC),
    ...readdirSync(join(ROOT, 'configs')).map((f) => join(ROOT, 'configs', f)),
    join(ROOT, 'README.md'),
    join(ROOT, 'bin', 'rlhf.js'),
  ];
  const hits = readable.filter((f) => /(^|[\s(`'"])(\.\.\/)?shared\/[A-Z]+\.md/m.test(readFileSync(f, 'utf8'))).map((f) => relative(ROOT, f));
  assert.deepEqual(hits, []);
});

test('no algorithm folder of src/rlhf imports another: what they share lives in core/, online/, offline.ts, reference.ts', () => {
  const ALGORITHMS = new Set(['ppo', 'grpo', 'rloo', 'remax', 'reinforce', 'reinforcepp', 'dpo', 'kto', 'sft']);
  const folderOf = (file: string): string | undefined => {
    const rel = relative(join(SRC, 'rlhf'), file).split('/');
    return rel.length === 2 ? rel[0] : undefined;
  };
  const bad: string[] = [];
  for (const file of sources(join(SRC, 'rlhf'))) {
    const from = folderOf(file);
    if (!from || !ALGORITHMS.has(from)) continue; // raft (SFT on best-of-N winners) and iterated compose algorithms
    for (const spec of importsOf(readFileSync(file, 'utf8'))) {
      const to = folderOf(resolve(dirname(file), spec.replace(/\.js$/, '.ts')));
      if (to && to !== from && ALGORITHMS.has(to)) bad.push(`src/rlhf/${from}/ → src/rlhf/${to}/ (${relative(SRC, file)})`);
    }
  }
  assert.deepEqual(bad, []);
});
