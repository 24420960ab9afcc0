/**
 * Checkpoints in and out: Hugging Face model directories (single file and sharded) for every supported
 * configuration, llama2.c files (legacy and v1) checked against a transcription of run.c's forward, and the
 * errors bad input must give: clear, naming what is wrong, and leaving the process (and disk) sound.
 * Tags: @numeric
 */
import assert from 'node:assert/strict';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, afterEach, before, beforeEach, describe, test } from 'node:test';

import { modelCommands } from '../../src/cli/model.js';
import { generate } from '../../src/generate/generate.js';
import type { CausalLM } from '../../src/models/common.js';
import { buildModel, loadModel, parseConfig, resolveModelDir, saveModel, tokenizerFiles } from '../../src/models/hub.js';
import { type LlamaConfig, LlamaForCausalLM } from '../../src/models/llama.js';
import { readLlama2c } from '../../src/models/llama2c.js';
import { type RawTensor, readSafetensorsFile, SAFETENSORS_INDEX_FILE, writeSafetensorsFile } from '../../src/nn/safetensors.js';
import { toRaw } from '../../src/nn/serialize.js';
import { manualSeed, memory, noGrad, randn, scope, type Tensor, tensor } from '../../src/tensor/index.js';
import { loadTokenizer } from '../../src/text/index.js';
import { llamaDims, logitBound } from '../tolerance.js';
import { reportBound } from '../env.js';

let root: string;
before(() => {
  root = mkdtempSync(join(tmpdir(), 'rlhf-checkpoints-'));
});
after(() => rmSync(root, { recursive: true, force: true }));

let live = 0;
beforeEach(() => {
  live = memory().liveTensors;
});
afterEach(() => {
  assert.equal(memory().liveTensors, live, 'the test leaked native tensors');
});

let dirCount = 0;
/** A fresh directory path under the test's temp root (not created). */
const freshDir = (name: string): string => join(root, `${name}-${dirCount++}`);

const ids = (rows: number[][]): Tensor => tensor(rows, { dtype: 'int64' });

/** Logits of both models for the same ids must be bitwise equal. */
function assertSameLogits(a: CausalLM, b: CausalLM, rows: number[][]): void {
  scope(() => noGrad(() => {
    const x = a.forward(ids(rows));
    const y = b.forward(ids(rows));
    assert.deepEqual(y.shape, x.shape);
    const diff = x.sub(y).abs().max().item();
    assert.equal(diff, 0, `logits differ by up to ${diff}`);
  }));
}

/** Runs `fn` with models that are disposed afterwards, whatever happens. */
function withModels<T>(models: CausalLM[], fn: () => T): T {
  try {
    return fn();
  } finally {
    for (const m of models) m.dispose();
  }
}

/**
 * A model built from an HF-style config.json object with every parameter drawn from N(0, 0.3²): biases
 * and norm weights too, so a tensor lost or swapped on the way through disk changes the logits.
 */
function randomModel(raw: Record<string, unknown>, seed: number): CausalLM {
  manualSeed(seed);
  const m = buildModel(parseConfig(raw, 'test config.json'));
  noGrad(() => scope(() => {
    for (const p of m.parameters()) p.copy_(randn(p.shape).mul(0.3));
  }));
  return m.eval();
}

const TINY_LLAMA = {
  architectures: ['LlamaForCausalLM'], model_type: 'llama', vocab_size: 64, hidden_size: 32, intermediate_size: 48,
  num_hidden_layers: 2, num_attention_heads: 4, num_key_value_heads: 2, max_position_embeddings: 64,
  rms_norm_eps: 1e-5, tie_word_embeddings: true, bos_token_id: 1, eos_token_id: 2,
};
const LLAMA3_ROPE = { rope_type: 'llama3', factor: 8, low_freq_factor: 1, high_freq_factor: 4, original_max_position_embeddings: 32 };
const LINEAR_ROPE = { type: 'linear', factor: 2 };
const TINY_GPT2 = { model_type: 'gpt2', vocab_size: 64, n_embd: 32, n_layer: 2, n_head: 4, n_positions: 64, bos_token_id: 1, eos_token_id: 2 };

