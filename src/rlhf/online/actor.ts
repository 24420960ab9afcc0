/**
 * The actor (policy) and critic (value function) of online RL, read in one pass over prompt + completion.
 *
 * Glossary (shapes; B sequences, T = the longest prompt + completion, A = the longest completion):
 *   ids, attentionMask  (B, T)  prompt + completion, left-padded (as generation pads)
 *   actionIndex         (B, A)  the column of the hidden state that predicts completion token j
 *   actionMask          (B, A)  1 on completion tokens, 0 on padding (float32)
 *   logProbs            (B, A)  log π(a_j | s_j) under the current policy
 *   oldLogProbs         (B, A)  the same under the policy that sampled the rollout
 *   refLogProbs         (B, A)  the same under the frozen reference
 *   values              (B, A)  V(s_j): the critic before token j
 *   advantages, returns (B, A)
 * Completions are right-padded in the (B, A) layout, as generate's completionBatch and scoreCompletions lay
 * them out; only A hidden states go through the LM head, not T.
 */
import { noGrad, scope, type Tensor, tensor } from '../../tensor/index.js';
import { Linear } from '../../nn/layers.js';
import { Module } from '../../nn/module.js';
import type { CausalLM } from '../../models/common.js';
import { leftPad, positionsFromMask } from '../../generate/generate.js';
import { headLogprobs } from '../../generate/score.js';
import type { RewardModel } from '../../reward/model.js';

/** A rollout's sequences as model inputs (see the glossary). */
export interface ActionBatch {
  ids: Tensor;
  attentionMask: Tensor;
  positions: Tensor;
  actionIndex: Tensor;
  actionMask: Tensor;
  /** (B, A) int64 completion token ids (0 on padding). */
  actions: Tensor;
  /** Completion tokens in the batch. */
  tokens: number;
}

/** Packs prompts and completions (ids) into an ActionBatch. */
export function packActions(promptIds: readonly (readonly number[])[], completionIds: readonly (readonly number[])[]): ActionBatch {
  if (promptIds.length !== completionIds.length) throw new Error(`${promptIds.length} prompts but ${completionIds.length} completions`);
  const seqs = promptIds.map((p, i) => [...p, ...completionIds[i]!]);
  const width = Math.max(...seqs.map((s) => s.length));
  const b = seqs.length;
  const a = Math.max(1, ...completionIds.map((c) => c.length));
  const index = new BigInt64Array(b * a);
  const actions = new BigInt64Array(b * a);
  const mask = new Float32Array(b * a);
  let tokens = 0;
  completionIds.forEach((c, i) => {
    const start = width - c.length - 1; // the column predicting the first completion token
    for (let j = 0; j < c.length; j++) {
      index[i * a + j] = BigInt(start + j);
      actions[i * a + j] = BigInt(c[j]!);
      mask[i * a + j] = 1;
    }
    tokens += c.length;
  });
  const { ids, mask: attentionMask } = leftPad(seqs, width);
  return {
    ids, attentionMask, positions: positionsFromMask(attentionMask),
    actionIndex: tensor(index, { shape: [b, a] }), actionMask: tensor(mask, { shape: [b, a] }),
    actions: tensor(actions, { shape: [b, a] }), tokens,
  };
}

/** Rows [start, start + n) of a batch (a mini- or micro-batch), sharing nothing with it. */
export function sliceActions(batch: ActionBatch, rows: readonly number[]): ActionBatch {
  return scope(() => {
    const idx = tensor(BigInt64Array.from(rows, BigInt));
    const pick = (t: Tensor) => t.indexSelect(0, idx);
    const actionMask = pick(batch.actionMask);
    return {
      ids: pick(batch.ids), attentionMask: pick(batch.attentionMask), positions: pick(batch.positions),
      actionIndex: pick(batch.actionIndex), actionMask, actions: pick(batch.actions), tokens: actionMask.sum().item(),
    };
  });
}

export function disposeActions(batch: ActionBatch): void {
  for (const t of [batch.ids, batch.attentionMask, batch.positions, batch.actionIndex, batch.actionMask, batch.actions]) t.dispose();
}

/** Hidden states (B, A, C) at the action columns of (B, T, C). */
function atActions(h: Tensor, batch: ActionBatch): Tensor {
  const c = h.size(2);
  const [b, a] = batch.actionIndex.shape as [number, number];
  return h.gather(1, batch.actionIndex.unsqueeze(-1).expand(b, a, c)); // (B, A, C)
}

export interface ActorOutput {
  logProbs: Tensor;
  /** (B, A) values from a value head on the policy's backbone; null without one. */
  values: Tensor | null;
  /** (B, A) per-token entropy of π (only when asked for). */
  entropy: Tensor | null;
}

/** log π of the batch's actions (and values, entropy) in one backbone pass. */
export function actorForward(policy: CausalLM, batch: ActionBatch, opts: { valueHead?: ValueHead | null; entropy?: boolean } = {}): ActorOutput {
  const h = policy.hidden(batch.ids, { attentionMask: batch.attentionMask, positionIds: batch.positions }); // (B, T, C)
  const ha = atActions(h, batch); // (B, A, C)
  // The LM head over chunks of actions: the (B, A, V) logits are never whole (src/generate/score.ts).
  const head = headLogprobs(policy, ha, batch.actions, { entropy: opts.entropy ?? false });
  const logProbs = head.logprobs.mul(batch.actionMask); // (B, A)
  const values = opts.valueHead ? opts.valueHead.forward(ha).mul(batch.actionMask) : null;
  const entropy = head.entropy ? head.entropy.mul(batch.actionMask) : null;
  return { logProbs, values, entropy };
}

/** log π_ref of the batch's actions, without gradients. */
export function referenceLogProbs(reference: CausalLM, batch: ActionBatch): Tensor {
  return noGrad(() => scope(() => actorForward(reference, batch).logProbs));
}

/**
 * A scalar value head on the policy's final hidden states (TRL's `AutoModelForCausalLMWithValueHead`),
 * named `v_head` so a checkpoint reads `v_head.weight`, `v_head.bias`. Initialised to zero: V ≡ 0 at the
 * start, so the first advantages are the plain returns.
 */
export class ValueHead extends Module {
  readonly v_head: Linear;
  constructor(hidden: number) {
    super();
    this.v_head = this.child('v_head', new Linear(hidden, 1, { std: 0 }));
  }
  /** (…, C) → (…) */
  forward(h: Tensor): Tensor {
    return this.v_head.forward(h).squeeze(-1);
  }
}

/** A separate value model: a reward-model-shaped backbone + one head, read at the action columns. */
export function criticForward(critic: RewardModel, batch: ActionBatch): Tensor {
  const s = critic.tokenScores(batch.ids, batch.attentionMask); // (B, T, 1)
  return s.squeeze(-1).gather(1, batch.actionIndex).mul(batch.actionMask); // (B, A)
}
