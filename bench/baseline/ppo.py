"""Plain-PyTorch baseline for `rlhf bench ppo`: one PPO iteration on stories260K (issue 5, [bench]).

Written as a competent PyTorch user would: torch.inference_mode for everything that
needs no gradient, a preallocated KV cache written in place, no copies it does not need. Grouped-query
attention: the sampling loop folds the G query heads of each KV head into its rows (as generate.py does,
no per-step repeat of the cache); the full-sequence forwards (scoring and update) repeat k/v to every
query head as HF's `repeat_kv` does (as rm.py does), with a precomputed causal bias added in place and
the 1/√head_dim scale applied to q (T/head_dim times fewer multiplies than scaling the scores). Weights
come from assets/stories260k/model.safetensors (common.load_safetensors: this machine's Python has no
safetensors package). Everything is fp32; thread counts are set by common.start (libtorch's and
OpenBLAS's).

Models (the TypeScript side, bench/ppo.ts, must build the same ones)
  policy     stories260K, every parameter trainable (tied embedding / LM head counted once), plus a value
             head: Linear(hidden, 1, bias=False) on the policy's final normed hidden states, weight set to
             0.1·sin(i + 1), i = 0 … hidden − 1 (rm.py's pattern).
  reference  a frozen copy of stories260K (the same weights as the policy starts with).
  reward     stories260K backbone + `score` head Linear(hidden, 1, bias=False), weight 0.1·sin(i + 1) (as
             rm.py); the reward of a sequence is the score at its last position. Frozen.

One iteration (B = 64 sequences, N = 64 new tokens, 4 minibatches of 16; --batch / --new-tokens change
B and N for a quick run, never the check)
  1 generation   B prompts, each [BOS = 1]; N decode steps with a KV cache of N slots per layer
                 (B, n_kv_heads, N, head_dim), temperature 1: logp = log_softmax(raw logits), token =
                 multinomial(exp(logp)) from a torch.Generator seeded 0 once per process; the sampled
                 token's logp is recorded (the old log-probs). No early stopping and no end-of-sequence
                 check: every completion has exactly N tokens. Result: ids (B, N + 1) = BOS + completion.
  2 scoring      (no gradient) three forwards over the (B, N + 1) sequences, backbone over all N + 1
                 positions:
                   reference → LM head at positions 0 … N − 1 → log-probs of the completion tokens (B, N)
                   policy    → value head at positions 0 … N − 1 → old values (B, N)
                   reward    → score head at position N → rewards (B,)
                 then, still under no gradient (and timed as scoring):
                   r_t = −β (logp_old_t − logp_ref_t), β = 0.05, plus the reward at t = N − 1
                   GAE, γ = 1, λ = 0.95, V after the last token = 0: δ_t = r_t + γ V_{t+1} − V_t,
                     A_t = δ_t + γλ A_{t+1}; returns R = A + V_old
                   advantages whitened over all B·N tokens: (A − mean) / (std + 1e-8), std unbiased
                 (the scoring phase ends with ordinary copies of the five (B, N) / (B, N + 1) tensors
                 the update reads: inference-mode tensors cannot be saved for backward)
  3 update       1 epoch: a random permutation of the B rows (same generator) cut into 4 minibatches;
                 per minibatch: a forward of the policy with gradient over its (B/4, N + 1) sequences →
                 LM head and value head at positions 0 … N − 1 → new log-probs and values;
                   ρ = exp(logp − logp_old);  pg = −min(ρA, clip(ρ, 0.8, 1.2) A)            (ε = 0.2)
                   vf = ½ max((V − R)², (V_old + clip(V − V_old, −0.2, 0.2) − R)²)
                   loss = mean(pg) + 0.1 · mean(vf)       (token means: Σ / (B/4 · N), no padding)
                 (the clip fraction, a logged metric, is computed but not read back)
                 loss.backward(); clip_grad_norm_(policy + value head, 1.0); AdamW step (lr 1e-5,
                 betas (0.9, 0.999), eps 1e-8, weight decay 0); zero_grad(set_to_none=True); loss.item()
                 (what a training loop logs).

Protocol (common.py): the process is started as `ppo.py --threads T [--batch B] [--new-tokens N]`,
prints one `hello` line, then answers one JSON line per command line:
  {"case": "iteration", "iters": n}  → {"seconds": s, "generation": g, "scoring": c, "update": u}
      runs n whole iterations on one persistent policy/optimiser (created on the first call, untimed) and
      returns the seconds they took in all and per phase (summed over the n; s is the wall time of the n
      iterations, so s ≥ g + c + u by a few microseconds).
  {"case": "check", "iters": 1}      → {"refLogProbSum": …, "oldLogProbSum": …, "reward0": …, …}
      fresh models and a fixed rollout; see `check` below for the exact definition of every number.
  An unknown case or a failure answers {"error": "…"}.
"""
import argparse
import json
import math
import os
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from common import hello, load_safetensors, serve, start  # noqa: E402