/** Each configuration with the state-dict facts that prove the feature is really there. */
const CONFIGS: { name: string; raw: Record<string, unknown>; keys: Record<string, number[] | null> }[] = [
  {
    name: 'Llama, grouped-query attention (4 heads, 2 kv heads), tied embeddings',
    raw: TINY_LLAMA,
    keys: { 'model.layers.0.self_attn.k_proj.weight': [16, 32], 'model.layers.0.self_attn.q_proj.weight': [32, 32], 'lm_head.weight': null },
  },
  {
    name: 'Qwen2 (q/k/v biases, no o bias)',
    raw: { ...TINY_LLAMA, architectures: ['Qwen2ForCausalLM'], model_type: 'qwen2' },
    keys: { 'model.layers.1.self_attn.q_proj.bias': [32], 'model.layers.1.self_attn.v_proj.bias': [16], 'model.layers.1.self_attn.o_proj.bias': null },
  },
  {
    name: 'Llama, untied embeddings',
    raw: { ...TINY_LLAMA, tie_word_embeddings: false },
    keys: { 'lm_head.weight': [64, 32] },
  },
  {
    name: "Llama, rope_scaling llama3 (factor 8, original 32 positions)",
    raw: { ...TINY_LLAMA, rope_scaling: LLAMA3_ROPE },
    keys: {},
  },
  {
    name: 'Llama, rope_scaling linear (factor 2)',
    raw: { ...TINY_LLAMA, rope_scaling: LINEAR_ROPE },
    keys: {},
  },
  {
    name: 'GPT-2, tied',
    raw: TINY_GPT2,
    keys: { 'transformer.h.0.attn.c_attn.weight': [32, 96], 'transformer.wpe.weight': [64, 32], 'lm_head.weight': null },
  },
  {
    name: 'GPT-2, untied',
    raw: { ...TINY_GPT2, tie_word_embeddings: false },
    keys: { 'lm_head.weight': [64, 32] },
  },
];

/** Mixed-length prompts for the tiny models (vocabulary 64). */
const PROMPTS = [[1, 5, 9, 33, 2, 17, 40], [1, 60], [1, 12, 13, 14]];
const ROWS = [[1, 5, 9, 33, 2, 17, 40, 63, 0, 8, 21, 22], [1, 60, 59, 58, 57, 3, 4, 5, 6, 7, 8, 9]];

