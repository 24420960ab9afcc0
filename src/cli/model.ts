/** `rlhf convert llama2c`, `rlhf generate`, `rlhf score`: the model layer from the command line. */
import { existsSync } from 'node:fs';
import { generate } from '../generate/generate.js';
import { tokenLogprobs } from '../generate/score.js';
import { loadModel, resolveModelDir, saveModel } from '../models/hub.js';
import { readLlama2c } from '../models/llama2c.js';
import { initModel, publishedConfigs } from '../models/init.js';
import { LlamaForCausalLM } from '../models/llama.js';
import { dispose, noGrad, scope, tensor } from '../tensor/index.js';
import { cannotFit, loadTokenizer, type Tokenizer } from '../text/index.js';
import type { Command } from './main.js';
import { UsageError, seedOption } from './args.js';

function modelAndTokenizer(name: string) {
  const dir = resolveModelDir(name);
  const model = loadModel(dir);
  const tokenizer = loadTokenizer(dir, { eosIds: model.config.eosTokenIds });
  return { model, tokenizer };
}

/**
 * A prompt's ids, BOS first. One longer than `room` tokens is a usage error, decided from its characters
 * alone when they are too many to fit (a megabyte prompt is refused before it is encoded).
 */
function encodePrompt(tok: Tokenizer, text: string, room: number, index: number): number[] {
  const tooLong = (n: string) => new UsageError(`--prompt ${index + 1} is ${n}: over the ${room} tokens the model's context leaves with --max-new-tokens`);
  if (cannotFit(tok, room, text)) throw tooLong(`${text.length} characters`);
  const ids = tok.encode(text, { addBos: true });
  if (ids.length > room) throw tooLong(`${ids.length} tokens`);
  if (ids.length === 0) {
    if (tok.bosId === null) throw new UsageError('an empty prompt needs a tokenizer with a BOS token');
    return [tok.bosId];
  }
  return ids;
}

interface GenerateOutput {
  completions: { prompt: string; text: string; tokens: number[]; logprobs: number[]; finish_reason: string }[];
}

