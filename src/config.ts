/**
 * Typed configuration files (YAML or JSON) with `--set key.path=value` overrides. A config type is
 * described by its defaults plus a schema of field docs; anything unknown is an error that names the
 * nearest valid key, and a wrong type names the field, what it expected and what it got.
 */
import { parse as parseYaml } from 'yaml';
import { readBoundedText } from './atomic.js';

/**
 * Per field: its documentation and, for strings, the allowed values; for numbers the range (`min` and
 * `max` inclusive, `below` exclusive). Nested objects nest.
 */
export type FieldDoc = {
  doc: string; oneOf?: readonly string[]; min?: number; max?: number; below?: number; integer?: boolean; optional?: boolean;
  items?: 'string' | 'number';
};

/**
 * The names of a registry, for a schema's `oneOf`: a config enum is typed by the registry's keys and
 * checked against the same keys, so adding an entry to the registry is the whole change.
 */
export function namesOf<K extends string>(registry: Readonly<Record<K, unknown>>): readonly K[] {
  return Object.keys(registry) as K[];
}

/** Seeds are 32-bit: every RNG here takes `seed >>> 0`, so 2^32 and 1e300 would silently alias a smaller seed. */
export const SEED_RANGE = { integer: true, min: 0, max: 2 ** 32 - 1 } as const;
/** More threads than this only oversubscribes the cores (a thread pool of 1000 ran 20× slower). */
export const MAX_THREADS = 256;

/** A config type's schema: a FieldDoc per leaf field, nested like the config (validateConfig, describeSchema). */
export type Schema<T> = { [K in keyof T]: T[K] extends object ? (T[K] extends unknown[] ? FieldDoc : Schema<T[K]>) : FieldDoc };

/** Configs are hand-written YAML: a megabyte is far beyond any real one, and bounds what a mistake can read. */
export const MAX_CONFIG_BYTES = 1 << 20;

/**
 * A value as a message shows it: JSON, except the numbers JSON has no spelling for (NaN and ±Infinity,
 * which JSON.stringify turns into "null"), and long values cut short.
 */
export function showValue(v: unknown): string {
  if (typeof v === 'number' && !Number.isFinite(v)) return String(v);
  if (v === undefined) return 'nothing';
  const s = JSON.stringify(v, (_, x: unknown) => (typeof x === 'number' && !Number.isFinite(x) ? String(x) : x)) ?? String(v);
  return s.length > 80 ? `${s.slice(0, 77)}...` : s;
}

/** What a YAML document's top level is, for the message when it is not a mapping. */
function kindOf(v: unknown): string {
  return Array.isArray(v) ? 'a list' : v === null ? 'null' : `a ${typeof v} (${showValue(v)})`;
}

function isObj(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

/** Levenshtein distance, for "did you mean" suggestions. */
export function editDistance(a: string, b: string): number {
  const d = Array.from({ length: a.length + 1 }, (_, i) => [i, ...new Array<number>(b.length).fill(0)]);
  for (let j = 1; j <= b.length; j++) d[0]![j] = j;
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      d[i]![j] = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
  }
  return d[a.length]![b.length]!;
}

/** The candidate nearest to `word`, for error messages. */
export function nearest(word: string, candidates: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestD = Infinity;
  for (const c of candidates) {
    const dist = editDistance(word, c);
    if (dist < bestD) [best, bestD] = [c, dist];
  }
  return best;
}

/** Merges `raw` over `defaults`, checking every key and type against the schema. */
export function validateConfig<T extends object>(raw: unknown, defaults: T, schema: Schema<T>, where: string, path = ''): T {
  if (raw === undefined || raw === null) return structuredClone(defaults);
  if (!isObj(raw)) throw new Error(`${where}: ${path || 'config'} must be a mapping, got ${showValue(raw)}`);
  const out = structuredClone(defaults) as Record<string, unknown>;
  const sch = schema as Record<string, unknown>;
  for (const [k, v] of Object.entries(raw)) {
    const key = path ? `${path}.${k}` : k;
    // Own keys only: `k in sch` would take 'constructor' or 'toString' for fields.
    if (!Object.hasOwn(sch, k)) {
      const near = nearest(k, Object.keys(sch));
      throw new Error(`${where}: unknown key '${key}'${near ? ` (did you mean '${path ? path + '.' : ''}${near}'?)` : ''}`);
    }
    const d = (defaults as Record<string, unknown>)[k];
    const s = sch[k] as FieldDoc | Schema<object>;
    if ('doc' in s && typeof (s as FieldDoc).doc === 'string') {
      out[k] = checkField(v, d, s as FieldDoc, key, where);
    } else {
      out[k] = validateConfig(v, (d ?? {}) as object, s as Schema<object>, where, key);
    }
  }
  return out as T;
}