describe('Hugging Face directories: save → load', () => {
  test('stories260k: saveModel → loadModel gives exactly equal logits; tokenizer files travel along', () => {
    const dir = freshDir('stories260k');
    const original = loadModel('stories260k');
    const story = [1, 403, 407, 261, 378, 432, 383, 286, 261, 376, 268, 414, 422, 395, 405, 426, 317];
    withModels([original], () => {
      saveModel(original, dir, { extraFiles: tokenizerFiles(resolveModelDir('stories260k')) });
      assert.ok(existsSync(join(dir, 'tokenizer.bin')));
      const loaded = loadModel(dir);
      withModels([loaded], () => {
        assert.deepEqual(loaded.config, original.config);
        assertSameLogits(original, loaded, [story]);
        // Saving over an existing directory replaces it and leaves nothing beside it.
        saveModel(loaded, dir, { extraFiles: tokenizerFiles(resolveModelDir('stories260k')) });
      });
      const again = loadModel(dir);
      withModels([again], () => assertSameLogits(original, again, [story]));
      assert.equal(loadTokenizer(dir).encode('Once upon a time', { addBos: true }).join(), '1,403,407,261,378');
      assert.deepEqual(readdirSync(root).filter((f) => f.includes('.tmp-') || f.includes('.old-')), []);
    });
  });

  for (const { name, raw, keys } of CONFIGS) {
    test(`${name}: save → load → identical logits and greedy tokens`, () => {
      const model = randomModel(raw, 11);
      const dir = freshDir('random');
      withModels([model], () => {
        const state = model.stateDict();
        for (const [k, shape] of Object.entries(keys)) {
          if (shape === null) assert.ok(!state.has(k), `${k} should not exist`);
          else assert.deepEqual(state.get(k)?.shape, shape, k);
        }
        saveModel(model, dir);
        const loaded = loadModel(dir);
        withModels([loaded], () => {
          assert.deepEqual(loaded.config, model.config);
          assert.deepEqual([...loaded.stateDict().keys()].sort(), [...state.keys()].sort());
          assertSameLogits(model, loaded, ROWS);
          const o = { maxNewTokens: 12, temperature: 0, eosTokenIds: [] };
          const a = generate(model, PROMPTS, o);
          assert.deepEqual(generate(loaded, PROMPTS, o), a);
          assert.ok(a.every((c) => c.tokens.length === 12));
        });
      });
    });
  }

  test('rope_scaling matters here: the same weights without it give different logits', () => {
    for (const ropeScaling of [LLAMA3_ROPE, LINEAR_ROPE]) {
      const scaled = randomModel({ ...TINY_LLAMA, rope_scaling: ropeScaling }, 5);
      const plain = randomModel(TINY_LLAMA, 5);
      withModels([scaled, plain], () => scope(() => noGrad(() => {
        plain.loadStateDict(scaled.stateDict());
        const want = plain.forward(ids(ROWS));
        const d = scaled.forward(ids(ROWS)).sub(want).abs().max().item();
        const rounding = logitBound(llamaDims(plain.config as LlamaConfig), Math.max(...ROWS.map((r) => r.length)), want.abs().max().item());
        assert.ok(d > 10 * rounding, `rope scaling changed the logits by only ${d} (rounding alone: ${rounding})`);
      })));
    }
  });

  test('a sharded directory (index + 2 shards) loads to the same logits', () => {
    const model = randomModel({ ...TINY_LLAMA, tie_word_embeddings: false }, 21);
    withModels([model], () => {
      const single = freshDir('single');
      saveModel(model, single);
      const tensors = [...readSafetensorsFile(join(single, 'model.safetensors')).tensors];
      const half = Math.ceil(tensors.length / 2);
      const shards: [string, [string, RawTensor][]][] = [
        ['model-00001-of-00002.safetensors', tensors.slice(0, half)],
        ['model-00002-of-00002.safetensors', tensors.slice(half)],
      ];
      const dir = freshDir('sharded');
      mkdirSync(dir);
      copyFileSync(join(single, 'config.json'), join(dir, 'config.json'));
      const weightMap: Record<string, string> = {};
      let total = 0;
      for (const [file, part] of shards) {
        writeSafetensorsFile(join(dir, file), part, { format: 'pt' });
        for (const [k, t] of part) {
          weightMap[k] = file;
          total += t.data.length;
        }
      }
      writeFileSync(join(dir, SAFETENSORS_INDEX_FILE), JSON.stringify({ metadata: { total_size: total }, weight_map: weightMap }));
      assert.ok(!existsSync(join(dir, 'model.safetensors')));
      const loaded = loadModel(dir);
      withModels([loaded], () => assertSameLogits(model, loaded, ROWS));
    });
  });
});

// ---- llama2.c ----------------------------------------------------------------------------------------------

interface L2cHeader {
  dim: number;
  hidden: number;
  layers: number;
  heads: number;
  kvHeads: number;
  vocab: number;
  seq: number;
  shared: boolean;
}

/** llama2.c's weights in run.c's (out, in) row-major layout, one Float32Array per layer where per-layer. */
interface L2cWeights {
  embed: Float32Array;
  attnNorm: Float32Array[];
  wq: Float32Array[];
  wk: Float32Array[];
  wv: Float32Array[];
  wo: Float32Array[];
  ffnNorm: Float32Array[];
  w1: Float32Array[];
  w2: Float32Array[];
  w3: Float32Array[];
  norm: Float32Array;
  wcls: Float32Array | null;
}

