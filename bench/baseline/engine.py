"""The PyTorch side of `rlhf bench engine` (bench/engine.ts): the same cases, written the way a PyTorch
user would write them, answering timing commands over stdin/stdout (see common.py).

Run by hand: OPENBLAS_NUM_THREADS=1 /usr/bin/python3 bench/baseline/engine.py --threads 1
then type {"case": "matmul_256", "iters": 10}.
"""
import math
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import hello, serve, start  # noqa: E402

torch, threads = start()
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402

# ---- per-op overhead: tiny tensors, so the time is dispatch, not arithmetic -----------------------
a8 = torch.randn(8, 8)
b8 = torch.randn(8, 8)


# Each result is an unused expression, freed by its refcount before the next op starts, as ours is
# disposed before the next. (`c = a @ b` would keep the previous result alive while the next is
# allocated; for 1024² products glibc then hands memory back to the OS and re-faults ~760 pages every
# time, ~7% of the matmul: an artefact of the loop, not of PyTorch.)
def add_overhead(iters):
    a, b = a8, b8
    t0 = time.perf_counter()
    for _ in range(iters):
        a + b
    return time.perf_counter() - t0


def matmul_overhead(iters):
    a, b = a8, b8
    t0 = time.perf_counter()
    for _ in range(iters):
        a @ b
    return time.perf_counter() - t0


# ---- square matmuls: the BLAS kernel, warm ------------------------------------------------------------
_square = {}


def matmul(n):
    def run(iters):
        if n not in _square:
            _square[n] = (torch.randn(n, n), torch.randn(n, n))
        a, b = _square[n]
        t0 = time.perf_counter()
        for _ in range(iters):
            a @ b
        return time.perf_counter() - t0
    return run


# ---- one pre-norm transformer block, trained (nanoGPT's Block) -----------------------------------------
D, NH, T, B = 256, 4, 128, 8


class CausalSelfAttention(nn.Module):
    def __init__(self, d, nh):
        super().__init__()
        self.nh = nh
        self.c_attn = nn.Linear(d, 3 * d)
        self.c_proj = nn.Linear(d, d)

    def forward(self, x):
        b, t, c = x.shape
        q, k, v = self.c_attn(x).split(c, dim=2)
        q = q.view(b, t, self.nh, c // self.nh).transpose(1, 2)  # (B, nh, T, hs)
        k = k.view(b, t, self.nh, c // self.nh).transpose(1, 2)  # (B, nh, T, hs)
        v = v.view(b, t, self.nh, c // self.nh).transpose(1, 2)  # (B, nh, T, hs)
        # The attention op rlhf-ts's native/compat.h calls on this libtorch: the public one on 2.x; torch 1.13
        # has only the private (attn_mask, dropout_p, need_attn_weights, is_causal) form.
        if hasattr(F, "scaled_dot_product_attention"):
            y = F.scaled_dot_product_attention(q, k, v, None, 0.0, True)
        else:
            y = F._scaled_dot_product_attention(q, k, v, None, 0.0, False, True)[0]
        y = y.transpose(1, 2).contiguous().view(b, t, c)  # (B, T, C)
        return self.c_proj(y)


class MLP(nn.Module):
    def __init__(self, d):
        super().__init__()
        self.c_fc = nn.Linear(d, 4 * d)
        self.c_proj = nn.Linear(4 * d, d)

    def forward(self, x):
        return self.c_proj(F.gelu(self.c_fc(x)))


class Block(nn.Module):
    def __init__(self, d, nh):
        super().__init__()
        self.ln_1 = nn.LayerNorm(d)
        self.attn = CausalSelfAttention(d, nh)
        self.ln_2 = nn.LayerNorm(d)
        self.mlp = MLP(d)

    def forward(self, x):
        x = x + self.attn(self.ln_1(x))
        x = x + self.mlp(self.ln_2(x))
        return x


def make_block():
    """Weights drawn exactly as bench/engine.ts draws them (same libtorch generator, same order), so both
    sides train the same model on the same input: N(0, 0.02) linear weights, zero biases, unit LayerNorms."""
    model = Block(D, NH)
    torch.manual_seed(0)
    with torch.no_grad():
        for lin in (model.attn.c_attn, model.attn.c_proj, model.mlp.c_fc, model.mlp.c_proj):
            lin.weight.normal_(0.0, 0.02)
            lin.bias.zero_()
        for ln in (model.ln_1, model.ln_2):
            ln.weight.fill_(1.0)
            ln.bias.zero_()
    x = torch.randn(B, T, D)
    return model, x


def block_check(_iters):
    """The untrained model's loss: the same number on both sides shows they compute the same thing."""
    model, x = make_block()
    with torch.no_grad():
        return {"loss": model(x).square().mean().item()}


_train = {}


def block_train(iters):
    if not _train:
        model, x = make_block()
        _train.update(model=model, x=x, opt=torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.01))
    model, x, opt = _train["model"], _train["x"], _train["opt"]
    t0 = time.perf_counter()
    for _ in range(iters):
        loss = model(x).square().mean()
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
    t = time.perf_counter() - t0
    if not math.isfinite(loss.item()):
        raise RuntimeError("block_train loss is not finite")
    return t


hello(torch)
serve({
    "add_overhead": add_overhead,
    "matmul_overhead": matmul_overhead,
    "matmul_256": matmul(256),
    "matmul_512": matmul(512),
    "matmul_1024": matmul(1024),
    "block_train": block_train,
    "block_check": block_check,
})
