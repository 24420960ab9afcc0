/**
 * Typed config files (src/config.ts) against the reward-model config (src/reward/config.ts): defaults
 * merged under what a file gives, unknown keys named with the nearest valid one at any depth, wrong types
 * and out-of-range values named by field, `--set` values parsed as YAML, and `describeSchema` covering
 * every field of the config type.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';

import { deepMerge, describeSchema, loadConfig, MAX_CONFIG_BYTES, parseSet, validateConfig, type Schema } from '../../src/config.js';
import { readJsonFile } from '../../src/atomic.js';
import { REWARD_DEFAULTS, REWARD_SCHEMA, type RewardTrainConfig } from '../../src/reward/config.js';

/** The package root: the nearest directory above this compiled file that holds package.json. */
function packageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'package.json'))) {
    const up = dirname(dir);
    if (up === dir) throw new Error('package.json not found above the test file');
    dir = up;
  }
  return dir;
}

const validate = (raw: unknown): RewardTrainConfig => validateConfig(raw, REWARD_DEFAULTS, REWARD_SCHEMA, 'cfg.yaml');
const rejects = (raw: unknown, message: RegExp) => assert.throws(() => validate(raw), message);

/** Every leaf path of a plain object, depth first in key order ('train.lr', …). */
function leafPaths(o: object, prefix = ''): string[] {
  return Object.entries(o).flatMap(([k, v]) => {
    const key = prefix ? `${prefix}.${k}` : k;
    return v !== null && typeof v === 'object' && !Array.isArray(v) ? leafPaths(v as object, key) : [key];
  });
}

const TMP = mkdtempSync(join(tmpdir(), 'rlhf-config-test-'));
after(() => rmSync(TMP, { recursive: true, force: true }));

describe('validateConfig', () => {
  test('no config is the defaults, as a copy', () => {
    const c = validate(undefined);
    assert.deepEqual(c, REWARD_DEFAULTS);
    assert.notEqual(c, REWARD_DEFAULTS);
    assert.notEqual(c.train, REWARD_DEFAULTS.train);
    assert.deepEqual(validate(null), REWARD_DEFAULTS);
    assert.deepEqual(validate({}), REWARD_DEFAULTS);
  });

  test('a partial config is merged over the defaults at every depth, leaving the defaults untouched', () => {
    const before = structuredClone(REWARD_DEFAULTS);
    const c = validate({ seed: 3, train: { lr: 0.1 }, model: { scratch: { layers: 4 } } });
    assert.equal(c.seed, 3);
    assert.equal(c.train.lr, 0.1);
    assert.equal(c.train.epochs, REWARD_DEFAULTS.train.epochs);
    assert.equal(c.model.scratch.layers, 4);
    assert.equal(c.model.scratch.hiddenSize, REWARD_DEFAULTS.model.scratch.hiddenSize);
    assert.deepEqual(c.data, REWARD_DEFAULTS.data);
    assert.deepEqual(REWARD_DEFAULTS, before);
  });

  test('an empty section (YAML `train:`) takes its defaults', () => {
    assert.deepEqual(validate({ train: null }).train, REWARD_DEFAULTS.train);
  });

  test('an unknown key names the nearest valid key, with its full path, at any depth', () => {
    rejects({ sed: 1 }, /^Error: cfg\.yaml: unknown key 'sed' \(did you mean 'seed'\?\)$/);
    rejects({ train: { lrr: 1 } }, /unknown key 'train\.lrr' \(did you mean 'train\.lr'\?\)/);
    rejects({ model: { scratch: { hiddenSise: 16 } } }, /unknown key 'model\.scratch\.hiddenSise' \(did you mean 'model\.scratch\.hiddenSize'\?\)/);
  });

  test("names inherited from Object.prototype are unknown keys, not fields ('constructor', 'toString', '__proto__')", () => {
    rejects({ constructor: 1 }, /unknown key 'constructor'/);
    rejects({ toString: {} }, /unknown key 'toString'/);
    rejects({ train: { hasOwnProperty: 1 } }, /unknown key 'train\.hasOwnProperty'/);
    rejects(JSON.parse('{"__proto__": {"lr": 1}}'), /unknown key '__proto__'/);
  });

  test('a wrong type names the field, what it expected and what it got', () => {
    rejects({ train: { lr: 'fast' } }, /^Error: cfg\.yaml: 'train\.lr' must be a number, got "fast"$/);
    rejects({ train: { lr: null } }, /'train\.lr' must be a number, got null/);
    rejects({ data: { path: 7 } }, /'data\.path' must be a string, got 7/);
    rejects({ data: { skipInvalid: 'yes' } }, /'data\.skipInvalid' must be true or false, got "yes"/);
    rejects({ train: 5 }, /cfg\.yaml: train must be a mapping, got 5/);
    rejects([1, 2], /cfg\.yaml: config must be a mapping/);
  });

  test('integers, minimums and non-finite numbers are checked', () => {
    rejects({ train: { epochs: 1.5 } }, /'train\.epochs' must be an integer, got 1\.5/);
    rejects({ train: { epochs: 0 } }, /'train\.epochs' must be >= 1, got 0/);
    rejects({ train: { lr: -1e-3 } }, /'train\.lr' must be >= 0/);
    rejects({ train: { lr: Number.NaN } }, /'train\.lr' must be a number/);
    rejects({ train: { lr: Infinity } }, /'train\.lr' must be a number/);
  });

  test('an enum value outside its values lists the allowed ones and the nearest', () => {
    rejects({ loss: { type: 'bt' } }, /'loss\.type' must be one of bradley_terry, label_smoothed_bt/);
    rejects({ train: { schedule: 'cosin' } }, /one of constant, linear, cosine \(nearest: 'cosine'\)/);
    assert.equal(validate({ loss: { type: 'label_smoothed_bt' } }).loss.type, 'label_smoothed_bt');
  });

  test('optional fields take null; list fields must be lists', () => {
    interface Small { name?: string; tags: string[]; n: number }
    const schema: Schema<Small> = { name: { doc: 'a name', optional: true }, tags: { doc: 'tags' }, n: { doc: 'a count', integer: true } };
    const defaults: Small = { name: 'x', tags: ['a'], n: 1 };
    assert.deepEqual(validateConfig({ name: null, tags: ['b', 'c'] }, defaults, schema, 'w'), { name: undefined, tags: ['b', 'c'], n: 1 });
    assert.throws(() => validateConfig({ tags: 'b' }, defaults, schema, 'w'), /'tags' must be a list, got "b"/);
    assert.throws(() => validateConfig({ n: null }, defaults, schema, 'w'), /'n' must be a number, got null/);
  });
});

