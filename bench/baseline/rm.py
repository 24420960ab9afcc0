"""Plain-PyTorch baseline for `rlhf bench rm`: a reward model on the stories260K backbone.

The model is the one HF's LlamaForSequenceClassification runs, written out as a competent PyTorch user
would: eager attention (this libtorch, 1.13, has no F.scaled_dot_product_attention),
HF's rotate-half RoPE, RMSNorm, SwiGLU, and a bias-free `score` head read at the last position of a
left-padded batch. Grouped-query attention repeats k/v to every query head (HF's `repeat_kv`,
expand + reshape), for training and evaluation alike: that is what users of HF's forward run. Weights
are read from assets/stories260k/model.safetensors (this machine's Python has no safetensors package);
the head is the fixed pattern 0.1·sin(i + 1) that bench/rm.ts writes into ours.

Cases (the same names as bench/rm.ts's):
  train  one step = forward chosen and rejected together (2B left-padded rows) → Bradley–Terry loss →
         backward → clip grad norm 1.0 → AdamW (lr 1e-4, wd 0.01) → zero grad (set to None); AdamW is
         torch.optim.AdamW(fused=True) when run with --fused 1 (as rlhf-ts's default on libtorch >= 2.4)
  train-unfused  the same with the per-parameter torch.optim.AdamW (its default foreach=None picks the
         per-parameter loop on the CPU), against rlhf-ts's unfused path
  eval   rewards of the same 2B rows under torch.inference_mode, read back to Python
  check  a fresh model's first loss, its gradient norm before clipping, and the loss after one step
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
_p.add_argument("--fused", type=int, default=0)
FUSED = bool(_p.parse_known_args()[0].fused)

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
MODEL_DIR = os.path.join(ROOT, "assets", "stories260k")

# ---- the synthetic pairs: the same ids as bench/rm.ts's syntheticPairs ---------------------------------
PAIRS, MIN_LEN, MAX_LEN, BOS, FIRST_ID, SEED = 16, 32, 64, 1, 3, 12345


def synthetic_pairs(vocab):
    """Pair i: chosen of 32 + 7i mod 33 tokens, rejected of 32 + (11i + 16) mod 33, BOS first, the rest
    from the LCG s ← (1103515245·s + 12345) mod 2³¹, id = 3 + (s >> 16) mod (vocab − 3)."""
    s = SEED
    span = MAX_LEN - MIN_LEN + 1

    def seq(n):
        nonlocal s
        out = [BOS]
        for _ in range(n - 1):
            s = (s * 1103515245 + 12345) & 0x7FFFFFFF
            out.append(FIRST_ID + (s >> 16) % (vocab - FIRST_ID))
        return out

    chosen, rejected = [], []
    for i in range(PAIRS):
        chosen.append(seq(MIN_LEN + (7 * i) % span))
        rejected.append(seq(MIN_LEN + (11 * i + 16) % span))
    return chosen, rejected


def left_pad(seqs):
    width = max(len(q) for q in seqs)
    ids = torch.zeros(len(seqs), width, dtype=torch.long)
    mask = torch.zeros(len(seqs), width, dtype=torch.long)
    for i, q in enumerate(seqs):
        ids[i, width - len(q):] = torch.tensor(q)
        mask[i, width - len(q):] = 1
    return ids, mask


# ---- the model ------------------------------------------------------------------------------------------
cfg = json.load(open(os.path.join(MODEL_DIR, "config.json")))
WEIGHTS = load_safetensors(os.path.join(MODEL_DIR, "model.safetensors"))
D, L, NH, NKV = cfg["hidden_size"], cfg["num_hidden_layers"], cfg["num_attention_heads"], cfg["num_key_value_heads"]
HS, G, V, EPS = D // NH, NH // NKV, cfg["vocab_size"], cfg["rms_norm_eps"]


class RMSNorm(torch.nn.Module):
    def __init__(self, w):
        super().__init__()
        self.weight = torch.nn.Parameter(w.clone())

    def forward(self, x):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + EPS) * self.weight


def linear(w):
    m = torch.nn.Linear(w.shape[1], w.shape[0], bias=False)
    with torch.no_grad():
        m.weight.copy_(w)
    return m


def rotate_half(x):
    h = x.shape[-1] // 2
    return torch.cat((-x[..., h:], x[..., :h]), -1)


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
        b, t, _ = x.shape
        q = self.q_proj(x).view(b, t, NH, HS).transpose(1, 2)  # (B, NH, T, HS)
        k = self.k_proj(x).view(b, t, NKV, HS).transpose(1, 2)  # (B, NKV, T, HS)
        v = self.v_proj(x).view(b, t, NKV, HS).transpose(1, 2)
        q, k = q * cos + rotate_half(q) * sin, k * cos + rotate_half(k) * sin
        k, v = repeat_kv(k), repeat_kv(v)  # (B, NH, T, HS)
        att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(HS)) + bias  # (B, NH, T, T)
        y = att.softmax(-1) @ v  # (B, NH, T, HS)
        return self.o_proj(y.transpose(1, 2).reshape(b, t, NH * HS))


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


class RewardModel(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.embed_tokens = torch.nn.Embedding(V, D)
        with torch.no_grad():
            self.embed_tokens.weight.copy_(WEIGHTS["model.embed_tokens.weight"])
        self.layers = torch.nn.ModuleList([Layer(i) for i in range(L)])
        self.norm = RMSNorm(WEIGHTS["model.norm.weight"])
        self.score = torch.nn.Linear(D, 1, bias=False)
        with torch.no_grad():
            self.score.weight.copy_(0.1 * torch.sin(torch.arange(1, D + 1, dtype=torch.float64)).float()[None])
        inv = 1.0 / (cfg["rope_theta"] ** (torch.arange(0, HS, 2, dtype=torch.float64) / HS))
        ang = torch.arange(cfg["max_position_embeddings"], dtype=torch.float64)[:, None] * inv[None, :]
        self.register_buffer("cos", torch.cat([ang.cos(), ang.cos()], -1).float(), persistent=False)
        self.register_buffer("sin", torch.cat([ang.sin(), ang.sin()], -1).float(), persistent=False)

    def forward(self, ids, mask):
        """Rewards (B,) of left-padded ids (B, T) with mask (B, T)."""
        b, t = ids.shape
        pos = (mask.cumsum(1) - 1).clamp(min=0)  # (B, T)
        cos, sin = self.cos[pos][:, None], self.sin[pos][:, None]  # (B, 1, T, HS)
        # Additive bias (B, 1, T, T): causal and not padding. A pad query (all of whose keys are pads or
        # future) may attend itself, so no softmax row is all −∞ (its NaN would reach real rows as 0·NaN).
        ar = torch.arange(t)
        causal = ar[None, :] <= ar[:, None]  # (T, T)
        allowed = (causal & mask.bool()[:, None, None, :]) | torch.eye(t, dtype=torch.bool)
        bias = torch.zeros(b, 1, t, t).masked_fill(~allowed, float("-inf"))
        x = self.embed_tokens(ids)  # (B, T, D)
        for layer in self.layers:
            x = layer(x, cos, sin, bias)
        return self.score(self.norm(x)[:, -1])[:, 0]  # (B,)


def bt_loss(r, b):
    """Bradley–Terry: mean −log σ(r⁺ − r⁻); chosen rows first, then rejected."""
    return -F.logsigmoid(r[:b] - r[b:]).mean()


CHOSEN, REJECTED = synthetic_pairs(V)
IDS, MASK = left_pad(CHOSEN + REJECTED)  # (2B, T): one forward for both


def new_trainer(fused):
    model = RewardModel()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0.01, **({"fused": True} if fused else {}))
    return model, opt


def train_step(model, opt):
    loss = bt_loss(model(IDS, MASK), PAIRS)
    loss.backward()
    norm = torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    opt.step()
    opt.zero_grad(set_to_none=True)
    return loss.item(), norm.item()  # loss.item(): what a training loop logs


def check(_iters):
    model, opt = new_trainer(FUSED)
    loss, norm = train_step(model, opt)
    with torch.no_grad():
        second = bt_loss(model(IDS, MASK), PAIRS).item()
    return {"loss": loss, "gradNorm": norm, "secondLoss": second}


TRAINERS = {}


def train_with(fused):
    def run(iters):
        if fused not in TRAINERS:
            TRAINERS[fused] = new_trainer(fused)
        model, opt = TRAINERS[fused]
        t0 = time.perf_counter()
        for _ in range(iters):
            train_step(model, opt)
        return time.perf_counter() - t0

    return run


EVAL_MODEL = None


def evaluate(iters):
    global EVAL_MODEL
    if EVAL_MODEL is None:
        EVAL_MODEL = RewardModel().eval()
    t0 = time.perf_counter()
    with torch.inference_mode():
        for _ in range(iters):
            EVAL_MODEL(IDS, MASK).tolist()
    return time.perf_counter() - t0


hello(torch)
serve({"train": train_with(FUSED), "train-unfused": train_with(False), "eval": evaluate, "check": check})