torch, threads = start()
F = torch.nn.functional

_p = argparse.ArgumentParser()
_p.add_argument("--batch", type=int, default=64)
_p.add_argument("--new-tokens", type=int, default=64)
_args, _ = _p.parse_known_args()

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
MODEL_DIR = os.path.join(ROOT, "assets", "stories260k")

BATCH, NEW_TOKENS, MINIBATCHES = _args.batch, _args.new_tokens, 4
assert BATCH % MINIBATCHES == 0, f"--batch must be a multiple of {MINIBATCHES}"
BOS, FIRST_ID, SEED = 1, 3, 12345
BETA, GAMMA, LAM, CLIP, VCLIP, VF_COEF = 0.05, 1.0, 0.95, 0.2, 0.2, 0.1
LR, MAX_NORM = 1e-5, 1.0

cfg = json.load(open(os.path.join(MODEL_DIR, "config.json")))
WEIGHTS = load_safetensors(os.path.join(MODEL_DIR, "model.safetensors"))
D, L, NH, NKV = cfg["hidden_size"], cfg["num_hidden_layers"], cfg["num_attention_heads"], cfg["num_key_value_heads"]
HS, G, V, EPS = D // NH, NH // NKV, cfg["vocab_size"], cfg["rms_norm_eps"]
MAXPOS = cfg["max_position_embeddings"]
SCALE = 1.0 / math.sqrt(HS)  # applied to q (B, NH, T, HS) rather than to the T/HS times larger scores


# ---- the model ------------------------------------------------------------------------------------------
def linear(w):
    m = torch.nn.Linear(w.shape[1], w.shape[0], bias=False)
    with torch.no_grad():
        m.weight.copy_(w)
    return m


def sin_head():
    """A bias-free Linear(D, 1) with weight 0.1·sin(i + 1) (rm.py's score-head pattern)."""
    m = torch.nn.Linear(D, 1, bias=False)
    with torch.no_grad():
        m.weight.copy_(0.1 * torch.sin(torch.arange(1, D + 1, dtype=torch.float64)).float()[None])
    return m


class RMSNorm(torch.nn.Module):
    def __init__(self, w):
        super().__init__()
        self.weight = torch.nn.Parameter(w.clone())

    def forward(self, x):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + EPS) * self.weight


def rope(x, cos, sin):
    """HF's rotate-half RoPE with the sign of rotate_half folded into `sin` (its first half negated)."""
    h = HS // 2
    return x * cos + torch.cat([x[..., h:], x[..., :h]], -1) * sin


def repeat_kv(x):
    """HF's repeat_kv: (B, NKV, T, HS) → (B, NH, T, HS), each kv head read by its G query heads."""
    b, n, t, hs = x.shape
    return x[:, :, None].expand(b, n, G, t, hs).reshape(b, n * G, t, hs)