describe('parseSet', () => {
  test('parses dotted keys into nested objects and values as YAML scalars and lists', () => {
    const got = parseSet(['train.lr=3e-4', 'train.epochs=2', 'seed=7', 'data.path=data/x.jsonl', 'data.skipInvalid=true', 'tags=[a, 2]', 'ver="007"', 'empty=']);
    assert.deepEqual(got, {
      train: { lr: 3e-4, epochs: 2 }, seed: 7, data: { path: 'data/x.jsonl', skipInvalid: true }, tags: ['a', 2], ver: '007', empty: null,
    });
  });

  test('the value is everything after the first =, and a later assignment wins', () => {
    assert.deepEqual(parseSet(['a=b=c']), { a: 'b=c' });
    assert.deepEqual(parseSet(['a.b=1', 'a.b=2', 'a.c=3']), { a: { b: 2, c: 3 } });
    assert.deepEqual(parseSet(['a=1', 'a.b=2']), { a: { b: 2 } });
  });

  test('an assignment without a key or an = is an error', () => {
    assert.throws(() => parseSet(['train.lr']), /--set needs key=value, got 'train\.lr'/);
    assert.throws(() => parseSet(['=3']), /--set needs key=value, got '=3'/);
  });

  test("'__proto__' is a key like any other: no prototype is replaced or polluted", () => {
    const got = parseSet(['__proto__.polluted=1']);
    assert.equal(({} as Record<string, unknown>).polluted, undefined);
    assert.equal(Object.getPrototypeOf(got), Object.prototype);
    assert.deepEqual(Object.keys(got), ['__proto__']);
    assert.throws(() => loadConfig(undefined, ['__proto__.lr=1'], REWARD_DEFAULTS, REWARD_SCHEMA), /--set __proto__\.lr=1: unknown key '__proto__'/);
  });
});

