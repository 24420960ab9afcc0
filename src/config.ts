/**
 * Typed configuration files (YAML or JSON) with `--set key.path=value` overrides. A config type is
 * described by its defaults plus a schema of field docs; anything unknown is an error that names the
 * nearest valid key, and a wrong type names the field, what it expected and what it got.
 */
import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import { nearest } from './cli/args.js';

/** Per field: its documentation and, for strings, the allowed values. Nested objects nest. */
export type FieldDoc = { doc: string; oneOf?: readonly string[]; min?: number; integer?: boolean; optional?: boolean; items?: 'string' | 'number' };
export type Schema<T> = { [K in keyof T]: T[K] extends object ? (T[K] extends unknown[] ? FieldDoc : Schema<T[K]>) : FieldDoc };

function isObj(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

/** Merges `raw` over `defaults`, checking every key and type against the schema. */
export function validateConfig<T extends object>(raw: unknown, defaults: T, schema: Schema<T>, where: string, path = ''): T {
  if (raw === undefined || raw === null) return structuredClone(defaults);
  if (!isObj(raw)) throw new Error(`${where}: ${path || 'config'} must be a mapping, got ${JSON.stringify(raw)}`);
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
    throw new Error(`${where}: '${key}' must be ${want}, got ${JSON.stringify(v)}`);
  };
  if (v === null && f.optional) return undefined;
  const want = dflt === undefined || dflt === null ? undefined : Array.isArray(dflt) ? 'array' : typeof dflt;
  if (want === 'number' || (want === undefined && typeof v === 'number')) {
    if (typeof v !== 'number' || !Number.isFinite(v)) fail('a number');
    if (f.integer && !Number.isInteger(v)) fail('an integer');
    if (f.min !== undefined && (v as number) < f.min) fail(`>= ${f.min}`);
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
        throw new Error(`${where}: '${key}[${i}]' must be a ${f.items}, got ${JSON.stringify(x)}`);
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
    setOwn(node, keys.at(-1)!, parseYaml(a.slice(eq + 1)) as unknown);
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

/** Reads a YAML/JSON config file merged with --set overrides and validates it. */
export function loadConfig<T extends object>(file: string | undefined, sets: readonly string[], defaults: T, schema: Schema<T>): T {
  let raw: unknown = {};
  if (file) {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch {
      throw new Error(`config ${file}: cannot be read`);
    }
    try {
      raw = parseYaml(text) ?? {};
    } catch (e) {
      throw new Error(`config ${file}: invalid YAML: ${(e as Error).message.split('\n')[0]}`);
    }
  }
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