class Attention(torch.nn.Module):
    def __init__(self, p):
        super().__init__()
        self.q_proj, self.k_proj = linear(p("self_attn.q_proj")), linear(p("self_attn.k_proj"))
        self.v_proj, self.o_proj = linear(p("self_attn.v_proj")), linear(p("self_attn.o_proj"))

    def forward(self, x, cos, sin, bias):
        """Full causal sequence (training and scoring): x (B, T, D)."""
        b, t, _ = x.shape
        q = rope(self.q_proj(x).view(b, t, NH, HS).transpose(1, 2), cos, sin) * SCALE  # (B, NH, T, HS)
        k = rope(self.k_proj(x).view(b, t, NKV, HS).transpose(1, 2), cos, sin)  # (B, NKV, T, HS)
        v = self.v_proj(x).view(b, t, NKV, HS).transpose(1, 2)
        k, v = repeat_kv(k), repeat_kv(v)
        att = (q @ k.transpose(-2, -1)).add_(bias)  # (B, NH, T, T); the causal bias added in place
        y = att.softmax(-1) @ v  # (B, NH, T, HS)
        return self.o_proj(y.transpose(1, 2).reshape(b, t, NH * HS))

    def step(self, x, pos, cos, sin, kc, vc):
        """One decode position: x (B, 1, D); writes cache slot `pos` of kc, vc (B, NKV, S, HS)."""
        b = x.shape[0]
        q = rope(self.q_proj(x).view(b, 1, NH, HS).transpose(1, 2), cos, sin) * SCALE  # (B, NH, 1, HS)
        kc[:, :, pos : pos + 1] = rope(self.k_proj(x).view(b, 1, NKV, HS).transpose(1, 2), cos, sin)
        vc[:, :, pos : pos + 1] = self.v_proj(x).view(b, 1, NKV, HS).transpose(1, 2)
        kk, vv = kc[:, :, : pos + 1], vc[:, :, : pos + 1]  # views, no copy
        qg = q.reshape(b, NKV, G, HS)  # the G query heads of a KV head as its rows: no repeat of the cache
        att = qg @ kk.transpose(-2, -1)  # (B, NKV, G, pos + 1)
        y = att.softmax(-1) @ vv  # (B, NKV, G, HS)
        return self.o_proj(y.reshape(b, 1, NH * HS))


class MLP(torch.nn.Module):
    def __init__(self, p):
        super().__init__()
        self.gate_proj, self.up_proj, self.down_proj = linear(p("mlp.gate_proj")), linear(p("mlp.up_proj")), linear(p("mlp.down_proj"))

    def forward(self, x):
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))


class Layer(torch.nn.Module):
    def __init__(self, i):
        super().__init__()
        p = lambda n: WEIGHTS[f"model.layers.{i}.{n}.weight"]  # noqa: E731
        self.self_attn, self.mlp = Attention(p), MLP(p)
        self.input_layernorm, self.post_attention_layernorm = RMSNorm(p("input_layernorm")), RMSNorm(p("post_attention_layernorm"))

    def forward(self, x, cos, sin, bias):
        x = x + self.self_attn(self.input_layernorm(x), cos, sin, bias)
        return x + self.mlp(self.post_attention_layernorm(x))

    def step(self, x, pos, cos, sin, kc, vc):
        x = x + self.self_attn.step(self.input_layernorm(x), pos, cos, sin, kc, vc)
        return x + self.mlp(self.post_attention_layernorm(x))