describe('deepMerge', () => {
  test('merges objects recursively; overrides win; lists and scalars are replaced, not merged', () => {
    const base = { a: { b: 1, c: [1, 2] }, d: 'x', e: { f: 1 } };
    const over = { a: { c: [3] }, d: 'y', g: true };
    const frozen = structuredClone({ base, over });
    assert.deepEqual(deepMerge(base, over), { a: { b: 1, c: [3] }, d: 'y', e: { f: 1 }, g: true });
    assert.deepEqual({ base, over }, frozen, 'inputs must not be modified');
  });

  test('undefined keeps the base; a non-object on either side replaces', () => {
    assert.deepEqual(deepMerge({ a: 1 }, undefined), { a: 1 });
    assert.equal(deepMerge({ a: 1 }, 5), 5);
    assert.deepEqual(deepMerge(5, { a: 1 }), { a: 1 });
    assert.deepEqual(deepMerge({ a: { b: 1 } }, { a: null }), { a: null });
  });

  test("an override key '__proto__' stays an own key", () => {
    const got = deepMerge({ a: 1 }, JSON.parse('{"__proto__": {"x": 1}}')) as Record<string, unknown>;
    assert.deepEqual(Object.keys(got), ['a', '__proto__']);
    assert.equal(Object.getPrototypeOf(got), Object.prototype);
  });
});

describe('loadConfig', () => {
  const file = (name: string, text: string) => {
    const p = join(TMP, name);
    writeFileSync(p, text);
    return p;
  };

  test('reads YAML (or JSON), applies --set over it, validates, and names the file in errors', () => {
    const p = file('ok.yaml', 'seed: 4\ntrain:\n  lr: 0.01\n  epochs: 3\n');
    const c = loadConfig(p, ['train.epochs=5', 'data.path=x.jsonl'], REWARD_DEFAULTS, REWARD_SCHEMA);
    assert.equal(c.seed, 4);
    assert.equal(c.train.lr, 0.01);
    assert.equal(c.train.epochs, 5, '--set wins over the file');
    assert.equal(c.data.path, 'x.jsonl');
    assert.equal(loadConfig(file('ok.json', '{"seed": 9}'), [], REWARD_DEFAULTS, REWARD_SCHEMA).seed, 9);
    assert.deepEqual(loadConfig(file('empty.yaml', ''), [], REWARD_DEFAULTS, REWARD_SCHEMA), REWARD_DEFAULTS);
    const bad = file('bad.yaml', 'train:\n  lr: fast\n');
    assert.throws(() => loadConfig(bad, [], REWARD_DEFAULTS, REWARD_SCHEMA), new RegExp(`^Error: ${bad.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: 'train\\.lr' must be a number, got "fast"$`));
  });

  test('an unreadable file and invalid YAML are one-line errors naming the file', () => {
    assert.throws(() => loadConfig(join(TMP, 'nope.yaml'), [], REWARD_DEFAULTS, REWARD_SCHEMA), /config .*nope\.yaml: cannot be read/);
    const p = file('broken.yaml', 'train: [1, 2\nseed: 1\n');
    assert.throws(() => loadConfig(p, [], REWARD_DEFAULTS, REWARD_SCHEMA), (e: Error) => /broken\.yaml: invalid YAML/.test(e.message) && !e.message.includes('\n'));
  });

  test('configs/rm-sst2.yaml is a valid reward config', () => {
    const c = loadConfig(join(packageRoot(), 'configs', 'rm-sst2.yaml'), [], REWARD_DEFAULTS, REWARD_SCHEMA);
    assert.equal(c.data.format, 'sst2');
    assert.equal(c.model.init, 'scratch');
    assert.equal(c.train.threads, 1);
  });
});

describe('describeSchema', () => {
  const lines = describeSchema(REWARD_DEFAULTS, REWARD_SCHEMA);

  test('lists every leaf field of the config type once, in order, with its default', () => {
    const leaves = leafPaths(REWARD_DEFAULTS);
    assert.deepEqual(lines.map((l) => l.split(' ')[0]), leaves);
    lines.forEach((l, i) => {
      const value = leaves[i]!.split('.').reduce<unknown>((o, k) => (o as Record<string, unknown>)[k], REWARD_DEFAULTS);
      assert.ok(l.startsWith(`${leaves[i]} (default ${JSON.stringify(value)})`), l);
    });
  });

  test('shows the allowed values of enums and each field\'s doc', () => {
    assert.ok(lines.includes("loss.type (default \"bradley_terry\") one of bradley_terry|label_smoothed_bt|plackett_luce|gaussian: loss (src/reward/losses.ts)"), lines.join('\n'));
    assert.ok(lines.every((l) => /: \S/.test(l)), 'every field has a doc');
  });

  test('the schema documents exactly the fields the defaults have', () => {
    // validateConfig walks the schema, so a field missing from it could never be set from a file.
    const schemaLeaves = (s: object, prefix = ''): string[] => Object.entries(s).flatMap(([k, v]) => {
      const key = prefix ? `${prefix}.${k}` : k;
      return typeof (v as { doc?: unknown }).doc === 'string' ? [key] : schemaLeaves(v as object, key);
    });
    assert.deepEqual(schemaLeaves(REWARD_SCHEMA), leafPaths(REWARD_DEFAULTS));
  });
});

