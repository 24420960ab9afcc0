// The fused decoder step: one decode position (T = 1) through every layer of a pre-norm decoder with
// rotary positions, grouped-query attention over a KV cache and a SwiGLU MLP (the Llama family:
// Llama 2/3, Qwen2, Mistral, SmolLM, stories260K) in one native call.
//
// Why: at decode time each layer is ~40 small libtorch ops on (B, C) activations, whose dispatch,
// allocation and memory passes cost more than their arithmetic (stories260K at batch 256: ~210 native
// calls and ~4 ms per step outside the GEMMs and the attention). Here the GEMMs write into buffers
// allocated once per call (gemm.cpp's small-matrix kernel at decode sizes, libtorch's BLAS beyond), the
// residual adds happen inside them, and everything between them is one loop per row: RMSNorm, rotary on q
// and k, the cache write, attention, SiLU·mul. With several threads the batch's rows split across them in
// one parallel region for the whole step. Inference only: float32 on the CPU with nothing needing a
// gradient; src/models/llama.ts runs its layer-by-layer path otherwise, and the tests compare the two.
#include <ATen/Parallel.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "common.h"
#include "kernels.h"

namespace rlhf {

// The per-layer weights in the order src/tensor/functional.ts (decoderStep) passes them; biases may be
// absent (handle −1).
enum Slot { kInNorm, kPostNorm, kQ, kK, kV, kO, kGate, kUp, kDown, kQb, kKb, kVb, kOb, kGateb, kUpb, kDownb, kSlots, kHeadNorm = kSlots };
static const char* const kSlotNames[kSlots + 1] = {"input_layernorm", "post_attention_layernorm", "q_proj", "k_proj", "v_proj",
                                                   "o_proj", "gate_proj", "up_proj", "down_proj", "q_proj.bias", "k_proj.bias",
                                                   "v_proj.bias", "o_proj.bias", "gate_proj.bias", "up_proj.bias", "down_proj.bias",
                                                   "norm"};

static std::vector<at::Tensor> argTsOpt(const Napi::CallbackInfo& info, size_t i) {
  Napi::Array a = info[i].As<Napi::Array>();
  std::vector<at::Tensor> out(a.Length());
  for (uint32_t k = 0; k < a.Length(); ++k) {
    int32_t id = a.Get(k).As<Napi::Number>().Int32Value();
    if (id >= 0) out[k] = get(id);
  }
  return out;
}

[[noreturn]] static void fail(const std::string& what) { throw std::invalid_argument("decoderStep: " + what); }

static void expectShape(const at::Tensor& t, std::initializer_list<int64_t> shape, int64_t layer, int slot) {
  if (!t.defined() || !t.sizes().equals(shape) || !fastPath({&t}) || !t.is_contiguous()) {
    std::string want;
    for (int64_t s : shape) want += (want.empty() ? "" : ", ") + std::to_string(s);
    std::string what = slot == kHeadNorm ? std::string("the final norm") : "layer " + std::to_string(layer) + " " + kSlotNames[slot];
    fail(what + " is " + (t.defined() ? describe(t) : "missing") + ", expected contiguous float32[" + want + "] on the CPU without a gradient");
  }
}

// Rows per thread below which splitting the batch costs more (a thread wake-up, smaller GEMMs) than it saves.
static constexpr int64_t kMinRowsPerThread = 16;

// Sets OpenBLAS's thread count for a scope (other BLAS libraries run single-threaded inside an OpenMP
// parallel region by themselves).
class BlasThreads {
  int saved_ = blasThreads();