class Llama(torch.nn.Module):
    """stories260K (tied LM head) with an optional bias-free one-output head on the final normed states."""

    def __init__(self, with_head=False):
        super().__init__()
        self.embed_tokens = torch.nn.Embedding(V, D)
        with torch.no_grad():
            self.embed_tokens.weight.copy_(WEIGHTS["model.embed_tokens.weight"])
        self.layers = torch.nn.ModuleList([Layer(i) for i in range(L)])
        self.norm = RMSNorm(WEIGHTS["model.norm.weight"])
        self.head = sin_head() if with_head else None
        inv = 1.0 / (cfg["rope_theta"] ** (torch.arange(0, HS, 2, dtype=torch.float64) / HS))
        ang = torch.arange(MAXPOS, dtype=torch.float64)[:, None] * inv[None, :]
        self.register_buffer("cos", torch.cat([ang.cos(), ang.cos()], -1).float(), persistent=False)
        self.register_buffer("sin", torch.cat([-ang.sin(), ang.sin()], -1).float(), persistent=False)
        causal = torch.ones(MAXPOS, MAXPOS, dtype=torch.bool).tril()
        self.register_buffer("bias", torch.zeros(MAXPOS, MAXPOS).masked_fill(~causal, float("-inf")), persistent=False)

    def backbone(self, ids):
        """The residual stream after the last layer (B, T, D), before the final norm. No padding: every
        row is a full sequence from position 0."""
        t = ids.shape[1]
        cos, sin, bias = self.cos[:t], self.sin[:t], self.bias[:t, :t]
        x = self.embed_tokens(ids)
        for layer in self.layers:
            x = layer(x, cos, sin, bias)
        return x

    def token_logprobs(self, h, ids):
        """log p(ids[:, t + 1] | ids[:, :t + 1]) from the normed states h (B, T − 1, D) at positions 0 … T − 2."""
        logits = F.linear(h, self.embed_tokens.weight)  # (B, T − 1, V)
        return logits.log_softmax(-1).gather(-1, ids[:, 1:, None])[..., 0]

    def logprobs_and_values(self, ids):
        """New log-probs and values (B, T − 1) of the completion tokens: the update's forward."""
        h = self.norm(self.backbone(ids)[:, :-1])
        return self.token_logprobs(h, ids), self.head(h)[..., 0]

    def logprobs(self, ids):
        return self.token_logprobs(self.norm(self.backbone(ids)[:, :-1]), ids)

    def values(self, ids):
        return self.head(self.norm(self.backbone(ids)[:, :-1]))[..., 0]

    def last_score(self, ids):
        return self.head(self.norm(self.backbone(ids)[:, -1]))[:, 0]

    def step(self, tok, pos, caches):
        """One decode step for tokens (B,) at position pos; returns the raw logits (B, V)."""
        x = self.embed_tokens(tok)[:, None]  # (B, 1, D)
        cos, sin = self.cos[pos], self.sin[pos]
        for layer, (kc, vc) in zip(self.layers, caches):
            x = layer.step(x, pos, cos, sin, kc, vc)
        return F.linear(self.norm(x[:, 0]), self.embed_tokens.weight)


def frozen(m):
    return m.requires_grad_(False).eval()


# ---- one iteration ------------------------------------------------------------------------------------
def generate(policy, batch, new_tokens, gen):
    """ids (B, 1 + N) from BOS and the sampled tokens' raw log-probs (B, N); call under inference_mode."""
    caches = [(torch.empty(batch, NKV, new_tokens, HS), torch.empty(batch, NKV, new_tokens, HS)) for _ in range(L)]
    ids = torch.empty(batch, new_tokens + 1, dtype=torch.long)
    ids[:, 0] = BOS
    old_logp = torch.empty(batch, new_tokens)
    for pos in range(new_tokens):
        logp = policy.step(ids[:, pos], pos, caches).log_softmax(-1)  # temperature 1
        tok = torch.multinomial(logp.exp(), 1, generator=gen)  # (B, 1)
        ids[:, pos + 1 : pos + 2] = tok
        old_logp[:, pos : pos + 1] = logp.gather(-1, tok)
    return ids, old_logp


def advantages_and_returns(old_logp, ref_logp, old_values, scores):
    """Per-token KL-penalised rewards, GAE and whitening (the iteration's step 3); under inference_mode."""
    rewards = (ref_logp - old_logp).mul_(BETA)  # −β (logp_old − logp_ref)
    rewards[:, -1] += scores
    n = rewards.shape[1]
    adv = torch.empty_like(rewards)
    last = torch.zeros(rewards.shape[0])
    for t in reversed(range(n)):
        next_v = old_values[:, t + 1] if t + 1 < n else 0.0
        delta = rewards[:, t] + GAMMA * next_v - old_values[:, t]
        last = delta + GAMMA * LAM * last
        adv[:, t] = last
    returns = adv + old_values
    whitened = (adv - adv.mean()) / (adv.std() + 1e-8)
    return whitened, returns, adv