/** A seeded N(0, σ²) stream (mulberry32 + Box–Muller): weights independent of the code under test. */
function gaussian(seed: number): (sigma: number) => number {
  let a = seed >>> 0;
  const u = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (((t ^ (t >>> 14)) >>> 0) + 0.5) / 2 ** 32;
  };
  return (sigma) => sigma * Math.sqrt(-2 * Math.log(u())) * Math.cos(2 * Math.PI * u());
}

function randomL2c(h: L2cHeader, seed: number): L2cWeights {
  const g = gaussian(seed);
  const hs = h.dim / h.heads;
  const kv = h.kvHeads * hs;
  const arr = (n: number, sigma = 0.3, mean = 0) => Float32Array.from({ length: n }, () => mean + g(sigma));
  const per = (n: number, sigma?: number, mean?: number) => Array.from({ length: h.layers }, () => arr(n, sigma, mean));
  return {
    embed: arr(h.vocab * h.dim, 1),
    attnNorm: per(h.dim, 0.2, 1),
    wq: per(h.dim * h.dim),
    wk: per(kv * h.dim),
    wv: per(kv * h.dim),
    wo: per(h.dim * h.dim),
    ffnNorm: per(h.dim, 0.2, 1),
    w1: per(h.hidden * h.dim),
    w2: per(h.dim * h.hidden),
    w3: per(h.hidden * h.dim),
    norm: arr(h.dim, 0.2, 1),
    wcls: h.shared ? null : arr(h.vocab * h.dim),
  };
}

const f32bytes = (parts: Float32Array[]): Buffer => Buffer.concat(parts.map((p) => Buffer.from(p.buffer, p.byteOffset, p.byteLength)));

/** llama2.c export.py legacy_export: 7 int32 (vocab negated when the classifier is not shared), weights, RoPE tables. */
function legacyFile(h: L2cHeader, w: L2cWeights): Buffer {
  const head = Buffer.alloc(28);
  [h.dim, h.hidden, h.layers, h.heads, h.kvHeads, h.shared ? h.vocab : -h.vocab, h.seq].forEach((v, i) => head.writeInt32LE(v, 4 * i));
  const hs = h.dim / h.heads;
  // freq_cis_real / freq_cis_imag (seq_len, hs/2) each: run.c skips them; their values do not matter.
  const freqs = new Float32Array(h.seq * hs).fill(0.5);
  return Buffer.concat([head, f32bytes([
    w.embed, ...w.attnNorm, ...w.wq, ...w.wk, ...w.wv, ...w.wo, ...w.ffnNorm, ...w.w1, ...w.w2, ...w.w3, w.norm, freqs,
    ...(w.wcls ? [w.wcls] : []),
  ])]);
}

/** llama2.c export.py version1_export: 256-byte header (magic "ak42", version 1, 7 int32, shared byte, zero pad), weights. */
function v1File(h: L2cHeader, w: L2cWeights): Buffer {
  const head = Buffer.alloc(256);
  head.writeUInt32LE(0x616b3432, 0);
  head.writeInt32LE(1, 4);
  [h.dim, h.hidden, h.layers, h.heads, h.kvHeads, h.vocab, h.seq].forEach((v, i) => head.writeInt32LE(v, 8 + 4 * i));
  head.writeUInt8(h.shared ? 1 : 0, 36);
  return Buffer.concat([head, f32bytes([
    ...w.attnNorm, ...w.ffnNorm, w.norm, w.embed, ...w.wq, ...w.wk, ...w.wv, ...w.wo, ...w.w1, ...w.w2, ...w.w3,
    ...(w.wcls ? [w.wcls] : []),
  ])]);
}