function checkField(v: unknown, dflt: unknown, f: FieldDoc, key: string, where: string): unknown {
  const fail = (want: string): never => {
    throw new Error(`${where}: '${key}' must be ${want}, got ${showValue(v)}`);
  };
  if (v === null && f.optional) return undefined;
  const want = dflt === undefined || dflt === null ? undefined : Array.isArray(dflt) ? 'array' : typeof dflt;
  if (want === 'number' || (want === undefined && typeof v === 'number')) {
    if (typeof v !== 'number' || !Number.isFinite(v)) fail('a number');
    if (f.integer && !Number.isInteger(v)) fail('an integer');
    if (f.min !== undefined && (v as number) < f.min) fail(`>= ${f.min}`);
    if (f.max !== undefined && (v as number) > f.max) fail(`<= ${f.max}`);
    if (f.below !== undefined && !((v as number) < f.below)) fail(`< ${f.below}`);
    return v;
  }
  if (want === 'boolean' && typeof v !== 'boolean') fail('true or false');
  if (want === 'string' || (want === undefined && typeof v === 'string')) {
    if (typeof v !== 'string') fail('a string');
    if (f.oneOf && !f.oneOf.includes(v as string)) {
      const near = nearest(v as string, f.oneOf);
      fail(`one of ${f.oneOf.join(', ')}${near ? ` (nearest: '${near}')` : ''}`);
    }
  }
  if (want === 'array' && !Array.isArray(v)) fail('a list');
  if (want === 'array' && f.items) {
    (v as unknown[]).forEach((x, i) => {
      if (typeof x !== f.items || (f.items === 'number' && !Number.isFinite(x))) {
        throw new Error(`${where}: '${key}[${i}]' must be a ${f.items}, got ${showValue(x)}`);
      }
    });
  }
  return v;
}

/**
 * Sets an own property. `node[k] = v` with k = '__proto__' would replace node's prototype (or, walked
 * into, Object.prototype itself) instead, so the key would vanish rather than be reported as unknown.
 */
function setOwn(node: Record<string, unknown>, k: string, v: unknown): void {
  Object.defineProperty(node, k, { value: v, enumerable: true, writable: true, configurable: true });
}

/** Parses `key.path=value` (value as YAML: numbers, booleans, lists) into a nested object. */
export function parseSet(assignments: readonly string[]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const a of assignments) {
    const eq = a.indexOf('=');
    if (eq <= 0) throw new Error(`--set needs key=value, got '${a}'`);
    const keys = a.slice(0, eq).split('.');
    let node = out;
    for (const k of keys.slice(0, -1)) {
      const next = Object.hasOwn(node, k) && isObj(node[k]) ? node[k] : {};
      setOwn(node, k, next);
      node = next;
    }
    let value: unknown;
    try {
      value = parseYaml(a.slice(eq + 1));
    } catch (e) {
      throw new Error(`--set ${a}: invalid YAML value: ${(e as Error).message.split('\n')[0]}`, { cause: e });
    }
    setOwn(node, keys.at(-1)!, value);
  }
  return out;
}

/** Deep merge of plain objects (overrides win). */
export function deepMerge(base: unknown, over: unknown): unknown {
  if (!isObj(base) || !isObj(over)) return over === undefined ? base : over;
  const out: Record<string, unknown> = { ...base };
  for (const [k, v] of Object.entries(over)) setOwn(out, k, deepMerge(Object.hasOwn(base, k) ? base[k] : undefined, v));
  return out;
}

/** Any subset of a config's fields, nested: what a program overrides (arrays are replaced whole). */
export type ConfigOverrides<T> = { [K in keyof T]?: T[K] extends readonly unknown[] ? T[K] : T[K] extends object ? ConfigOverrides<T[K]> : T[K] };

/**
 * A config from code: `overrides` merged over `defaults` and checked against `schema` exactly as a config
 * file is (ranges, enums, unknown keys), e.g. `makeConfig(PPO_DEFAULTS, PPO_SCHEMA, { train: { steps: 2 } })`.
 */
export function makeConfig<T extends object>(defaults: T, schema: Schema<T>, overrides: ConfigOverrides<T> = {}): T {
  return validateConfig(overrides, defaults, schema, 'config');
}

/**
 * Reads a YAML/JSON config file merged with --set overrides and validates it. An error names what is at
 * fault: the file (not a regular file, over MAX_CONFIG_BYTES, not YAML, its top level not a mapping, a
 * field) or the one `--set` argument whose key or value is wrong.
 */
export function loadConfig<T extends object>(file: string | undefined, sets: readonly string[], defaults: T, schema: Schema<T>): T {
  let raw: unknown = {};
  if (file) {
    const text = readBoundedText(file, MAX_CONFIG_BYTES, 'config');
    try {
      raw = parseYaml(text) ?? {};
    } catch (e) {
      throw new Error(`config ${file}: invalid YAML: ${(e as Error).message.split('\n')[0]}`);
    }
    if (!isObj(raw)) throw new Error(`config ${file}: the top level must be a mapping of fields (key: value), got ${kindOf(raw)}`);
    validateConfig(raw, defaults, schema, file);
  }
  // Each override alone against the schema first, so that its error names it rather than the file.
  for (const a of sets) validateConfig(parseSet([a]), defaults, schema, `--set ${a}`);
  return validateConfig(deepMerge(raw, parseSet(sets)), defaults, schema, file ?? '--set');
}

/** The schema as documentation lines (for --help and the README). */
export function describeSchema<T extends object>(defaults: T, schema: Schema<T>, path = ''): string[] {
  const lines: string[] = [];
  for (const [k, s] of Object.entries(schema as Record<string, unknown>)) {
    const key = path ? `${path}.${k}` : k;
    const d = (defaults as Record<string, unknown>)[k];
    if (s && typeof s === 'object' && 'doc' in s && typeof (s as FieldDoc).doc === 'string') {
      const f = s as FieldDoc;
      lines.push(`${key} (default ${JSON.stringify(d)})${f.oneOf ? ` one of ${f.oneOf.join('|')}` : ''}: ${f.doc}`);
    } else lines.push(...describeSchema((d ?? {}) as object, s as Schema<object>, key));
  }
  return lines;
}
