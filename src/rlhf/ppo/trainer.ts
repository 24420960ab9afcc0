/**
 * PPO: the shared online loop (src/rlhf/online/trainer.ts) with GAE over per-token rewards
 *   r_t = −β·k(π_old, π_ref)_t  (+ the sequence reward at the last token, or dense token rewards),
 * whitened advantages, a critic (value head or separate model) with a clipped value loss, and PPO-ptx.
 */
import { readFileSync } from 'node:fs';
import { leftPad } from '../../generate/generate.js';
import { tokenLogprobs } from '../../generate/score.js';
import { mulberry32 } from '../../random.js';
import { loadTokenizer } from '../../text/index.js';
import { resolveModelDir } from '../../models/hub.js';
import type { CausalLM } from '../../models/common.js';
import { gae, whiten } from '../core/advantages.js';
import { type Algorithm, type OnlineRunOptions, type OnlineRunSummary, trainOnline } from '../online/trainer.js';
import { tokenRewards } from '../online/token-rewards.js';
import type { PpoConfig } from './config.js';

/** The pre-training documents of PPO-ptx, tokenised once. */
function ptxLoss(cfg: PpoConfig): Algorithm<PpoConfig>['extraLoss'] {
  if (cfg.ppo.ptx.coef === 0) return undefined;
  const { path, batchSize, maxTokens, coef } = cfg.ppo.ptx;
  if (!path) throw new Error('ppo.ptx.coef > 0 needs ppo.ptx.path (pre-training text)');
  const tok = loadTokenizer(resolveModelDir(cfg.model.policy));
  const docs = readFileSync(path, 'utf8').split('\n').flatMap((line, i) => {
    if (!line.trim()) return [];
    const text = path.endsWith('.jsonl') ? (JSON.parse(line) as { text?: unknown }).text : line;
    if (typeof text !== 'string') throw new Error(`${path}:${i + 1}: field 'text' must be a string`);
    const ids = tok.encode(text, { addBos: true }).slice(0, maxTokens);
    return ids.length >= 2 ? [ids] : [];
  });
  if (docs.length === 0) throw new Error(`${path}: no pre-training documents of 2 tokens or more`);
  return (policy: CausalLM, step: number, mini: number) => {
    const rand = mulberry32((Math.imul(cfg.seed + 1, 92821) + Math.imul(step, 7919) + mini) >>> 0);
    const batch = Array.from({ length: batchSize }, () => docs[Math.floor(rand() * docs.length)]!);
    const { ids, mask } = leftPad(batch);
    const lp = tokenLogprobs(policy, ids, mask); // (N, T−1): column j scores token j+1
    const target = mask.narrow(1, 1, mask.size(1) - 1).float();
    return lp.mul(target).sum().div(target.sum()).neg().mul(coef);
  };
}

/** PPO as an online Algorithm: GAE over token rewards, whitened advantages, a critic, PPO-ptx when configured. */
export function ppoAlgorithm(cfg: PpoConfig): Algorithm<PpoConfig> {
  return {
    name: 'ppo',
    klInLoss: false,
    critic: (c) => ({ kind: c.ppo.value.kind, init: c.ppo.value.init, coef: c.ppo.value.coef, clip: c.ppo.value.clip, lr: c.ppo.value.lr }),
    advantages(r, rewards, klCoef, c) {
      const perToken = tokenRewards(r, rewards, klCoef, c.kl.estimator);
      const { advantages, returns } = gae(perToken, r.oldValues!, r.batch.actionMask, c.ppo.gamma, c.ppo.lambda);
      return { advantages: c.ppo.whitenAdvantages ? whiten(advantages, r.batch.actionMask) : advantages, returns };
    },
    extraLoss: ptxLoss(cfg),
  };
}

/** Trains a policy with PPO (Schulman et al. 2017; Ouyang et al. 2022) on the shared online loop. */
export function trainPpo(cfg: PpoConfig, opts: OnlineRunOptions = {}): Promise<OnlineRunSummary> {
  return trainOnline(cfg, ppoAlgorithm(cfg), opts);
}
