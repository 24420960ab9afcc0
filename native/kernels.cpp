// Fused inference kernels: hand-written loops for the small, op-dense pieces of a decoder step
// (RMSNorm, rotary embedding, attention over a KV cache with grouped-query heads). At decode time
// these are dozens of tiny libtorch ops per layer whose dispatch dominates; one loop each is faster.
//
// Each entry point takes the fast path only when nothing needs a gradient and the tensors are float32
// on the CPU; otherwise it composes libtorch ops (which autograd differentiates), so results are the
// same either way (tests compare the two paths).
#include <ATen/Parallel.h>

#include <cmath>
#include <cstring>
#include <limits>

#include "common.h"
#include "compat.h"

namespace rlhf {

static bool fastPath(std::initializer_list<const at::Tensor*> ts) {
  if (at::GradMode::is_enabled()) {
    for (auto* t : ts)
      if (t->requires_grad()) return false;
  }
  for (auto* t : ts)
    if (!t->device().is_cpu() || t->scalar_type() != at::kFloat) return false;
  return true;
}

// ---- RMSNorm -------------------------------------------------------------------------------------------
at::Tensor rmsNormComposite(const at::Tensor& x, const c10::optional<at::Tensor>& w, double eps) {
  bool reduced = x.scalar_type() == at::kHalf || x.scalar_type() == at::kBFloat16;
  at::Tensor xf = reduced ? x.to(at::kFloat) : x;
  at::Tensor y = (xf * at::rsqrt(xf.pow(2).mean(-1, true) + eps)).to(x.scalar_type());
  return w ? y * *w : y;
}

// rmsNorm(x, weight|-1, eps) = x / sqrt(mean(x², -1) + eps) · weight (HF's LlamaRMSNorm: computed in
// float32 for 16-bit inputs, cast back, then scaled).
static Napi::Value rmsNorm(const Napi::CallbackInfo& info) {
  return guard(info, "rmsNorm", [&] {
    const at::Tensor& x = argT(info, 0);
    auto w = argOptT(info, 1);
    double eps = argF64(info, 2);
    int64_t d = x.dim() ? x.size(-1) : 0;
    if (!fastPath({&x}) || (w && !fastPath({&*w})) || d == 0 || (w && (w->dim() != 1 || w->size(0) != d)))
      return ret(info, rmsNormComposite(x, w, eps));
    at::Tensor xc = x.contiguous();
    at::Tensor out = at::empty_like(xc);
    at::Tensor wc = w ? w->contiguous() : at::Tensor();
    const float* px = xc.data_ptr<float>();
    const float* pw = w ? wc.data_ptr<float>() : nullptr;
    float* po = out.data_ptr<float>();
    int64_t rows = xc.numel() / d;
    at::parallel_for(0, rows, 64, [&](int64_t r0, int64_t r1) {
      for (int64_t r = r0; r < r1; ++r) {
        const float* a = px + r * d;
        float* o = po + r * d;
        float ss = 0;
        for (int64_t i = 0; i < d; ++i) ss += a[i] * a[i];
        float inv = 1.0f / std::sqrt(ss / static_cast<float>(d) + static_cast<float>(eps));
        for (int64_t i = 0; i < d; ++i) o[i] = a[i] * inv * (pw ? pw[i] : 1.0f);
      }
    });
    return ret(info, out);
  });
}

// ---- rotary embedding ------------------------------------------------------------------------------
// rotary(x (B, nh, T, hs), cos (B, 1, T, hs), sinSigned (B, 1, T, hs)) = x·cos + swapHalves(x)·sinSigned,
// the "rotate half" layout with rotate_half's sign folded into the sin table (src/nn/rotary.ts).
static Napi::Value rotary(const Napi::CallbackInfo& info) {
  return guard(info, "rotary", [&] {
    const at::Tensor& x = argT(info, 0);
    const at::Tensor& cos = argT(info, 1);
    const at::Tensor& sin = argT(info, 2);
    if (x.dim() != 4 || cos.dim() != 4 || sin.dim() != 4 || x.size(-1) % 2)
      throw std::invalid_argument("rotary expects x (B, nh, T, hs) with even hs and cos/sin (B, 1, T, hs)");
    int64_t hs = x.size(3), half = hs / 2;
    if (!fastPath({&x, &cos, &sin}) || cos.size(0) != x.size(0) || cos.size(2) != x.size(2) || cos.size(3) != hs ||
        !sin.sizes().equals(cos.sizes())) {
      at::Tensor swapped = at::cat({x.narrow(-1, half, half), x.narrow(-1, 0, half)}, -1);
      return ret(info, x * cos + swapped * sin);
    }
    int64_t B = x.size(0), H = x.size(1), T = x.size(2);
    at::Tensor out = at::empty({B, H, T, hs}, x.options());
    at::Tensor c = cos.contiguous(), s = sin.contiguous();
    auto xa = x.accessor<float, 4>();
    const float* pc = c.data_ptr<float>();
    const float* ps = s.data_ptr<float>();
    float* po = out.data_ptr<float>();
    at::parallel_for(0, B * H, 16, [&](int64_t i0, int64_t i1) {
      for (int64_t i = i0; i < i1; ++i) {
        int64_t b = i / H, h = i % H;
        for (int64_t t = 0; t < T; ++t) {
          const float* cr = pc + (b * T + t) * hs;
          const float* sr = ps + (b * T + t) * hs;
          auto xr = xa[b][h][t];
          float* o = po + ((b * H + h) * T + t) * hs;
          for (int64_t k = 0; k < hs; ++k) o[k] = xr[k] * cr[k] + xr[k < half ? k + half : k - half] * sr[k];
        }
      }
    });
    return ret(info, out);
  });
}

// exp(x) for x <= 0 (softmax's shifted scores), vectorisable: Cody–Waite range reduction x = n·ln2 + r
// and Cephes' degree-6 polynomial for e^r (relative error ~1e-7, like expf), with 2^n built in the
// exponent bits. Below −87 the result is clamped to e^−87 ≈ 1.6e−38 (it is a weight that rounds away).
static inline float expNonPositive(float x) {
  x = x < -87.0f ? -87.0f : x;
  float t = x * 1.44269504088896341f;
  float n = (t + 12582912.0f) - 12582912.0f;  // round to nearest without a libm call
  float r = x - n * 0.693359375f + n * 2.12194440e-4f;
  float z = r * r;
  float y = (((((1.9875691500e-4f * r + 1.3981999507e-3f) * r + 8.3334519073e-3f) * r + 4.1665795894e-2f) * r +
              1.6666665459e-1f) * r + 5.0000001201e-1f) * z + r + 1.0f;
  int32_t bits = (static_cast<int32_t>(n) + 127) << 23;
  float scale;
  std::memcpy(&scale, &bits, sizeof scale);
  return y * scale;
}

// ---- attention with grouped-query heads ----------------------------------------------------------------
// groupedAttention(q (B, nh, T, hs), k (B, nkv, L, hs), v (B, nkv, L, hs), bias (B|1, 1, T, L) | -1,
// causal): softmax(q kᵀ/√hs + bias [+ causal mask]) v, query head h reading kv head ⌊h / (nh/nkv)⌋ (HF's
// repeat_kv), returned as (B, nh, T, hs). The causal mask is bottom-right aligned: query t sits at
// position L − T + t. k and v may be strided views of a cache.
static at::Tensor attentionComposite(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                                     c10::optional<at::Tensor> bias, bool causal) {
  int64_t B = q.size(0), H = q.size(1), T = q.size(2), hs = q.size(3), G = H / k.size(1), L = k.size(2);
  if (causal && (T > 1 || bias)) {
    // An explicit bottom-right causal bias (libtorch's is_causal is top-left aligned).
    at::Tensor qi = at::arange(L - T, L, q.options().dtype(at::kLong)).unsqueeze(1);
    at::Tensor ki = at::arange(0, L, q.options().dtype(at::kLong)).unsqueeze(0);
    at::Tensor c = at::zeros({T, L}, q.options()).masked_fill(ki > qi, -std::numeric_limits<double>::infinity());
    bias = bias ? *bias + c : c.view({1, 1, T, L});
  }
  if (G == 1) return compat::scaledDotProductAttention(q, k, v, bias, 0.0, false, c10::nullopt);
  at::Tensor qg = q.reshape({B, k.size(1), G * T, hs});  // row gi·T + t
  if (bias && T > 1) bias = bias->repeat({1, 1, G, 1});
  return compat::scaledDotProductAttention(qg, k, v, bias, 0.0, false, c10::nullopt).reshape({B, H, T, hs});
}

static Napi::Value groupedAttention(const Napi::CallbackInfo& info) {
  return guard(info, "groupedAttention", [&] {
    const at::Tensor& q = argT(info, 0);
    const at::Tensor& k = argT(info, 1);
    const at::Tensor& v = argT(info, 2);
    auto bias = argOptT(info, 3);
    bool causal = argBool(info, 4);
    if (q.dim() != 4 || k.dim() != 4 || v.dim() != 4 || !k.sizes().equals(v.sizes()) || q.size(0) != k.size(0) ||
        q.size(3) != k.size(3) || k.size(1) == 0 || q.size(1) % k.size(1))
      throw std::invalid_argument("groupedAttention expects q (B, nh, T, hs), k and v (B, nkv, L, hs) with nkv dividing nh");
    int64_t B = q.size(0), H = q.size(1), T = q.size(2), hs = q.size(3), KV = k.size(1), L = k.size(2), G = H / KV;
    if (bias && (bias->dim() != 4 || (bias->size(0) != B && bias->size(0) != 1) || bias->size(1) != 1 ||
                 bias->size(2) != T || bias->size(3) != L))
      throw std::invalid_argument("groupedAttention: bias must be (B or 1, 1, T, L)");
    // Loops win where dispatch dominates (decoding: a few queries per head); prefill goes to BLAS.
    bool fast = T <= 4 && L > 0 && fastPath({&q, &k, &v}) && (!bias || fastPath({&*bias})) && k.stride(3) == 1 && v.stride(3) == 1;
    if (!fast) return ret(info, attentionComposite(q, k, v, bias, causal));
    at::Tensor out = at::empty({B, H, T, hs}, q.options());
    at::Tensor bc = bias ? bias->contiguous() : at::Tensor();
    auto qa = q.accessor<float, 4>();
    const float* pk = k.data_ptr<float>();
    const float* pv = v.data_ptr<float>();
    const float* pb = bias ? bc.data_ptr<float>() : nullptr;
    int64_t bB = bias && bias->size(0) == B ? T * L : 0;
    auto ks = k.strides(), vs = v.strides();
    float scale = 1.0f / std::sqrt(static_cast<float>(hs));
    float* po = out.data_ptr<float>();
    // One pass per (b, kv head, t) serves its G query heads together, so each cached key and value row
    // is read once, not G times.
    at::parallel_for(0, B * KV, 4, [&](int64_t i0, int64_t i1) {
      std::vector<float> w(static_cast<size_t>(G * L));
      std::vector<float> qv(static_cast<size_t>(hs));
      for (int64_t i = i0; i < i1; ++i) {
        int64_t b = i / KV, kv = i % KV;
        const float* kb = pk + b * ks[0] + kv * ks[1];
        const float* vb = pv + b * vs[0] + kv * vs[1];
        for (int64_t t = 0; t < T; ++t) {
          int64_t n = causal ? L - T + t + 1 : L;  // keys [0, n) are visible
          const float* brow = pb ? pb + b * bB + t * L : nullptr;
          for (int64_t g = 0; g < G; ++g) {
            auto qa1 = qa[b][kv * G + g][t];
            for (int64_t d = 0; d < hs; ++d) qv[d] = qa1[d] * scale;
            float* s = w.data() + g * L;
            // Four keys at a time: four independent accumulation chains instead of one long one.
            int64_t j = 0;
            for (; j + 4 <= n; j += 4) {
              const float* k0 = kb + j * ks[2];
              const float* k1 = k0 + ks[2];
              const float* k2 = k1 + ks[2];
              const float* k3 = k2 + ks[2];
              float a0 = 0, a1 = 0, a2 = 0, a3 = 0;
              for (int64_t d = 0; d < hs; ++d) {
                float q = qv[d];
                a0 += q * k0[d];
                a1 += q * k1[d];
                a2 += q * k2[d];
                a3 += q * k3[d];
              }
              s[j] = a0;
              s[j + 1] = a1;
              s[j + 2] = a2;
              s[j + 3] = a3;
            }
            for (; j < n; ++j) {
              const float* kr = kb + j * ks[2];
              float acc = 0;
              for (int64_t d = 0; d < hs; ++d) acc += qv[d] * kr[d];
              s[j] = acc;
            }
            if (brow)
              for (int64_t k = 0; k < n; ++k) s[k] += brow[k];
            float mx = -std::numeric_limits<float>::infinity();
            for (int64_t j = 0; j < n; ++j) mx = std::max(mx, s[j]);
            // A row with every key masked gives NaN, as softmax does.
            float sum = 0;
            for (int64_t j = 0; j < n; ++j) {
              float e = s[j] > -std::numeric_limits<float>::infinity() ? expNonPositive(s[j] - mx) : 0.0f;
              s[j] = e;
              sum += e;
            }
            float inv = 1.0f / sum;
            float* o = po + ((b * H + kv * G + g) * T + t) * hs;
            for (int64_t d = 0; d < hs; ++d) o[d] = 0;
            for (int64_t j = 0; j < n; ++j) {
              const float* vr = vb + j * vs[2];
              float p = s[j] * inv;
              for (int64_t d = 0; d < hs; ++d) o[d] += p * vr[d];
            }
          }
        }
      }
    });
    return ret(info, out);
  });
}

void registerKernels(Napi::Env env, Exports exports) {
  RLHF_EXPORT("rmsNorm", rmsNorm);
  RLHF_EXPORT("rotary", rotary);
  RLHF_EXPORT("groupedAttention", groupedAttention);
}

}  // namespace rlhf
