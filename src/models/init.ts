/**
 * Random-weight models of published configurations (`rlhf init-model`): a Hugging Face directory with
 * config.json, model.safetensors drawn from a seeded generator (HF's init: normal(0, initializer_range),
 * unit norm gains) and the model's real tokenizer, for tests and benchmarks at real sizes where real
 * weights cannot be downloaded. assets/configs/ holds the published configs by name.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { writeDirAtomic } from '../atomic.js';
import { Generator } from '../tensor/index.js';
import { packagedTokenizerFiles, PACKAGED_TOKENIZERS } from '../text/index.js';
import { type AnyModelConfig, buildModel, configToHf, packageRoot, parseConfig, readJson, tokenizerFiles, writeModelFiles } from './hub.js';

/** The names of the published configs in assets/configs (file names without .json). */
export function publishedConfigs(): string[] {
  return readdirSync(join(packageRoot(), 'assets', 'configs')).filter((f) => f.endsWith('.json')).map((f) => f.slice(0, -5));
}

/** A config argument: a name in assets/configs, or a config.json path. */
export function resolveConfigPath(nameOrPath: string): string {
  const named = join(packageRoot(), 'assets', 'configs', `${nameOrPath}.json`);
  if (existsSync(named)) return named;
  if (existsSync(nameOrPath)) return nameOrPath;
  throw new Error(`config '${nameOrPath}' is neither a file nor a published config (${publishedConfigs().join(', ')})`);
}

/** The largest token id a tokenizer.json defines (its model vocabulary and added tokens). */
function maxTokenId(tokenizerJson: string): number {
  const t = JSON.parse(readFileSync(tokenizerJson, 'utf8')) as { model?: { vocab?: Record<string, number> | [string, number][] }; added_tokens?: { id: number }[] };
  const vocab = t.model?.vocab;
  let max = Array.isArray(vocab) ? vocab.length - 1 : -1;
  for (const id of Array.isArray(vocab) ? [] : Object.values(vocab ?? {})) max = Math.max(max, id);
  for (const a of t.added_tokens ?? []) max = Math.max(max, a.id);
  return max;
}

/** What initModel wrote. */
export interface InitModelResult {
  out: string;
  config: string;
  modelType: string;
  parameters: number;
  /** Where the tokenizer files came from (a directory or a packaged tokenizer's name). */
  tokenizer: string;
}

/**
 * Writes a random-weight model of `config` (a published name or a config.json path) into `out`
 * (atomically) with its tokenizer: `opts.tokenizer` (a directory, or a packaged tokenizer's name), by
 * default the packaged tokenizer of the config's model_type. A tokenizer with ids beyond the config's
 * vocab_size is refused.
 */
export function initModel(config: string, out: string, opts: { seed: number; tokenizer?: string }): InitModelResult {
  const path = resolveConfigPath(config);
  const raw = readJson(path);
  const parsed = parseConfig(raw, path);
  const modelType = String(raw.model_type ?? parsed.architecture);
  const source = opts.tokenizer ?? (PACKAGED_TOKENIZERS[modelType] ? modelType : null);
  if (source === null) throw new Error(`no packaged tokenizer for model_type '${modelType}': give a tokenizer directory (--tokenizer DIR)`);
  const files = existsSync(source) ? tokenizerFiles(source) : packagedTokenizerFiles(source);
  const json = files.find((f) => basename(f) === 'tokenizer.json');
  const maxId = json ? maxTokenId(json) : -1;
  if (maxId >= parsed.vocabSize) throw new Error(`tokenizer '${source}' has ids up to ${maxId} but ${path} says vocab_size ${parsed.vocabSize}`);
  const gen = new Generator(opts.seed);
  const model = buildModel(parsed, { generator: gen });
  try {
    writeDirAtomic(out, (tmp) => writeModelFiles(tmp, configToHf(parsed), model.stateDict(), { extraFiles: files, metadata: { rlhf: 'init-model', seed: String(opts.seed) } }));
    return { out, config: path, modelType, parameters: model.numParameters(), tokenizer: source };
  } finally {
    model.dispose();
    gen.dispose();
  }
}

/**
 * The number of parameters a config's model has, from its sizes alone (nothing allocated): what a memory
 * prediction starts from. Qwen3-0.6B: 596,049,920; Qwen2.5-0.5B: 494,032,768; SmolLM2-135M: 134,515,008.
 */
export function parameterCount(c: AnyModelConfig): number {
  const { vocabSize: v, hiddenSize: d, numLayers: l } = c;
  const head = c.tieWordEmbeddings ? 0 : v * d;
  if (c.architecture === 'gpt2') {
    const block = 4 * d + (d * 3 * d + 3 * d) + (d * d + d) + (d * c.innerSize + c.innerSize) + (c.innerSize * d + d);
    return v * d + c.maxPositions * d + l * block + 2 * d + head;
  }
  const { numHeads: nh, numKvHeads: nkv, headDim: hs, intermediateSize: i } = c;
  const attn = d * nh * hs + 2 * d * nkv * hs + nh * hs * d + (c.qkvBias ? nh * hs + 2 * nkv * hs : 0) + (c.oBias ? d : 0) + (c.qkNorm ? 2 * hs : 0);
  const mlp = 3 * d * i + (c.mlpBias ? 2 * i + d : 0);
  return v * d + l * (attn + mlp + 2 * d) + d + head;
}
