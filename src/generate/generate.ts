/**
 * Batched generation with a KV cache. Prompts of different lengths share one left-padded batch
 * (attention mask + position ids), so every decode step is one forward of shape (B, 1) writing one cache
 * slot. Each sequence samples from its own counter-based random stream (rng.ts): its tokens do not
 * depend on its batch-mates. Phases per step: forward → choose tokens → read back → stop checks.
 */
import { noGrad, scope, type Tensor, tensor, zeros } from '../tensor/index.js';
import type { CausalLM } from '../models/common.js';
import { streamKey, uniformAt } from '../random.js';
import { nextTokens, type SamplingOptions, validateSampling } from './sampling.js';

/** Why a completion stopped: an end-of-sequence token, the token budget, or a stop id. */
export type FinishReason = 'eos' | 'length' | 'stop';

/** Batched generation: sampling settings, the token budget, the seed and stream of each prompt, end ids and stop strings. */
export interface GenerateOptions extends SamplingOptions {
  maxNewTokens: number;
  /** Base seed of the sampling streams (default 0). */
  seed?: number;
  /** Stream id of each prompt (default its index): generating prompt i alone with streams [i] reproduces its batch sample. */
  streams?: readonly number[];
  /**
   * Each row's stream key (random.ts streamKey(seed, stream)), in place of seed and streams: rows batched
   * from different requests (the server's) each keep their own seed's stream.
   */
  streamKeys?: readonly number[];
  /** Ids that end a sequence (default: the model config's eosTokenIds). */
  eosTokenIds?: readonly number[];
  /** Keep the end-of-sequence token (and its log-prob) in the completion, as RL needs. Default false. */
  includeEos?: boolean;
  /** Stop when the decoded completion contains one of these (needs `decode`). */
  stopStrings?: readonly string[];
  decode?: (ids: readonly number[]) => string;
  /** Called for every generated token, in order: (row, token id, raw log-prob). */
  onToken?: (row: number, token: number, logprob: number) => void;
}

/** One generated completion: its token ids, their log-probs under the raw model, and why it stopped. */
export interface Completion {
  /** The completion's token ids (the end-of-sequence token only with includeEos). */
  tokens: number[];
  /** log p(token | prefix) under the raw model, one per token. */
  logprobs: number[];
  finishReason: FinishReason;
}

/** Left-pads token id lists into (B, T) ids and a 0/1 mask (pad id 0: any valid id, it is masked). */
export function leftPad(seqs: readonly (readonly number[])[], width = Math.max(...seqs.map((s) => s.length))): { ids: Tensor; mask: Tensor } {
  const b = seqs.length;
  const ids = new BigInt64Array(b * width);
  const mask = new BigInt64Array(b * width);
  seqs.forEach((s, i) => {
    const off = i * width + width - s.length;
    s.forEach((t, j) => {
      ids[off + j] = BigInt(t);
      mask[off + j] = 1n;
    });
  });
  return { ids: tensor(ids, { shape: [b, width] }), mask: tensor(mask, { shape: [b, width] }) };
}

/** Positions of a left-padded batch: cumsum(mask) − 1, clamped at 0 on the padding. */
export function positionsFromMask(mask: Tensor): Tensor {
  return scope(() => mask.cumsum(1).sub(1).clamp(0, null));
}