export const modelCommands: Record<string, Command> = {
  'init-model': {
    summary: 'write a random-weight Hugging Face directory of a published config (assets/configs) with its real tokenizer',
    options: [
      { name: 'config', type: 'string', help: `a published config (${publishedConfigs().join(', ')}) or a config.json path (required)` },
      { name: 'out', type: 'string', help: 'output directory (required; replaced atomically)' },
      seedOption('seed', 'seed of the weights'),
      { name: 'tokenizer', type: 'string', default: '', help: "a tokenizer directory or a packaged tokenizer's name ('' = the config's model_type's packaged one)" },
    ],
    async run(o) {
      for (const k of ['config', 'out']) if (!o[k]) throw new UsageError(`--${k} is required`);
      const tokenizer = (o.tokenizer as string) || undefined;
      return initModel(o.config as string, o.out as string, { seed: o.seed as number, ...(tokenizer ? { tokenizer } : {}) });
    },
  },

  'convert llama2c': {
    summary: "convert a llama2.c checkpoint (legacy or v1) and its tokenizer.bin to a Hugging Face-layout directory",
    options: [
      { name: 'checkpoint', type: 'string', help: 'the llama2.c .bin checkpoint (required)' },
      { name: 'tokenizer', type: 'string', help: "llama2.c tokenizer.bin to copy into the directory (required)" },
      { name: 'out', type: 'string', help: 'output directory (required; replaced atomically)' },
    ],
    async run(o) {
      for (const k of ['checkpoint', 'tokenizer', 'out']) if (!o[k]) throw new UsageError(`--${k} is required`);
      for (const k of ['checkpoint', 'tokenizer']) if (!existsSync(o[k] as string)) throw new Error(`--${k}: ${String(o[k])} does not exist`);
      return scope(() => {
        const { config, state } = readLlama2c(o.checkpoint as string);
        const model = new LlamaForCausalLM(config);
        let parameters = 0;
        try {
          model.loadStateDict(state, { source: o.checkpoint as string });
          saveModel(model, o.out as string, { extraFiles: [o.tokenizer as string], metadata: { source: 'llama2.c' } });
          parameters = model.numParameters();
        } finally {
          model.dispose();
          dispose([...state.values()]);
        }
        return { out: o.out, parameters, layers: config.numLayers, dim: config.hiddenSize, vocab: config.vocabSize };
      });
    },
  },

  generate: {
    summary: 'sample completions for one or more prompts (one left-padded batch, KV cache)',
    options: [
      { name: 'model', type: 'string', default: 'stories260k', help: "a model directory, or 'stories260k' (embedded)" },
      { name: 'prompt', type: 'strings', default: [''], help: 'a prompt (repeatable); empty means BOS only' },
      { name: 'max-new-tokens', type: 'number', default: 128, help: 'tokens to generate at most', integer: true, min: 0 },
      { name: 'temperature', type: 'number', default: 1, help: '0 is greedy', min: 0 },
      { name: 'top-k', type: 'number', default: 0, help: 'keep the k most likely tokens (0 = off)', integer: true, min: 0 },
      { name: 'top-p', type: 'number', default: 1, help: 'nucleus sampling mass in (0, 1] (1 = off)', max: 1 },
      seedOption('seed', 'seed of the per-prompt sampling streams'),
      { name: 'batch-size', type: 'number', default: 64, help: 'prompts per batch', integer: true, min: 1 },
    ],
    async run(o): Promise<GenerateOutput> {
      const bs = o['batch-size'] as number;
      if (!((o['top-p'] as number) > 0)) throw new UsageError(`--top-p must be in (0, 1], got ${o['top-p'] as number}`);
      const { model, tokenizer } = modelAndTokenizer(o.model as string);
      try {
        const prompts = o.prompt as string[];
        const room = model.config.maxPositions - (o['max-new-tokens'] as number);
        if (room < 1) throw new UsageError(`--max-new-tokens ${o['max-new-tokens'] as number} leaves no room for a prompt in the model's ${model.config.maxPositions} positions`);
        const ids = prompts.map((p, i) => encodePrompt(tokenizer, p, room, i));
        const out: GenerateOutput['completions'] = [];
        for (let s = 0; s < ids.length; s += bs) {
          const chunk = ids.slice(s, s + bs);
          // Stream = the prompt's global index, so results do not depend on --batch-size.
          const cs = generate(model, chunk, {
            maxNewTokens: o['max-new-tokens'] as number, temperature: o.temperature as number, topK: o['top-k'] as number,
            topP: o['top-p'] as number, seed: o.seed as number, streams: chunk.map((_, i) => s + i),
          });
          cs.forEach((c, i) => {
            const p = chunk[i]!;
            const text = tokenizer.decode([...p, ...c.tokens]).slice(tokenizer.decode(p).length);
            out.push({ prompt: prompts[s + i]!, text, tokens: c.tokens, logprobs: c.logprobs, finish_reason: c.finishReason });
          });
        }
        return { completions: out };
      } finally {
        model.dispose();
      }
    },
    human(r) {
      // As llama2.c prints it: prompt then completion, then the newline a terminal needs.
      return (r as GenerateOutput).completions.map((c) => c.prompt + c.text).join('\n\n') + '\n';
    },
  },

  score: {
    summary: 'teacher-forced log-probabilities of a text under a model',
    options: [
      { name: 'model', type: 'string', default: 'stories260k', help: "a model directory, or 'stories260k' (embedded)" },
      { name: 'text', type: 'string', help: 'the text to score (required)' },
    ],
    async run(o) {
      if (o.text === undefined) throw new UsageError('--text is required');
      const { model, tokenizer } = modelAndTokenizer(o.model as string);
      try {
        const text = o.text as string;
        if (cannotFit(tokenizer, model.config.maxPositions, text)) throw new UsageError(`--text is ${text.length} characters: over the model's ${model.config.maxPositions} positions`);
        const tokens = tokenizer.encode(text, { addBos: true });
        if (tokens.length > model.config.maxPositions) throw new UsageError(`--text is ${tokens.length} tokens: over the model's ${model.config.maxPositions} positions`);
        if (tokens.length < 2) throw new UsageError('--text must encode to at least 2 tokens (BOS included) to score anything');
        const logprobs = noGrad(() => scope(() => Array.from(tokenLogprobs(model, tensor([tokens.map(BigInt)]), null).data() as Float32Array)));
        return { tokens, logprobs, sum_logprob: logprobs.reduce((a, b) => a + b, 0) };
      } finally {
        model.dispose();
      }
    },
  },
};

