/**
 * The adapter rlhf-ts writes for the PEFT round trip (test/fixtures/peft/from-rlhf-ts): LoRA r 3, α 6 on
 * q_proj, o_proj and gate_proj of the tiny Qwen3 fixture, A from PEFT's init and B from N(0, 0.1²), both
 * seeded. scripts/fixtures/peft_adapters.py runs this file (`node dist/test/native/lora-fixture.js DIR`)
 * and loads the result in Python peft 0.21 for the expected logits; lora.test.ts checks that rlhf-ts still
 * writes the same adapter.
 */
import { fileURLToPath } from 'node:url';
import { loadModel } from '../../src/models/hub.js';
import { savePeftAdapter } from '../../src/models/peft.js';
import { applyLora, type LoraConfig, randomizeLoraB } from '../../src/nn/lora.js';
import { Generator } from '../../src/tensor/index.js';

export const BASE_DIR = new URL('../../../test/fixtures/hf-models/qwen3/', import.meta.url).pathname;
export const RLHF_LORA: LoraConfig = { r: 3, alpha: 6, dropout: 0, targetModules: ['q_proj', 'o_proj', 'gate_proj'], useRslora: false };

/** Writes the adapter into `dir` (a PEFT directory). */
export function writeRlhfAdapter(dir: string): void {
  const model = loadModel(BASE_DIR);
  const gen = new Generator(7);
  const adapters = applyLora(model, RLHF_LORA, { generator: gen });
  try {
    randomizeLoraB(adapters, 0.1, gen);
    savePeftAdapter(adapters, dir, { baseModel: 'test/fixtures/hf-models/qwen3' });
  } finally {
    adapters.detach();
    model.dispose();
    gen.dispose();
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) writeRlhfAdapter(process.argv[2] ?? 'test/fixtures/peft/from-rlhf-ts');