/**
 * llama2.c run.c's `forward`, transcribed in float64: the reference the converted model must match. Its
 * RoPE rotates adjacent pairs (2i, 2i+1), so agreement also proves the converter's wq/wk row permutation.
 * Returns the logits at every position of `tokens`.
 */
function runCForward(h: L2cHeader, w: L2cWeights, tokens: number[]): number[][] {
  const { dim, hidden, heads, kvHeads } = h;
  const hs = dim / heads;
  const kvDim = kvHeads * hs;
  const kvMul = heads / kvHeads;
  const matmul = (m: Float32Array, x: number[], n: number, d: number) => Array.from({ length: d }, (_, i) => {
    let s = 0;
    for (let j = 0; j < n; j++) s += m[i * n + j]! * x[j]!;
    return s;
  });
  const rmsnorm = (x: number[], wt: Float32Array) => {
    const ss = 1 / Math.sqrt(x.reduce((a, v) => a + v * v, 0) / x.length + 1e-5);
    return x.map((v, i) => wt[i]! * ss * v);
  };
  const keyCache: number[][][] = Array.from({ length: h.layers }, () => []);
  const valueCache: number[][][] = Array.from({ length: h.layers }, () => []);
  return tokens.map((token, pos) => {
    let x = Array.from(w.embed.subarray(token * dim, (token + 1) * dim));
    for (let l = 0; l < h.layers; l++) {
      let xb = rmsnorm(x, w.attnNorm[l]!);
      const q = matmul(w.wq[l]!, xb, dim, dim);
      const k = matmul(w.wk[l]!, xb, dim, kvDim);
      const v = matmul(w.wv[l]!, xb, dim, kvDim);
      for (let i = 0; i < dim; i += 2) {
        const freq = 1 / 10000 ** ((i % hs) / hs);
        const [fcr, fci] = [Math.cos(pos * freq), Math.sin(pos * freq)];
        for (const vec of i < kvDim ? [q, k] : [q]) {
          const [v0, v1] = [vec[i]!, vec[i + 1]!];
          vec[i] = v0 * fcr - v1 * fci;
          vec[i + 1] = v0 * fci + v1 * fcr;
        }
      }
      keyCache[l]!.push(k);
      valueCache[l]!.push(v);
      xb = new Array<number>(dim).fill(0);
      for (let hd = 0; hd < heads; hd++) {
        const off = Math.floor(hd / kvMul) * hs;
        const att = keyCache[l]!.map((kt) => {
          let s = 0;
          for (let i = 0; i < hs; i++) s += q[hd * hs + i]! * kt[off + i]!;
          return s / Math.sqrt(hs);
        });
        const mx = Math.max(...att);
        const e = att.map((a) => Math.exp(a - mx));
        const z = e.reduce((a, b) => a + b, 0);
        valueCache[l]!.forEach((vt, t) => {
          for (let i = 0; i < hs; i++) xb[hd * hs + i]! += (e[t]! / z) * vt[off + i]!;
        });
      }
      x = x.map((a, i) => a + matmul(w.wo[l]!, xb, dim, dim)[i]!);
      xb = rmsnorm(x, w.ffnNorm[l]!);
      const h1 = matmul(w.w1[l]!, xb, dim, hidden);
      const h3 = matmul(w.w3[l]!, xb, dim, hidden);
      const hb = h1.map((a, i) => (a / (1 + Math.exp(-a))) * h3[i]!);
      const down = matmul(w.w2[l]!, hb, hidden, dim);
      x = x.map((a, i) => a + down[i]!);
    }
    x = rmsnorm(x, w.norm);
    return matmul(w.wcls ?? w.embed, x, dim, h.vocab);
  });
}

/** A llama2.c model file → our Llama, loaded strictly (inside a scope: the reader's tensors are freed). */
function llamaFromL2c(path: string): LlamaForCausalLM {
  return scope(() => {
    const { config, state } = readLlama2c(path);
    const m = new LlamaForCausalLM(config);
    m.loadStateDict(state, { source: path });
    return m.eval();
  });
}

