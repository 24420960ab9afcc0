/**
 * `rlhf init-model` (src/models/init.ts): the published configs in assets/configs parse (every field
 * honoured or refused) and have the published parameter counts; a random-weight directory of a small Qwen3
 * shape with the real (packaged) tokenizer loads back with its config, its weights drawn from the seed
 * (the same seed the same bytes, another seed others) and its parameter count as parameterCount predicts;
 * bad input is refused naming the config, the tokenizer or the option.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { loadModel, parseConfig, readJson } from '../../src/models/hub.js';
import { initModel, parameterCount, publishedConfigs, resolveConfigPath } from '../../src/models/init.js';
import { packagedTokenizerFiles } from '../../src/text/index.js';
import { rlhf } from './run-cli.js';

const TMP = mkdtempSync(join(tmpdir(), 'rlhf-init-model-'));
after(() => rmSync(TMP, { recursive: true, force: true }));
const TINY = join(TMP, 'tiny-qwen3.json');
writeFileSync(TINY, JSON.stringify({
  model_type: 'qwen3', vocab_size: 151936, hidden_size: 16, intermediate_size: 24, num_hidden_layers: 2, num_attention_heads: 2,
  num_key_value_heads: 1, head_dim: 8, tie_word_embeddings: true, max_position_embeddings: 128, bos_token_id: 151643, eos_token_id: 151645,
}));

describe('rlhf init-model', () => {
  test('the published configs parse and have the published parameter counts', () => {
    const want: Record<string, number> = { 'qwen3-0.6b': 596_049_920, 'qwen2.5-0.5b': 494_032_768, 'smollm2-135m': 134_515_008 };
    assert.deepEqual(publishedConfigs().sort(), Object.keys(want).sort());
    for (const [name, n] of Object.entries(want)) {
      const path = resolveConfigPath(name);
      assert.equal(parameterCount(parseConfig(readJson(path), path)), n, name);
    }
  });

  test('a random-weight Qwen3 with the packaged tokenizer: loads back, seeded, counted', async () => {
    const [a, b, c] = ['a', 'b', 'c'].map((d) => join(TMP, d));
    const r = initModel(TINY, a!, { seed: 1 });
    initModel(TINY, b!, { seed: 1 });
    initModel(TINY, c!, { seed: 2 });
    const m = loadModel(a!);
    try {
      assert.equal(m.numParameters(), r.parameters);
      assert.equal(r.parameters, parameterCount(m.config as Parameters<typeof parameterCount>[0]));
      assert.deepEqual(m.config, parseConfig(readJson(TINY), TINY));
    } finally {
      m.dispose();
    }
    const bytes = (d: string) => readFileSync(join(d, 'model.safetensors'));
    assert.ok(bytes(a!).equals(bytes(b!)), 'the same seed gave other weights');
    assert.ok(!bytes(a!).equals(bytes(c!)), 'another seed gave the same weights');
    for (const f of packagedTokenizerFiles('qwen3')) assert.ok(readFileSync(f).equals(readFileSync(join(a!, f.split('/').pop()!))), f);
  });

  test('bad input is refused by name', async () => {
    assert.throws(() => initModel('nope', join(TMP, 'x'), { seed: 0 }), /config 'nope' is neither a file nor a published config \(.*qwen3-0\.6b/);
    assert.throws(() => initModel('smollm2-135m', join(TMP, 'x'), { seed: 0 }), /no packaged tokenizer for model_type 'llama'/);
    const small = join(TMP, 'small-vocab.json');
    writeFileSync(small, JSON.stringify({ ...(JSON.parse(readFileSync(TINY, 'utf8')) as object), vocab_size: 1000 }));
    assert.throws(() => initModel(small, join(TMP, 'x'), { seed: 0 }), /has ids up to 151668 but .* says vocab_size 1000/);
    const r = await rlhf(['init-model', '--out', join(TMP, 'x')]);
    assert.equal(r.status, 2);
    assert.match(r.stderr, /--config is required/);
  });
});
