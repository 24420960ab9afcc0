/**
 * The package root (src/index.ts) is the library's contract: every trainer with its config type and
 * defaults, every registry, and a doc comment on each export (read through the TypeScript compiler, at
 * the export's definition). The check reads the sources only: no native code runs.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

/** The repository root: the nearest folder above this file with a package.json (tests run from dist/). */
function root(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'package.json'))) dir = dirname(dir);
  return dir;
}

const ROOT = root();

function publicExports(): { name: string; documented: boolean }[] {
  const index = join(ROOT, 'src', 'index.ts');
  const program = ts.createProgram([index], {
    target: ts.ScriptTarget.ES2022,
    module: ts.ModuleKind.NodeNext,
    moduleResolution: ts.ModuleResolutionKind.NodeNext,
    strict: true,
    noEmit: true,
  });
  const checker = program.getTypeChecker();
  const moduleSymbol = checker.getSymbolAtLocation(program.getSourceFile(index)!)!;
  return checker.getExportsOfModule(moduleSymbol).map((s) => {
    const target = s.flags & ts.SymbolFlags.Alias ? checker.getAliasedSymbol(s) : s;
    const docs = ts.displayPartsToString(target.getDocumentationComment(checker)).trim();
    return { name: s.getName(), documented: docs.length > 0 };
  });
}

test('the package root exports every trainer, its config and defaults, and the registries', () => {
  const names = new Set(publicExports().map((e) => e.name));
  const want = [
    'trainSft',
    'SFT_DEFAULTS',
    'trainRewardModel',
    'REWARD_DEFAULTS',
    'trainPpo',
    'PPO_DEFAULTS',
    'trainGrpo',
    'GRPO_DEFAULTS',
    'trainRloo',
    'RLOO_DEFAULTS',
    'trainRemax',
    'REMAX_DEFAULTS',
    'trainReinforce',
    'REINFORCE_DEFAULTS',
    'trainReinforcepp',
    'REINFORCEPP_DEFAULTS',
    'trainDpo',
    'DPO_DEFAULTS',
    'trainKto',
    'KTO_DEFAULTS',
    'trainRaft',
    'RAFT_DEFAULTS',
    'trainIterated',
    'ITERATED_DEFAULTS',
    'bestOfN',
    'ONLINE_ALGORITHMS',
    'PREFERENCE_LOSSES',
    'REWARD_LOSSES',
    'KL_ESTIMATORS',
    'REWARD_FUNCTIONS',
    'parseRewardSpec',
    'gae',
    'groupAdvantages',
    'dpoSigmoidLoss',
    'loadModel',
    'loadTokenizer',
    'generate',
    'tokenLogprobs',
    'runDemo',
    'LAB_EXPERIMENTS',
    'goldReward',
  ];
  for (const n of want) assert.ok(names.has(n), `src/index.ts does not export ${n}`);
});

test('every export of the package root has a doc comment', () => {
  const undocumented = publicExports()
    .filter((e) => !e.documented)
    .map((e) => e.name);
  assert.deepEqual(undocumented, [], `exports without a doc comment at their definition: ${undocumented.join(', ')}`);
});