/** A llama2.c tokenizer.bin of `n` entries (<unk>, <s>, </s>, then letters), for the converter's copy. */
function tinyTokenizerBin(n: number): Buffer {
  const pieces = ['<unk>', '<s>', '</s>', ...Array.from({ length: n - 3 }, (_, i) => String.fromCharCode(97 + (i % 26)).repeat(1 + Math.floor(i / 26)))];
  const parts = [Buffer.from(Int32Array.of(Math.max(...pieces.map((p) => p.length))).buffer)];
  pieces.forEach((p, i) => {
    const b = Buffer.alloc(8);
    b.writeFloatLE(-i, 0);
    b.writeInt32LE(Buffer.byteLength(p), 4);
    parts.push(b, Buffer.from(p));
  });
  return Buffer.concat(parts);
}

const L2C: L2cHeader = { dim: 16, hidden: 32, layers: 2, heads: 4, kvHeads: 2, vocab: 32, seq: 16, shared: true };
const L2C_TOKENS = [1, 7, 30, 2, 2, 19, 0, 11, 5, 31, 8, 4, 16, 9];

describe('llama2.c checkpoints', () => {
  for (const shared of [true, false]) {
    test(`legacy and v1 files (${shared ? 'shared' : 'separate'} classifier) load to identical logits, matching run.c's forward`, () => {
      const h = { ...L2C, shared };
      const w = randomL2c(h, shared ? 1 : 2);
      const legacy = join(root, `legacy-${shared}.bin`);
      const v1 = join(root, `v1-${shared}.bin`);
      writeFileSync(legacy, legacyFile(h, w));
      writeFileSync(v1, v1File(h, w));
      const a = llamaFromL2c(legacy);
      const b = llamaFromL2c(v1);
      withModels([a, b], () => {
        assert.equal(a.config.tieWordEmbeddings, shared);
        assert.deepEqual(b.config, a.config);
        assert.deepEqual(a.config.eosTokenIds, [1, 2]);
        assertSameLogits(a, b, [L2C_TOKENS]);
        const want = runCForward(h, w, L2C_TOKENS);
        scope(() => noGrad(() => {
          const got = a.forward(ids([L2C_TOKENS])).toArray() as number[][][];
          let worst = 0;
          want.forEach((row, t) => row.forEach((v, j) => (worst = Math.max(worst, Math.abs(v - got[0]![t]![j]!)))));
          // Bound: our float32 against a float64 transcription of run.c, one side's rounding (test/tolerance.ts).
          const bound = logitBound(llamaDims(a.config as LlamaConfig), L2C_TOKENS.length, Math.max(...want.flat().map(Math.abs))) / 2;
          reportBound('llama2.c run.c forward (float64 transcription) vs ours (logits)', worst, bound, 1e-4);
          assert.ok(worst <= bound, `max |Δlogit| vs run.c ${worst} > ${bound}`);
        }));
      });
    });
  }

  test('`rlhf convert llama2c` writes a directory that loads to the same logits, tokenizer included', async () => {
    const h = { ...L2C, shared: false };
    const path = join(root, 'convert-v1.bin');
    const tokPath = join(root, 'tokenizer.bin');
    writeFileSync(path, v1File(h, randomL2c(h, 3)));
    writeFileSync(tokPath, tinyTokenizerBin(h.vocab));
    const out = freshDir('converted');
    const r = (await modelCommands['convert llama2c']!.run({ checkpoint: path, tokenizer: tokPath, out })) as Record<string, unknown>;
    assert.equal(r.vocab, 32);
    assert.equal(r.layers, 2);
    assert.ok(existsSync(join(out, 'tokenizer.bin')));
    const direct = llamaFromL2c(path);
    const loaded = loadModel(out);
    withModels([direct, loaded], () => {
      assert.deepEqual(loaded.config, direct.config);
      assertSameLogits(direct, loaded, [L2C_TOKENS]);
    });
  });
});