def score(policy, ref, rm, ids, old_logp):
    """Step 2 and 3: reference log-probs, old values, rewards, advantages; under inference_mode."""
    ref_logp = ref.logprobs(ids)
    old_values = policy.values(ids)
    scores = rm.last_score(ids)
    adv, returns, raw = advantages_and_returns(old_logp, ref_logp, old_values, scores)
    return {"ref_logp": ref_logp, "old_values": old_values, "scores": scores, "adv": adv, "returns": returns, "raw_adv": raw}


def minibatch_loss(policy, ids, old_logp, old_values, adv, returns):
    logp, values = policy.logprobs_and_values(ids)
    ratio = (logp - old_logp).exp()
    pg = -torch.min(ratio * adv, ratio.clamp(1 - CLIP, 1 + CLIP) * adv)
    v_clipped = old_values + (values - old_values).clamp(-VCLIP, VCLIP)
    vf = 0.5 * torch.max((values - returns).square(), (v_clipped - returns).square())
    clipped = (ratio.clamp(1 - CLIP, 1 + CLIP) * adv < ratio * adv).float().mean()
    return pg.mean() + VF_COEF * vf.mean(), clipped


def update_step(policy, opt, params, mb):
    """One minibatch: forward with gradient → loss → backward → clip → AdamW → zero grad."""
    loss, clipped = minibatch_loss(policy, *mb)
    loss.backward()
    norm = torch.nn.utils.clip_grad_norm_(params, MAX_NORM)
    opt.step()
    opt.zero_grad(set_to_none=True)
    return loss.item(), norm, clipped  # loss.item(): what a training loop logs


def new_models():
    policy = Llama(with_head=True)  # the value head is its `head`
    ref = frozen(Llama())
    rm = frozen(Llama(with_head=True))  # the score head is its `head`
    params = list(policy.parameters())
    opt = torch.optim.AdamW(params, lr=LR, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0)
    return policy, ref, rm, params, opt


STATE = None


def iteration(iters):
    global STATE
    if STATE is None:
        STATE = new_models() + (torch.Generator().manual_seed(0),)
    policy, ref, rm, params, opt, gen = STATE
    g = c = u = 0.0
    t_start = time.perf_counter()
    for _ in range(iters):
        t0 = time.perf_counter()
        with torch.inference_mode():
            ids, old_logp = generate(policy, BATCH, NEW_TOKENS, gen)
        t1 = time.perf_counter()
        with torch.inference_mode():
            s = score(policy, ref, rm, ids, old_logp)
        # Inference tensors cannot be saved for backward: normal copies of what the update reads (4 small tensors).
        ids, old_logp, old_values, adv, returns = ids.clone(), old_logp.clone(), s["old_values"].clone(), s["adv"].clone(), s["returns"].clone()
        t2 = time.perf_counter()
        perm = torch.randperm(BATCH, generator=gen)
        for idx in perm.view(MINIBATCHES, -1):
            update_step(policy, opt, params, (ids[idx], old_logp[idx], old_values[idx], adv[idx], returns[idx]))
        t3 = time.perf_counter()
        g, c, u = g + t1 - t0, c + t2 - t1, u + t3 - t2
    return {"seconds": time.perf_counter() - t_start, "generation": g, "scoring": c, "update": u}


# ---- the check ------------------------------------------------------------------------------------------
CHECK_B, CHECK_N = 64, 64


def synthetic_completions(b, n, vocab):
    """b rows of n completion ids, row after row from the LCG s ← (1103515245·s + 12345) mod 2³¹, s₀ = 12345,
    id = 3 + (s >> 16) mod (vocab − 3) (rm.py's generator); returns ids (b, n + 1) with BOS first."""
    s = SEED
    rows = []
    for _ in range(b):
        row = [BOS]
        for _ in range(n):
            s = (s * 1103515245 + 12345) & 0x7FFFFFFF
            row.append(FIRST_ID + (s >> 16) % (vocab - FIRST_ID))
        rows.append(row)
    return torch.tensor(rows, dtype=torch.long)