describe('hostile config files and overrides (issue 15)', () => {
  const f = (name: string, text: string): string => {
    const p = join(TMP, name);
    writeFileSync(p, text);
    return p;
  };

  test('a top level that is a list or a scalar is an error naming the file, also with --set', () => {
    for (const [name, text, got] of [['list.yaml', '- a\n- b\n', 'a list'], ['scalar.yaml', '42\n', 'a number (42)'], ['string.yaml', 'hello\n', 'a string ("hello")']]) {
      const p = f(name, text);
      for (const sets of [[], ['data.path=x.jsonl']]) {
        assert.throws(() => loadConfig(p, sets, REWARD_DEFAULTS, REWARD_SCHEMA), { message: `config ${p}: the top level must be a mapping of fields (key: value), got ${got}` });
      }
    }
  });

  test('a device, a directory or a file over 1 MB is refused before it is read', () => {
    assert.throws(() => loadConfig('/dev/zero', [], REWARD_DEFAULTS, REWARD_SCHEMA), { message: 'config /dev/zero: not a regular file' });
    assert.throws(() => loadConfig(TMP, [], REWARD_DEFAULTS, REWARD_SCHEMA), /not a regular file/);
    const big = f('big.yaml', `# ${'x'.repeat(MAX_CONFIG_BYTES)}\nseed: 1\n`);
    assert.throws(() => loadConfig(big, [], REWARD_DEFAULTS, REWARD_SCHEMA), new RegExp(`big\\.yaml: \\d+ bytes, over the limit of ${MAX_CONFIG_BYTES}`));
  });

  test('--set errors name the argument, not the file; NaN and Infinity are shown as such', () => {
    const p = f('fine.yaml', 'seed: 1\n');
    assert.throws(() => loadConfig(p, ['train.lr=.nan'], REWARD_DEFAULTS, REWARD_SCHEMA), { message: "--set train.lr=.nan: 'train.lr' must be a number, got NaN" });
    assert.throws(() => loadConfig(p, ['train.lr=-.inf'], REWARD_DEFAULTS, REWARD_SCHEMA), { message: "--set train.lr=-.inf: 'train.lr' must be a number, got -Infinity" });
    assert.throws(() => loadConfig(p, ['train.lrr=1'], REWARD_DEFAULTS, REWARD_SCHEMA), /^Error: --set train\.lrr=1: unknown key 'train\.lrr'/);
    assert.throws(() => loadConfig(p, ['seed=[1, 2'], REWARD_DEFAULTS, REWARD_SCHEMA), /^Error: --set seed=\[1, 2: invalid YAML value/);
    assert.throws(() => loadConfig(f('nan.yaml', 'train:\n  lr: .nan\n'), [], REWARD_DEFAULTS, REWARD_SCHEMA), /nan\.yaml: 'train\.lr' must be a number, got NaN$/);
  });

  test('ranges are checked at config time: labelSmoothing, threads, seeds, splitRatio', () => {
    for (const [set, message] of [
      ['loss.labelSmoothing=1.5', "'loss.labelSmoothing' must be < 0.5, got 1.5"],
      ['train.threads=1000', "'train.threads' must be <= 256, got 1000"],
      ['train.threads=-2', "'train.threads' must be >= 0, got -2"],
      ['seed=1e300', "'seed' must be <= 4294967295, got 1e+300"],
      ['seed=-1', "'seed' must be >= 0, got -1"],
      ['data.splitRatio=2', "'data.splitRatio' must be <= 1, got 2"],
    ]) {
      assert.throws(() => loadConfig(undefined, [set], REWARD_DEFAULTS, REWARD_SCHEMA), { message: `--set ${set}: ${message}` });
    }
  });

  test('a run file that is empty or torn is named when read', () => {
    const empty = f('trainer.json', '');
    assert.throws(() => readJsonFile(empty), new RegExp(`^Error: ${empty.replace(/\./g, '\\.')} is empty`));
    const torn = f('manifest.json', '{"a": 1');
    assert.throws(() => readJsonFile(torn), new RegExp(`^Error: ${torn.replace(/\./g, '\\.')} is not valid JSON`));
    assert.throws(() => readJsonFile(join(TMP, 'absent.json')), /absent\.json: cannot be read \(ENOENT\)/);
  });
});