 public:
  explicit BlasThreads(int n) {
    if (saved_ >= 0 && saved_ != n) setBlasThreads(n);
  }
  ~BlasThreads() {
    if (saved_ >= 0 && blasThreads() != saved_) setBlasThreads(saved_);
  }
};

// out = [out +] x · Wᵀ [+ b]: a Linear layer's GEMM into a preallocated row block (the small-matrix kernel
// where it applies, libtorch's BLAS otherwise).
static void linearInto(at::Tensor& out, const at::Tensor& x, const at::Tensor& w, const at::Tensor& b, bool accumulate = false) {
  if (smallGemm(x.data_ptr<float>(), x.stride(0), x.size(0), x.size(1), w.data_ptr<float>(), w.size(0), b.defined() ? b.data_ptr<float>() : nullptr,
                out.data_ptr<float>(), out.stride(0), accumulate))
    return;
  if (accumulate) {
    out.addmm_(x, w.t());
    if (b.defined()) out.add_(b);
  } else if (b.defined()) {
    at::addmm_out(out, b, x, w.t());
  } else {
    at::mm_out(out, x, w.t());
  }
}

// decoderStep(x (B, C), weights H[16·layers], kCache H[layers], vCache H[layers], past, cos (B, hs),
// sinSigned (B, hs), bias (B, ≥ past + 1) | −1, numHeads, eps, headNorm (C) | −1, head (V, C) | −1) →
// the hidden state after the last layer (B, C), before the final norm; with a head, the logits
// rmsNorm(x, headNorm) · headᵀ (B, V) instead. Each layer's new key and value (rotated key) are written at position
// `past` of its cache (B, nkv, capacity ≥ past + 1, hs), and the query attends over positions [0, past].
// cos/sinSigned are the rotary tables at each row's position (src/nn/rotary.ts: rotate_half's sign folded
// into sinSigned); bias row b is added to the scores of keys [0, past] (−∞ on padding).
static Napi::Value decoderStep(const Napi::CallbackInfo& info) {
  return guard(info, "decoderStep", [&] {
    const at::Tensor& x0 = argT(info, 0);
    std::vector<at::Tensor> w = argTsOpt(info, 1);
    std::vector<at::Tensor> kc = argTs(info, 2);
    std::vector<at::Tensor> vc = argTs(info, 3);
    int64_t past = argI64(info, 4);
    const at::Tensor& cosT = argT(info, 5);
    const at::Tensor& sinT = argT(info, 6);
    auto bias = argOptT(info, 7);
    int64_t nh = argI64(info, 8);
    float eps = static_cast<float>(argF64(info, 9));
    auto headNorm = argOptT(info, 10);
    auto head = argOptT(info, 11);

    int64_t layers = static_cast<int64_t>(kc.size());
    if (x0.dim() != 2 || !fastPath({&x0})) fail("x must be float32 (B, C) on the CPU without a gradient, got " + describe(x0));
    if (layers == 0 || static_cast<int64_t>(vc.size()) != layers || static_cast<int64_t>(w.size()) != layers * kSlots)
      fail(std::to_string(w.size()) + " weights and " + std::to_string(kc.size()) + "/" + std::to_string(vc.size()) +
           " k/v caches: expected " + std::to_string(kSlots) + " weights per layer and one cache of each per layer");
    int64_t B = x0.size(0), C = x0.size(1);
    const at::Tensor& c0 = kc[0];
    if (c0.dim() != 4 || c0.size(0) != B) fail("k cache must be (B " + std::to_string(B) + ", nkv, capacity, hs), got " + describe(c0));
    int64_t nkv = c0.size(1), cap = c0.size(2), hs = c0.size(3);
    if (nh <= 0 || nh % nkv) fail(std::to_string(nh) + " query heads do not group over " + std::to_string(nkv) + " kv heads");
    if (past < 0 || past + 1 > cap) fail("position " + std::to_string(past) + " is outside the cache's capacity " + std::to_string(cap));
    int64_t G = nh / nkv, I = w[kGate].defined() ? w[kGate].size(0) : 0, L = past + 1;
    for (int64_t l = 0; l < layers; ++l) {
      const at::Tensor* p = w.data() + l * kSlots;
      expectShape(p[kInNorm], {C}, l, kInNorm);
      expectShape(p[kPostNorm], {C}, l, kPostNorm);
      expectShape(p[kQ], {nh * hs, C}, l, kQ);
      expectShape(p[kK], {nkv * hs, C}, l, kK);
      expectShape(p[kV], {nkv * hs, C}, l, kV);
      expectShape(p[kO], {C, nh * hs}, l, kO);
      expectShape(p[kGate], {I, C}, l, kGate);
      expectShape(p[kUp], {I, C}, l, kUp);
      expectShape(p[kDown], {C, I}, l, kDown);
      int64_t biasLen[] = {nh * hs, nkv * hs, nkv * hs, C, I, I, C};
      for (int s = kQb; s < kSlots; ++s)
        if (p[s].defined()) expectShape(p[s], {biasLen[s - kQb]}, l, s);
      for (const at::Tensor* c : {&kc[l], &vc[l]})
        if (!c->sizes().equals({B, nkv, cap, hs}) || !fastPath({c}) || !c->is_contiguous())
          fail("layer " + std::to_string(l) + " cache is " + describe(*c) + ", expected contiguous float32[" + std::to_string(B) +
               ", " + std::to_string(nkv) + ", " + std::to_string(cap) + ", " + std::to_string(hs) + "]");
    }
    if (head && (!headNorm || head->dim() != 2 || head->size(1) != C || !fastPath({&*head}) || !head->is_contiguous()))
      fail("head must be a contiguous float32 (V, " + std::to_string(C) + ") with its norm weight, got " + describe(*head));
    if (headNorm) expectShape(*headNorm, {C}, layers, kHeadNorm);
    at::Tensor cs = cosT.reshape({B, hs}).contiguous(), sn = sinT.reshape({B, hs}).contiguous();
    if (!fastPath({&cs, &sn})) fail("rotary tables must be float32 on the CPU");
    if (bias && (bias->dim() != 2 || bias->size(0) != B || bias->size(1) < L || bias->stride(1) != 1 || !fastPath({&*bias})))
      fail("bias must be float32 (B " + std::to_string(B) + ", ≥ " + std::to_string(L) + ") with unit column stride, got " + describe(*bias));

    at::Tensor x = x0.clone(at::MemoryFormat::Contiguous);
    auto opts = x.options();
    at::Tensor h = at::empty({B, C}, opts), q = at::empty({B, nh * hs}, opts), k = at::empty({B, nkv * hs}, opts),
               v = at::empty({B, nkv * hs}, opts), y = at::empty({B, nh * hs}, opts), g = at::empty({B, I}, opts),
               u = at::empty({B, I}, opts);
    at::Tensor logits = head ? at::empty({B, head->size(0)}, opts) : at::Tensor();
    const float* pc = cs.data_ptr<float>();
    const float* ps = sn.data_ptr<float>();
    const float* pb = bias ? bias->data_ptr<float>() : nullptr;
    int64_t bStride = bias ? bias->stride(0) : 0, half = hs / 2;
    float scale = 1.0f / std::sqrt(static_cast<float>(hs));
    // x·cos + swapHalves(x)·sinSigned for one head row, as two loops over the halves (which vectorise).
    auto rotate = [&](const float* in, const float* c, const float* s, float* out) {
      for (int64_t d = 0; d < half; ++d) out[d] = in[d] * c[d] + in[d + half] * s[d];
      for (int64_t d = half; d < hs; ++d) out[d] = in[d] * c[d] + in[d - half] * s[d];
    };
    // Rows [b0, b1) through every layer: rows never mix, so the batch splits across threads here.
    auto rows = [&](int64_t b0, int64_t b1) {
      int64_t nb = b1 - b0;
      at::Tensor xr = x.narrow(0, b0, nb), hr = h.narrow(0, b0, nb), qr = q.narrow(0, b0, nb), kr = k.narrow(0, b0, nb),
                 vr = v.narrow(0, b0, nb), yr = y.narrow(0, b0, nb), gr = g.narrow(0, b0, nb), ur = u.narrow(0, b0, nb);
      float* px = x.data_ptr<float>();
      float* ph = h.data_ptr<float>();
      const float* pq = q.data_ptr<float>();
      const float* pkn = k.data_ptr<float>();
      const float* pvn = v.data_ptr<float>();
      float* py = y.data_ptr<float>();
      float* pg = g.data_ptr<float>();
      const float* pu = u.data_ptr<float>();
      std::vector<float> scores(static_cast<size_t>(attendScratch(G, L))), qrot(static_cast<size_t>(nh * hs));
      for (int64_t l = 0; l < layers; ++l) {
        const at::Tensor* p = w.data() + l * kSlots;
        float* pk = kc[l].data_ptr<float>();
        float* pv = vc[l].data_ptr<float>();
        const float* wIn = p[kInNorm].data_ptr<float>();
        for (int64_t b = b0; b < b1; ++b) rmsNormRowFast(px + b * C, wIn, C, eps, ph + b * C);
        linearInto(qr, hr, p[kQ], p[kQb]);
        linearInto(kr, hr, p[kK], p[kKb]);
        linearInto(vr, hr, p[kV], p[kVb]);
        // Per row: rotate and cache its new keys and values, then its heads attend over positions [0, past].
        for (int64_t b = b0; b < b1; ++b) {
          const float* c = pc + b * hs;
          const float* s = ps + b * hs;
          for (int64_t j = 0; j < nkv; ++j) {
            int64_t slot = ((b * nkv + j) * cap + past) * hs;  // (b, kv head j, position past)
            rotate(pkn + (b * nkv + j) * hs, c, s, pk + slot);
            std::copy(pvn + (b * nkv + j) * hs, pvn + (b * nkv + j + 1) * hs, pv + slot);
          }
          for (int64_t hd = 0; hd < nh; ++hd) {
            float* r = qrot.data() + hd * hs;
            rotate(pq + (b * nh + hd) * hs, c, s, r);
            for (int64_t d = 0; d < hs; ++d) r[d] *= scale;
          }
          const float* brow = pb ? pb + b * bStride : nullptr;
          for (int64_t j = 0; j < nkv; ++j) {  // the G query heads of kv head j together
            int64_t base = (b * nkv + j) * cap * hs;
            attendGroup(qrot.data() + j * G * hs, G, pk + base, hs, pv + base, hs, brow, L, hs, scores.data(), py + (b * nh + j * G) * hs, hs);
          }
        }
        linearInto(xr, yr, p[kO], p[kOb], true);  // the residual add inside the GEMM
        const float* wPost = p[kPostNorm].data_ptr<float>();
        for (int64_t b = b0; b < b1; ++b) rmsNormRowFast(px + b * C, wPost, C, eps, ph + b * C);
        linearInto(gr, hr, p[kGate], p[kGateb]);
        linearInto(ur, hr, p[kUp], p[kUpb]);
        for (int64_t b = b0; b < b1; ++b) siluMulRow(pg + b * I, pu + b * I, I, pg + b * I);
        linearInto(xr, gr, p[kDown], p[kDownb], true);
      }
      if (head) {  // the final norm and the LM head on the same rows
        const float* wn = headNorm->data_ptr<float>();
        for (int64_t b = b0; b < b1; ++b) rmsNormRowFast(px + b * C, wn, C, eps, ph + b * C);
        at::Tensor lr = logits.narrow(0, b0, nb);
        linearInto(lr, hr, *head, at::Tensor());
      }
    };
    int64_t threads = at::get_num_threads();
    if (threads > 1 && B >= 2 * kMinRowsPerThread) {
      // One parallel region for the whole step (a region per op costs a wake-up each with passive OpenMP
      // waiting); each thread's GEMMs run single-threaded on its rows, so the BLAS pool is set to 1 and
      // restored after.
      BlasThreads one(1);
      at::parallel_for(0, B, (B + threads - 1) / threads, [&](int64_t b0, int64_t b1) {
        at::NoGradGuard noGrad;  // grad mode is per thread: a worker starts with it on
        rows(b0, b1);
      });
    } else {
      rows(0, B);
    }
    return ret(info, head ? logits : x);
  });
}

void registerDecode(Napi::Env env, Exports exports) { RLHF_EXPORT("decoderStep", decoderStep); }

}  // namespace rlhf