/** Samples one completion per prompt (token ids, BOS included) in one left-padded batch with a KV cache; each row draws from its own seeded stream, so a row's sample does not depend on the batch. */
export function generate(model: CausalLM, prompts: readonly (readonly number[])[], opts: GenerateOptions): Completion[] {
  const sampling = validateSampling(opts);
  const b = prompts.length;
  if (b === 0) return [];
  const { maxNewTokens } = opts;
  if (!(Number.isInteger(maxNewTokens) && maxNewTokens >= 0)) throw new Error(`max_new_tokens must be a non-negative integer, got ${maxNewTokens}`);
  prompts.forEach((p, i) => {
    if (p.length === 0) throw new Error(`prompt ${i} is empty: it needs at least one token (e.g. BOS)`);
  });
  const width = Math.max(...prompts.map((p) => p.length));
  const ctx = model.config.maxPositions;
  if (width + maxNewTokens > ctx) {
    throw new Error(`prompt of ${width} tokens + max_new_tokens ${maxNewTokens} exceeds the model's context of ${ctx} positions`);
  }
  const eos = new Set(opts.eosTokenIds ?? model.config.eosTokenIds);
  const seed = opts.seed ?? 0;
  const keys = opts.streamKeys ?? (opts.streams ?? prompts.map((_, i) => i)).map((s) => streamKey(seed, s));
  if (keys.length !== b) throw new Error(`streams has ${keys.length} entries for ${b} prompts`);
  if (opts.stopStrings?.length && !opts.decode) throw new Error('stopStrings needs a decode function');

  const out: Completion[] = prompts.map(() => ({ tokens: [], logprobs: [], finishReason: 'length' }));
  const done = new Array<boolean>(b).fill(maxNewTokens === 0);
  const cache = model.newCache(b, width + maxNewTokens);
  // The decode-step attention bias for the whole run, preallocated (B, 1, 1, width + maxNew): −∞ on
  // the prompts' left padding, 0 elsewhere; step t attends over its first width + t columns.
  const padBias = noGrad(() => scope(() => {
    const like = { dtype: cache.k[0]!.dtype, device: cache.k[0]!.device };
    const m = zeros([b, 1, 1, width + maxNewTokens], like);
    const { mask } = leftPad(prompts, width);
    m.narrow(3, 0, width).copy_(zeros([b, width], like).maskedFill(mask.to(like.device).eq(0), -Infinity).reshape(b, 1, 1, width));
    return m;
  }));
  const lastPositions = Float64Array.from(prompts, (p) => p.length - 1);
  try {
    noGrad(() => {
      const input = leftPad(prompts, width);
      let ids: Tensor = input.ids;
      let positions: Tensor = positionsFromMask(input.mask);
      try {
        for (let t = 0; t < maxNewTokens && done.includes(false); t++) {
          const len = cache.length + ids.size(1);
          const [tok, lp] = scope(() => {
            // Prefill builds its (B, 1, P, P) bias from the mask; decode steps narrow the preallocated one.
            const mask = t === 0 ? { attentionMask: input.mask } : { bias: padBias.narrow(3, 0, len) };
            const logits = model.forward(ids, { cache, ...mask, positionIds: positions, lastOnly: true }).squeeze(1); // (B, V)
            const { tokens, logprobs } = nextTokens(logits, sampling, () => Float64Array.from(keys, (k) => uniformAt(k, t))); // raw-model log-probs
            return [tokens, logprobs] as const;
          });
          ids.dispose();
          positions.dispose();
          for (let i = 0; i < b; i++) {
            if (done[i]) continue;
            const token = Number(tok[i]);
            const c = out[i]!;
            opts.onToken?.(i, token, lp[i]!);
            if (eos.has(token)) {
              done[i] = true;
              c.finishReason = 'eos';
              if (!opts.includeEos) continue;
            }
            c.tokens.push(token);
            c.logprobs.push(lp[i]!);
            if (!done[i] && opts.stopStrings?.length) {
              const text = opts.decode!(c.tokens);
              if (opts.stopStrings.some((s) => text.includes(s))) {
                done[i] = true;
                c.finishReason = 'stop';
              }
            }
          }
          ids = tensor(tok, { shape: [b, 1] });
          for (let i = 0; i < b; i++) lastPositions[i]! += 1;
          positions = tensor(Float64Array.from(lastPositions), { shape: [b, 1], dtype: 'int64' });
        }
      } finally {
        // Also when a step fails (a bad token id, a throwing callback): these live outside any scope.
        ids.dispose();
        positions.dispose();
        input.mask.dispose();
      }
    });
  } finally {
    cache.dispose();
    padBias.dispose();
  }
  return out;
}

/** Completions as padded (B, A) tensors for the RL layer: ids (int64), log-probs (float32), mask (float32). */
export function completionBatch(cs: readonly Completion[], padId = 0): { ids: Tensor; logprobs: Tensor; mask: Tensor } {
  const b = cs.length;
  const a = Math.max(1, ...cs.map((c) => c.tokens.length));
  const ids = new BigInt64Array(b * a).fill(BigInt(padId));
  const lps = new Float32Array(b * a);
  const mask = new Float32Array(b * a);
  cs.forEach((c, i) => {
    c.tokens.forEach((t, j) => {
      ids[i * a + j] = BigInt(t);
      lps[i * a + j] = c.logprobs[j]!;
      mask[i * a + j] = 1;
    });
  });
  return { ids: tensor(ids, { shape: [b, a] }), logprobs: tensor(lps, { shape: [b, a] }), mask: tensor(mask, { shape: [b, a] }) };
}