// ---- bad input -----------------------------------------------------------------------------------------------

/** Asserts `fn` throws an Error whose message matches every pattern. */
function assertError(fn: () => unknown, ...patterns: RegExp[]): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof Error, `expected an Error, got ${String(e)}`);
    for (const re of patterns) assert.match(e.message, re);
    return true;
  });
}

/** A directory with the given config.json and (optionally) model.safetensors tensors. */
function writeDir(config: Record<string, unknown>, tensors?: [string, RawTensor][]): string {
  const dir = freshDir('bad');
  mkdirSync(dir);
  writeFileSync(join(dir, 'config.json'), JSON.stringify(config));
  if (tensors) writeSafetensorsFile(join(dir, 'model.safetensors'), tensors);
  return dir;
}

describe('bad input: clear errors, no crash', () => {
  let good: [string, RawTensor][];
  before(() => {
    const m = randomModel(TINY_LLAMA, 31);
    good = [...m.stateDict()].map(([k, t]) => [k, toRaw(t)]);
    m.dispose();
  });

  test('unknown architecture (model_type mamba)', () => {
    const dir = writeDir({ model_type: 'mamba', architectures: ['MambaForCausalLM'], hidden_size: 32 });
    assertError(() => loadModel(dir), /unknown architecture/, /mamba/, /config\.json/, /supported: llama/);
  });

  test('a missing config field (no hidden_size)', () => {
    const { hidden_size: _, ...rest } = TINY_LLAMA;
    const dir = writeDir(rest, good);
    assertError(() => loadModel(dir), /config\.json/, /'hidden_size'/, /missing/);
    assertError(() => loadModel(writeDir({ ...TINY_LLAMA, num_attention_heads: 'four' }, good)), /'num_attention_heads'/, /expected a number/);
  });

  test('a truncated model.safetensors', () => {
    const dir = writeDir(TINY_LLAMA, good);
    const file = join(dir, 'model.safetensors');
    truncateSync(file, Math.floor(readFileSync(file).length * 0.6));
    assertError(() => loadModel(dir), /model\.safetensors/, /run past|not covered|too short/);
    truncateSync(file, 5);
    assertError(() => loadModel(dir), /model\.safetensors/, /too short/);
  });

  test('a mis-shaped weight names the key and both shapes', () => {
    const bad = good.map(([k, t]): [string, RawTensor] => (k === 'model.layers.1.self_attn.k_proj.weight' ? [k, { dtype: 'F32', shape: [32, 32], data: new Uint8Array(32 * 32 * 4) }] : [k, t]));
    assertError(() => loadModel(writeDir(TINY_LLAMA, bad)), /'model\.layers\.1\.self_attn\.k_proj\.weight'/, /\[32, 32\]/, /\[16, 32\]/);
  });

  test('a missing weight names the key', () => {
    const bad = good.filter(([k]) => k !== 'model.layers.1.mlp.up_proj.weight');
    assertError(() => loadModel(writeDir(TINY_LLAMA, bad)), /missing keys: model\.layers\.1\.mlp\.up_proj\.weight/);
  });

  test('an unexpected extra weight names the key', () => {
    const extra: [string, RawTensor] = ['model.layers.0.self_attn.q_norm.weight', { dtype: 'F32', shape: [8], data: new Uint8Array(32) }];
    assertError(() => loadModel(writeDir(TINY_LLAMA, [...good, extra])), /unexpected keys: model\.layers\.0\.self_attn\.q_norm\.weight/);
    // A Qwen2 checkpoint (q/k/v biases) loaded as plain Llama: the biases are unexpected.
    const qwen = randomModel({ ...TINY_LLAMA, model_type: 'qwen2' }, 3);
    const qwenState = [...qwen.stateDict()].map(([k, t]): [string, RawTensor] => [k, toRaw(t)]);
    qwen.dispose();
    assertError(() => loadModel(writeDir(TINY_LLAMA, qwenState)), /unexpected keys: .*self_attn\.q_proj\.bias/);
  });

  test('a truncated llama2.c file', () => {
    const bytes = v1File(L2C, randomL2c(L2C, 4));
    const path = join(root, 'truncated.bin');
    writeFileSync(path, bytes.subarray(0, bytes.length - 100));
    assertError(() => scope(() => readLlama2c(path)), /truncated\.bin/, /truncated/);
    writeFileSync(path, bytes.subarray(0, 20));
    assertError(() => scope(() => readLlama2c(path)), /too short/);
    // A legacy file whose header describes more weights than it holds.
    writeFileSync(path, legacyFile(L2C, randomL2c(L2C, 4)).subarray(0, 1000));
    assertError(() => scope(() => readLlama2c(path)), /truncated/);
  });

  test('token ids outside the vocabulary, over-long and empty prompts (generate and forward)', () => {
    const m = randomModel(TINY_LLAMA, 41);
    withModels([m], () => {
      assertError(() => generate(m, [[1, 64]], { maxNewTokens: 2 }), /token id 64 is outside the vocabulary \(size 64\)/);
      assertError(() => generate(m, [[1, 2], [-3]], { maxNewTokens: 2 }), /token id -3 is outside the vocabulary/);
      assertError(() => scope(() => noGrad(() => m.forward(ids([[5, 99]])))), /token id 99 is outside the vocabulary \(size 64\)/);
      // Context 64: a 60-token prompt leaves room for 4 new tokens, not 5.
      const long = Array.from({ length: 60 }, (_, i) => i % 64);
      assert.equal(generate(m, [long], { maxNewTokens: 4, eosTokenIds: [] })[0]!.tokens.length, 4);
      assertError(() => generate(m, [[1], long], { maxNewTokens: 5 }), /prompt of 60 tokens \+ max_new_tokens 5 exceeds the model's context of 64 positions/);
      assertError(() => scope(() => noGrad(() => m.forward(ids([Array.from({ length: 65 }, () => 3)])))), /sequence of 65 positions exceeds the model's maximum of 64/);
      assertError(() => generate(m, [[1, 4], []], { maxNewTokens: 2 }), /prompt 1 is empty/);
      // No crash: the model still works, and no tensor leaked (checked after each test).
      assert.equal(generate(m, PROMPTS, { maxNewTokens: 3, eosTokenIds: [] })[2]!.tokens.length, 3);
    });
  });

  test('a failed saveModel leaves no temp directory and does not damage an existing directory', () => {
    const m = randomModel(TINY_LLAMA, 51);
    withModels([m], () => {
      // The target's parent is a file: nothing can be created.
      const parent = freshDir('parent');
      mkdirSync(parent);
      writeFileSync(join(parent, 'a-file'), 'not a directory');
      assertError(() => saveModel(m, join(parent, 'a-file', 'model')), /ENOTDIR|not a directory/);
      assert.deepEqual(readdirSync(parent), ['a-file']);
      // An existing model directory, and a save that fails part-way (an extra file that does not exist).
      const holder = freshDir('holder');
      mkdirSync(holder);
      const dir = join(holder, 'model');
      saveModel(m, dir);
      const before = new Map(readdirSync(dir).map((f) => [f, readFileSync(join(dir, f))]));
      const other = randomModel(TINY_LLAMA, 52);
      withModels([other], () => assertError(() => saveModel(other, dir, { extraFiles: [join(holder, 'no-such-tokenizer.json')] }), /no-such-tokenizer\.json/));
      assert.deepEqual(readdirSync(holder), ['model'], 'a temp or backup directory was left behind');
      assert.deepEqual(readdirSync(dir).sort(), [...before.keys()].sort());
      for (const [f, bytes] of before) assert.ok(readFileSync(join(dir, f)).equals(bytes), `${f} changed`);
      const reloaded = loadModel(dir);
      withModels([reloaded], () => assertSameLogits(m, reloaded, ROWS));
    });
  });
});