def forced_logprobs(policy, ids):
    """The generation loop fed the given tokens instead of sampling: each token's raw log-prob (B, N)."""
    b, n = ids.shape[0], ids.shape[1] - 1
    caches = [(torch.empty(b, NKV, n, HS), torch.empty(b, NKV, n, HS)) for _ in range(L)]
    out = torch.empty(b, n)
    for pos in range(n):
        logp = policy.step(ids[:, pos], pos, caches).log_softmax(-1)
        out[:, pos : pos + 1] = logp.gather(-1, ids[:, pos + 1 : pos + 2])
    return out


def check(_iters):
    """Deterministic numbers both sides compute; compare each within 1e-4 relative (max(1, |x|) scale):

    ids = synthetic_completions(64, 64, vocab): a fixed rollout (64 × [BOS + 64 ids]); fresh models.
      oldLogProbSum   Σ of the policy's raw log-probs of the 4096 completion tokens through the KV-cache
                      decode loop fed these tokens (a teacher-forced forward gives the same within noise)
      refLogProbSum   Σ of the reference's log-probs of the same tokens (one teacher-forced forward)
      reward0, rewardMean   the reward model's score of sequence 0 / mean over the 64
      oldValueMean    mean of the policy's old values (64 × 64)
    Then the old log-probs and values are perturbed before advantages, so that the KL penalty, the ratio
    clip and the value clip are all exercised (unperturbed, the first step has ρ = 1 and V = V_old):
      logp_old[b, t] += 0.3·sin(k + 1),  V_old[b, t] += 0.3·cos(k + 1),  k = 64·b + t   (fp64 → fp32)
      rawAdvantageMean, returnMean   mean of the GAE advantages before whitening / of the returns
    The update: one epoch over the minibatches rows 0–15, 16–31, 32–47, 48–63 in this order (no
    permutation), each one step as in the iteration.
      losses[j], gradNorms[j]   minibatch j's loss and its global gradient norm before clipping
      lossAfterFirst  minibatch 0's loss (no gradient) right after the first step
      lossAfterEpoch  minibatch 0's loss (no gradient) after all four steps
      clipFraction0   fraction of minibatch 0's 1024 tokens whose ratio term was clipped (a count: equal
                      within 2/1024)
    """
    policy, ref, rm, params, opt = new_models()
    ids = synthetic_completions(CHECK_B, CHECK_N, V)
    k = torch.arange(CHECK_B * CHECK_N, dtype=torch.float64).view(CHECK_B, CHECK_N) + 1
    with torch.inference_mode():
        old_logp = forced_logprobs(policy, ids)
        s = score(policy, ref, rm, ids, old_logp)
        out = {
            "oldLogProbSum": old_logp.double().sum().item(),
            "refLogProbSum": s["ref_logp"].double().sum().item(),
            "reward0": s["scores"][0].item(),
            "rewardMean": s["scores"].double().mean().item(),
            "oldValueMean": s["old_values"].double().mean().item(),
        }
        old_logp = old_logp + (0.3 * k.sin()).float()
        old_values = s["old_values"] + (0.3 * k.cos()).float()
        adv, returns, raw = advantages_and_returns(old_logp, s["ref_logp"], old_values, s["scores"])
        out["rawAdvantageMean"] = raw.double().mean().item()
        out["returnMean"] = returns.double().mean().item()
    ids, old_logp, old_values, adv, returns = ids.clone(), old_logp.clone(), old_values.clone(), adv.clone(), returns.clone()
    mbs = [tuple(x[j * 16 : (j + 1) * 16] for x in (ids, old_logp, old_values, adv, returns)) for j in range(MINIBATCHES)]
    losses, norms = [], []
    for j, mb in enumerate(mbs):
        loss, norm, clipped = update_step(policy, opt, params, mb)
        losses.append(loss)
        norms.append(norm.item())
        if j == 0:
            out["clipFraction0"] = clipped.item()
            with torch.no_grad():
                out["lossAfterFirst"] = minibatch_loss(policy, *mbs[0])[0].item()
    with torch.no_grad():
        out["lossAfterEpoch"] = minibatch_loss(policy, *mbs[0])[0].item()
    out["losses"], out["gradNorms"] = losses, norms
    return out


hello(torch)
serve({"iteration": iteration, "check": check})
