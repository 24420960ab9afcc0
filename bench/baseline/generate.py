"""Plain-PyTorch baseline for `rlhf bench generate`: stories260K sampling with a KV cache.

Written as a competent PyTorch user would: torch.inference_mode, a preallocated
KV cache written in place, no per-step copies it does not need — in particular no repeat_interleave of
the grouped K/V cache every step (that is where a naive loop loses its time at
large batch): the g query heads of each KV head are folded into its rows instead, as ours does. The same
weights are read from assets/stories260k/model.safetensors (a few lines of safetensors parsing: this
machine's Python has no safetensors package). Each case `bN` samples 128 new tokens for N sequences
from BOS at temperature 1, checking for an end-of-sequence token every step as a real sampler must (but
never stopping, so both sides do the same work).
"""
import json
import math
import os
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from common import hello, load_safetensors, serve, start  # noqa: E402

torch, threads = start()
F = torch.nn.functional

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
MODEL_DIR = os.path.join(ROOT, "assets", "stories260k")
NEW_TOKENS = int(os.environ.get("RLHF_BENCH_NEW_TOKENS", "128"))


cfg = json.load(open(os.path.join(MODEL_DIR, "config.json")))
W = load_safetensors(os.path.join(MODEL_DIR, "model.safetensors"))
D, L, NH, NKV = cfg["hidden_size"], cfg["num_hidden_layers"], cfg["num_attention_heads"], cfg["num_key_value_heads"]
HS, G, V, EPS = D // NH, NH // NKV, cfg["vocab_size"], cfg["rms_norm_eps"]
EOS = torch.tensor([1, 2])
MAXPOS = cfg["max_position_embeddings"]

inv = 1.0 / (cfg["rope_theta"] ** (torch.arange(0, HS, 2, dtype=torch.float64) / HS))
ang = torch.arange(MAXPOS, dtype=torch.float64)[:, None] * inv[None, :]
COS = torch.cat([ang.cos(), ang.cos()], -1).float()
SIN = torch.cat([-ang.sin(), ang.sin()], -1).float()  # first half negated: rotate_half folded in


def rms(x, w):
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + EPS) * w


def rope(x, cos, sin):
    h = HS // 2
    return x * cos + torch.cat([x[..., h:], x[..., :h]], -1) * sin


def layer_w(i, name):
    return W[f"model.layers.{i}.{name}.weight"]


LAYERS = [{n: layer_w(i, n) for n in ["self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj",
                                        "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj", "input_layernorm",
                                        "post_attention_layernorm"]} for i in range(L)]
EMB, NORM = W["model.embed_tokens.weight"], W["model.norm.weight"]


def step(tok, pos, kc, vc):
    """One decode step for tokens (B,) at position pos; writes cache slot pos; returns logits (B, V)."""
    b = tok.shape[0]
    x = EMB[tok][:, None, :]  # (B, 1, D)
    cos, sin = COS[pos], SIN[pos]
    for i, p in enumerate(LAYERS):
        h = rms(x, p["input_layernorm"])
        q = rope(F.linear(h, p["self_attn.q_proj"]).view(b, 1, NH, HS).transpose(1, 2), cos, sin)  # (B, NH, 1, HS)
        k = rope(F.linear(h, p["self_attn.k_proj"]).view(b, 1, NKV, HS).transpose(1, 2), cos, sin)
        v = F.linear(h, p["self_attn.v_proj"]).view(b, 1, NKV, HS).transpose(1, 2)
        kc[i][:, :, pos : pos + 1] = k
        vc[i][:, :, pos : pos + 1] = v
        kk, vv = kc[i][:, :, : pos + 1], vc[i][:, :, : pos + 1]  # (B, NKV, T, HS): views, no copy
        qg = q.reshape(b, NKV, G, HS)  # the G query heads of a KV head as its rows
        att = (qg @ kk.transpose(-2, -1)) * (1.0 / math.sqrt(HS))
        y = att.softmax(-1) @ vv  # (B, NKV, G, HS)
        x = x + F.linear(y.reshape(b, 1, NH * HS), p["self_attn.o_proj"])
        h = rms(x, p["post_attention_layernorm"])
        x = x + F.linear(F.silu(F.linear(h, p["mlp.gate_proj"])) * F.linear(h, p["mlp.up_proj"]), p["mlp.down_proj"])
    return F.linear(rms(x, NORM), EMB)[:, 0]


def sample(batch):
    def run(iters):
        t = 0.0
        for _ in range(iters):
            gen = torch.Generator().manual_seed(0)
            t0 = time.perf_counter()
            with torch.inference_mode():
                kc = [torch.zeros(batch, NKV, NEW_TOKENS + 1, HS) for _ in range(L)]
                vc = [torch.zeros(batch, NKV, NEW_TOKENS + 1, HS) for _ in range(L)]
                tok = torch.ones(batch, dtype=torch.long)  # BOS
                done = torch.zeros(batch, dtype=torch.bool)
                for pos in range(NEW_TOKENS):
                    logits = step(tok, pos, kc, vc)
                    tok = torch.multinomial(logits.softmax(-1), 1, generator=gen)[:, 0]
                    done |= torch.isin(tok, EOS)
                    if bool(done.all()):  # a real sampler's stop check: a sync per step
                        pass
            t += time.perf_counter() - t0
        return t

    return run


hello(torch)
serve({f"b{n}": sample(n) for n in (1, 16, 64, 256)})
