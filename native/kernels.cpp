// Fused inference kernels: hand-written loops for the small, op-dense pieces of a decoder step
// (RMSNorm, rotary embedding, attention over a KV cache with grouped-query heads). At decode time
// these are dozens of tiny libtorch ops per layer whose dispatch dominates; one loop each is faster.
//
// Each entry point takes the fast path only when nothing needs a gradient and the tensors are float32
// on the CPU; otherwise it composes libtorch ops (which autograd differentiates), so results are the
// same either way (tests compare the two paths).
#include <ATen/Parallel.h>

#include <atomic>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>

#include "common.h"
#include "compat.h"
#include "kernels.h"

namespace rlhf {

bool fastPath(std::initializer_list<const at::Tensor*> ts) {
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
      for (int64_t r = r0; r < r1; ++r) rmsNormRow(px + r * d, pw, d, static_cast<float>(eps), po + r * d);
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

#ifdef RLHF_AVX2
// Eight lanes of expNonPositive (same Cody–Waite reduction and polynomial). Inputs below −87 are clamped.
RLHF_AVX2_FN static inline __m256 expNonPositive8(__m256 x) {
  x = _mm256_max_ps(x, _mm256_set1_ps(-87.0f));
  __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), x);
  r = _mm256_fmadd_ps(n, _mm256_set1_ps(2.12194440e-4f), r);
  __m256 z = _mm256_mul_ps(r, r);
  __m256 y = _mm256_set1_ps(1.9875691500e-4f);
  y = _mm256_fmadd_ps(y, r, _mm256_set1_ps(1.3981999507e-3f));
  y = _mm256_fmadd_ps(y, r, _mm256_set1_ps(8.3334519073e-3f));
  y = _mm256_fmadd_ps(y, r, _mm256_set1_ps(4.1665795894e-2f));
  y = _mm256_fmadd_ps(y, r, _mm256_set1_ps(1.6666665459e-1f));
  y = _mm256_fmadd_ps(y, r, _mm256_set1_ps(5.0000001201e-1f));
  y = _mm256_fmadd_ps(y, z, _mm256_add_ps(r, _mm256_set1_ps(1.0f)));
  __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
  return _mm256_mul_ps(y, _mm256_castsi256_ps(e));
}

// Dot products of q with eight key rows at once: the eight products reduced by a horizontal-add tree.
RLHF_AVX2_FN static inline __m256 dot8x8(__m256 q, const float* k, int64_t stride) {
  __m256 p0 = _mm256_mul_ps(q, _mm256_loadu_ps(k)), p1 = _mm256_mul_ps(q, _mm256_loadu_ps(k + stride));
  __m256 p2 = _mm256_mul_ps(q, _mm256_loadu_ps(k + 2 * stride)), p3 = _mm256_mul_ps(q, _mm256_loadu_ps(k + 3 * stride));
  __m256 p4 = _mm256_mul_ps(q, _mm256_loadu_ps(k + 4 * stride)), p5 = _mm256_mul_ps(q, _mm256_loadu_ps(k + 5 * stride));
  __m256 p6 = _mm256_mul_ps(q, _mm256_loadu_ps(k + 6 * stride)), p7 = _mm256_mul_ps(q, _mm256_loadu_ps(k + 7 * stride));
  __m256 t0 = _mm256_hadd_ps(p0, p1), t1 = _mm256_hadd_ps(p2, p3), t2 = _mm256_hadd_ps(p4, p5), t3 = _mm256_hadd_ps(p6, p7);
  __m256 u0 = _mm256_hadd_ps(t0, t1), u1 = _mm256_hadd_ps(t2, t3);  // per 128-bit half: keys 0–3 | 4–7
  return _mm256_add_ps(_mm256_permute2f128_ps(u0, u1, 0x20), _mm256_permute2f128_ps(u0, u1, 0x31));
}

// One query row (head size 8, already scaled) over keys [0, n): scores → softmax → weighted values.
RLHF_AVX2_FN static void attendRow8(const float* q, const float* kb, int64_t kL, const float* vb, int64_t vL, const float* brow, int64_t n, float* s, float* out) {
  __m256 qv = _mm256_loadu_ps(q);
  const __m256 ninf = _mm256_set1_ps(-std::numeric_limits<float>::infinity());
  __m256 mx8 = ninf;
  int64_t j = 0;
  for (; j + 8 <= n; j += 8) {
    __m256 d = dot8x8(qv, kb + j * kL, kL);
    if (brow) d = _mm256_add_ps(d, _mm256_loadu_ps(brow + j));
    // A NaN score (an infinite key under a −∞ bias) counts as masked, as in the scalar loop, so the
    // maximum does not depend on max_ps's operand order.
    d = _mm256_blendv_ps(d, ninf, _mm256_cmp_ps(d, d, _CMP_UNORD_Q));
    _mm256_storeu_ps(s + j, d);
    mx8 = _mm256_max_ps(mx8, d);
  }
  float mx = hmax8(mx8);
  for (; j < n; ++j) {
    const float* kr = kb + j * kL;
    float d = 0;
    for (int c = 0; c < 8; ++c) d += q[c] * kr[c];
    if (brow) d += brow[j];
    s[j] = d;
    mx = std::max(mx, d);
  }
  if (!(mx > -std::numeric_limits<float>::infinity())) {  // every key masked: NaN, as softmax gives
    for (int c = 0; c < 8; ++c) out[c] = std::numeric_limits<float>::quiet_NaN();
    return;
  }
  __m256 m8 = _mm256_set1_ps(mx), sum8 = _mm256_setzero_ps();
  j = 0;
  for (; j + 8 <= n; j += 8) {
    // A masked key (score −∞) weighs exactly 0, as in the scalar loop, not the clamped e^−87.
    __m256 sc = _mm256_loadu_ps(s + j);
    __m256 e = _mm256_and_ps(expNonPositive8(_mm256_sub_ps(sc, m8)), _mm256_cmp_ps(sc, ninf, _CMP_NEQ_OQ));
    _mm256_storeu_ps(s + j, e);
    sum8 = _mm256_add_ps(sum8, e);
  }
  float sum = hsum8(sum8);
  for (; j < n; ++j) {
    float e = s[j] > -std::numeric_limits<float>::infinity() ? expNonPositive(s[j] - mx) : 0.0f;
    s[j] = e;
    sum += e;
  }
  // Four accumulators: independent FMA chains (an FMA's latency is four or five cycles).
  __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps(), acc2 = _mm256_setzero_ps(), acc3 = _mm256_setzero_ps();
  j = 0;
  for (; j + 4 <= n; j += 4) {
    const float* v0 = vb + j * vL;
    acc0 = _mm256_fmadd_ps(_mm256_broadcast_ss(s + j), _mm256_loadu_ps(v0), acc0);
    acc1 = _mm256_fmadd_ps(_mm256_broadcast_ss(s + j + 1), _mm256_loadu_ps(v0 + vL), acc1);
    acc2 = _mm256_fmadd_ps(_mm256_broadcast_ss(s + j + 2), _mm256_loadu_ps(v0 + 2 * vL), acc2);
    acc3 = _mm256_fmadd_ps(_mm256_broadcast_ss(s + j + 3), _mm256_loadu_ps(v0 + 3 * vL), acc3);
  }
  for (; j < n; ++j) acc0 = _mm256_fmadd_ps(_mm256_broadcast_ss(s + j), _mm256_loadu_ps(vb + j * vL), acc0);
  __m256 acc = _mm256_add_ps(_mm256_add_ps(acc0, acc1), _mm256_add_ps(acc2, acc3));
  _mm256_storeu_ps(out, _mm256_mul_ps(acc, _mm256_set1_ps(1.0f / sum)));
}

// Scores of the Gq heads against 8 keys (rows kp .. kp + 56), plus the bias; keys outside `valid` and NaN
// scores (an infinite key under a −∞ bias) become −∞. Stored at s + g·n8, folded into each head's max.
template <int Gq>
RLHF_AVX2_FN static inline void scoreBlock8(const __m256* qv, const float* kp, __m256 bias, __m256 valid, float* s, int64_t n8, __m256* mx) {
  const __m256 ninf = _mm256_set1_ps(-std::numeric_limits<float>::infinity());
  __m256 k0 = _mm256_loadu_ps(kp), k1 = _mm256_loadu_ps(kp + 8), k2 = _mm256_loadu_ps(kp + 16), k3 = _mm256_loadu_ps(kp + 24);
  __m256 k4 = _mm256_loadu_ps(kp + 32), k5 = _mm256_loadu_ps(kp + 40), k6 = _mm256_loadu_ps(kp + 48), k7 = _mm256_loadu_ps(kp + 56);
  _Pragma("GCC unroll 8") for (int g = 0; g < Gq; ++g) {
    __m256 t0 = _mm256_hadd_ps(_mm256_mul_ps(qv[g], k0), _mm256_mul_ps(qv[g], k1));
    __m256 t1 = _mm256_hadd_ps(_mm256_mul_ps(qv[g], k2), _mm256_mul_ps(qv[g], k3));
    __m256 t2 = _mm256_hadd_ps(_mm256_mul_ps(qv[g], k4), _mm256_mul_ps(qv[g], k5));
    __m256 t3 = _mm256_hadd_ps(_mm256_mul_ps(qv[g], k6), _mm256_mul_ps(qv[g], k7));
    __m256 u0 = _mm256_hadd_ps(t0, t1), u1 = _mm256_hadd_ps(t2, t3);
    __m256 d = _mm256_add_ps(_mm256_add_ps(_mm256_permute2f128_ps(u0, u1, 0x20), _mm256_permute2f128_ps(u0, u1, 0x31)), bias);
    d = _mm256_blendv_ps(ninf, d, _mm256_and_ps(valid, _mm256_cmp_ps(d, d, _CMP_ORD_Q)));
    _mm256_storeu_ps(s + g * n8, d);
    mx[g] = _mm256_max_ps(mx[g], d);
  }
}

// The Gq query heads of one kv head (head size 8, rows already rotated and scaled, head g at q + 8g) over
// keys [0, n) of its block (rows of 8 floats, key j at kb + 8j): each key and value row is loaded once for
// all Gq heads, and the last, partial block of keys runs through the same vector code with its missing
// keys zero and masked (no scalar tail). s holds Gq rows of ⌈n/8⌉·8 scores; head g's output goes to
// out + g·outStride. Masked keys weigh exactly 0; a head whose every key is masked gives NaN, as softmax
// does. (The head loops are unrolled so the per-head vectors stay in registers.)
template <int Gq>
RLHF_AVX2_FN static void attendGroup8(const float* q, const float* kb, const float* vb, const float* brow, int64_t n, float* s, float* out, int64_t outStride) {
  const __m256 ninf = _mm256_set1_ps(-std::numeric_limits<float>::infinity());
  int64_t n8 = (n + 7) / 8 * 8;
  __m256 qv[Gq], mx[Gq];
  _Pragma("GCC unroll 8") for (int g = 0; g < Gq; ++g) qv[g] = _mm256_loadu_ps(q + 8 * g), mx[g] = ninf;
  const __m256 all = _mm256_castsi256_ps(_mm256_set1_epi32(-1));
  int64_t j = 0;
  for (; j + 8 <= n; j += 8) scoreBlock8<Gq>(qv, kb + j * 8, brow ? _mm256_loadu_ps(brow + j) : _mm256_setzero_ps(), all, s + j, n8, mx);
  if (j < n) {  // the last, partial block: its missing keys are zeros, masked
    alignas(32) float kt[64] = {0}, bt[8] = {0};
    int64_t rem = n - j;
    std::memcpy(kt, kb + j * 8, static_cast<size_t>(rem) * 8 * sizeof(float));
    if (brow) std::memcpy(bt, brow + j, static_cast<size_t>(rem) * sizeof(float));
    __m256 valid = _mm256_castsi256_ps(_mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(rem)), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7)));
    scoreBlock8<Gq>(qv, kt, _mm256_load_ps(bt), valid, s + j, n8, mx);
  }
  float inv[Gq];
  bool dead[Gq];
  _Pragma("GCC unroll 8") for (int g = 0; g < Gq; ++g) {
    float m = hmax8(mx[g]);
    dead[g] = !(m > -std::numeric_limits<float>::infinity());
    __m256 m8 = _mm256_set1_ps(m), sum = _mm256_setzero_ps();
    float* sg = s + g * n8;
    for (int64_t i = 0; i < n8; i += 8) {
      __m256 sc = _mm256_loadu_ps(sg + i);
      __m256 e = _mm256_and_ps(expNonPositive8(_mm256_sub_ps(sc, m8)), _mm256_cmp_ps(sc, ninf, _CMP_NEQ_OQ));
      _mm256_storeu_ps(sg + i, e);
      sum = _mm256_add_ps(sum, e);
    }
    inv[g] = 1.0f / hsum8(sum);
  }
  // Two FMA chains per head over the values (independent chains hide the FMA latency).
  __m256 a0[Gq], a1[Gq];
  _Pragma("GCC unroll 8") for (int g = 0; g < Gq; ++g) a0[g] = a1[g] = _mm256_setzero_ps();
  j = 0;
  for (; j + 2 <= n; j += 2) {
    __m256 v0 = _mm256_loadu_ps(vb + j * 8), v1 = _mm256_loadu_ps(vb + j * 8 + 8);
    _Pragma("GCC unroll 8") for (int g = 0; g < Gq; ++g) {
      a0[g] = _mm256_fmadd_ps(_mm256_broadcast_ss(s + g * n8 + j), v0, a0[g]);
      a1[g] = _mm256_fmadd_ps(_mm256_broadcast_ss(s + g * n8 + j + 1), v1, a1[g]);
    }
  }
  if (j < n) {
    __m256 v0 = _mm256_loadu_ps(vb + j * 8);
    _Pragma("GCC unroll 8") for (int g = 0; g < Gq; ++g) a0[g] = _mm256_fmadd_ps(_mm256_broadcast_ss(s + g * n8 + j), v0, a0[g]);
  }
  _Pragma("GCC unroll 8") for (int g = 0; g < Gq; ++g) {
    __m256 r = dead[g] ? _mm256_set1_ps(std::numeric_limits<float>::quiet_NaN()) : _mm256_mul_ps(_mm256_add_ps(a0[g], a1[g]), _mm256_set1_ps(inv[g]));
    _mm256_storeu_ps(out + g * outStride, r);
  }
}

// __builtin_cpu_init first: this runs in a static initialiser, which may come before libgcc's own.
static bool detectAvx2Fma() {
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
}
static const bool cpuHasAvx2Fma = detectAvx2Fma();
#else
static const bool cpuHasAvx2Fma = false;
#endif
// Whether the fused loops take their vector path (on by default where the CPU has it; tests switch it
// off to check the scalar loop, RLHF_SCALAR_KERNELS=1 does for a whole process).
static std::atomic<bool> useVector{cpuHasAvx2Fma && !std::getenv("RLHF_SCALAR_KERNELS")};
bool vectorPath() { return useVector; }

// vectorKernels(on: -1 query | 0 | 1) → whether the vector path is in use afterwards (never where the
// CPU lacks it).
static Napi::Value vectorKernels(const Napi::CallbackInfo& info) {
  return guard(info, "vectorKernels", [&] {
    double on = argF64(info, 0);
    if (on >= 0) useVector = cpuHasAvx2Fma && on > 0;
    return Napi::Boolean::New(info.Env(), useVector.load());
  });
}

#ifdef RLHF_AVX2
RLHF_AVX2_FN static void rmsNormRow8(const float* x, const float* w, int64_t d, float eps, float* out) {
  __m256 ss8 = _mm256_setzero_ps();
  int64_t i = 0;
  for (; i + 8 <= d; i += 8) {
    __m256 v = _mm256_loadu_ps(x + i);
    ss8 = _mm256_fmadd_ps(v, v, ss8);
  }
  float ss = hsum8(ss8);
  for (; i < d; ++i) ss += x[i] * x[i];
  float inv = 1.0f / std::sqrt(ss / static_cast<float>(d) + eps);
  __m256 inv8 = _mm256_set1_ps(inv);
  for (i = 0; i + 8 <= d; i += 8) {
    __m256 v = _mm256_mul_ps(_mm256_loadu_ps(x + i), inv8);
    _mm256_storeu_ps(out + i, w ? _mm256_mul_ps(v, _mm256_loadu_ps(w + i)) : v);
  }
  for (; i < d; ++i) out[i] = x[i] * inv * (w ? w[i] : 1.0f);
}
#endif

void rmsNormRowFast(const float* x, const float* w, int64_t d, float eps, float* out) {
#ifdef RLHF_AVX2
  if (useVector) return rmsNormRow8(x, w, d, eps, out);
#endif
  rmsNormRow(x, w, d, eps, out);
}

void rmsNormRow(const float* x, const float* w, int64_t d, float eps, float* out) {
  float ss = 0;
  for (int64_t i = 0; i < d; ++i) ss += x[i] * x[i];
  float inv = 1.0f / std::sqrt(ss / static_cast<float>(d) + eps);
  for (int64_t i = 0; i < d; ++i) out[i] = x[i] * inv * (w ? w[i] : 1.0f);
}

// One query row (already scaled) over keys [0, n) of a cache block: scores → softmax → weighted values.
// kb/vb point at key/value row 0, kL/vL are the row strides, brow the additive bias row (or null), s
// scratch for n scores. A row with every key masked gives NaN, as softmax does.
static void attendRowScalar(const float* q, const float* kb, int64_t kL, const float* vb, int64_t vL, const float* brow, int64_t n, int64_t hs, float* s, float* out) {
  // Four keys at a time: four independent accumulation chains instead of one long one.
  int64_t j = 0;
  for (; j + 4 <= n; j += 4) {
    const float* k0 = kb + j * kL;
    const float* k1 = k0 + kL;
    const float* k2 = k1 + kL;
    const float* k3 = k2 + kL;
    float a0 = 0, a1 = 0, a2 = 0, a3 = 0;
    for (int64_t d = 0; d < hs; ++d) {
      float qd = q[d];
      a0 += qd * k0[d];
      a1 += qd * k1[d];
      a2 += qd * k2[d];
      a3 += qd * k3[d];
    }
    s[j] = a0;
    s[j + 1] = a1;
    s[j + 2] = a2;
    s[j + 3] = a3;
  }
  for (; j < n; ++j) {
    const float* kr = kb + j * kL;
    float acc = 0;
    for (int64_t d = 0; d < hs; ++d) acc += q[d] * kr[d];
    s[j] = acc;
  }
  if (brow)
    for (int64_t k = 0; k < n; ++k) s[k] += brow[k];
  float mx = -std::numeric_limits<float>::infinity();
  for (int64_t j = 0; j < n; ++j) mx = std::max(mx, s[j]);
  float sum = 0;
  for (int64_t j = 0; j < n; ++j) {
    float e = s[j] > -std::numeric_limits<float>::infinity() ? expNonPositive(s[j] - mx) : 0.0f;
    s[j] = e;
    sum += e;
  }
  float inv = 1.0f / sum;
  for (int64_t d = 0; d < hs; ++d) out[d] = 0;
  for (int64_t j = 0; j < n; ++j) {
    const float* vr = vb + j * vL;
    float p = s[j] * inv;
    for (int64_t d = 0; d < hs; ++d) out[d] += p * vr[d];
  }
}

// One query row: the vector kernel for head size 8, the scalar loop otherwise.
static void attendRow(const float* q, const float* kb, int64_t kL, const float* vb, int64_t vL, const float* brow, int64_t n, int64_t hs, float* s, float* out) {
#ifdef RLHF_AVX2
  if (hs == 8 && useVector) return attendRow8(q, kb, kL, vb, vL, brow, n, s, out);  // 8-wide keys, values and exp
#endif
  attendRowScalar(q, kb, kL, vb, vL, brow, n, hs, s, out);
}

int64_t attendScratch(int64_t G, int64_t n) { return G * ((n + 7) / 8 * 8); }

void attendGroup(const float* q, int64_t G, const float* kb, int64_t kL, const float* vb, int64_t vL, const float* brow, int64_t n,
                 int64_t hs, float* s, float* out, int64_t outStride) {
#ifdef RLHF_AVX2
  if (hs == 8 && kL == 8 && vL == 8 && useVector) {
    switch (G) {
      case 1: return attendGroup8<1>(q, kb, vb, brow, n, s, out, outStride);
      case 2: return attendGroup8<2>(q, kb, vb, brow, n, s, out, outStride);
      case 4: return attendGroup8<4>(q, kb, vb, brow, n, s, out, outStride);
      default: break;
    }
  }
#endif
  for (int64_t g = 0; g < G; ++g) attendRow(q + g * hs, kb, kL, vb, vL, brow, n, hs, s, out + g * outStride);
}

#ifdef RLHF_AVX2
// σ(x) = 1/(1 + e^−x) for x ≥ 0 and e^x/(1 + e^x) below, both from e = e^−|x| ≤ 1 (no overflow).
RLHF_AVX2_FN static void siluMulRow8(const float* g, const float* u, int64_t n, float* out) {
  const __m256 one = _mm256_set1_ps(1.0f), negZero = _mm256_set1_ps(-0.0f);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    __m256 x = _mm256_loadu_ps(g + i);
    __m256 e = expNonPositive8(_mm256_or_ps(x, negZero));  // e^−|x|; a NaN x stays NaN through x · σ
    __m256 num = _mm256_blendv_ps(e, one, _mm256_cmp_ps(x, _mm256_setzero_ps(), _CMP_GE_OQ));
    __m256 sig = _mm256_div_ps(num, _mm256_add_ps(one, e));
    _mm256_storeu_ps(out + i, _mm256_mul_ps(_mm256_mul_ps(x, sig), _mm256_loadu_ps(u + i)));
  }
  for (; i < n; ++i) out[i] = g[i] / (1.0f + std::exp(-g[i])) * u[i];
}

// w_j = e^((l_j − mx) · invT) for the first ⌊V/8⌋·8 logits (0 for −∞); returns how many it did.
RLHF_AVX2_FN static int64_t expWeights8(const float* l, int64_t V, float mx, float invT, float* w) {
  const __m256 m8 = _mm256_set1_ps(mx), t8 = _mm256_set1_ps(invT), ninf = _mm256_set1_ps(-std::numeric_limits<float>::infinity());
  int64_t j = 0;
  for (; j + 8 <= V; j += 8) {
    __m256 x = _mm256_loadu_ps(l + j);
    __m256 e = expNonPositive8(_mm256_mul_ps(_mm256_sub_ps(x, m8), t8));
    _mm256_storeu_ps(w + j, _mm256_and_ps(e, _mm256_cmp_ps(x, ninf, _CMP_NEQ_OQ)));
  }
  return j;
}

// The float32 sums of whole blocks of 8 weights, each in index order (the scalar loop's order: an 8 × 8
// transpose puts block i's k-th weight in lane i of vector k, and the vectors are added in k order), eight
// blocks at a time; returns how many blocks it did.
RLHF_AVX2_FN static int64_t blockSums8(const float* w, int64_t V, float* blocks) {
  int64_t b = 0;
  for (; (b + 8) * 8 <= V; b += 8) {
    const float* p = w + b * 8;
    __m256 r0 = _mm256_loadu_ps(p), r1 = _mm256_loadu_ps(p + 8), r2 = _mm256_loadu_ps(p + 16), r3 = _mm256_loadu_ps(p + 24);
    __m256 r4 = _mm256_loadu_ps(p + 32), r5 = _mm256_loadu_ps(p + 40), r6 = _mm256_loadu_ps(p + 48), r7 = _mm256_loadu_ps(p + 56);
    __m256 t0 = _mm256_unpacklo_ps(r0, r1), t1 = _mm256_unpackhi_ps(r0, r1), t2 = _mm256_unpacklo_ps(r2, r3), t3 = _mm256_unpackhi_ps(r2, r3);
    __m256 t4 = _mm256_unpacklo_ps(r4, r5), t5 = _mm256_unpackhi_ps(r4, r5), t6 = _mm256_unpacklo_ps(r6, r7), t7 = _mm256_unpackhi_ps(r6, r7);
    __m256 u0 = _mm256_shuffle_ps(t0, t2, 0x44), u1 = _mm256_shuffle_ps(t0, t2, 0xEE), u2 = _mm256_shuffle_ps(t1, t3, 0x44), u3 = _mm256_shuffle_ps(t1, t3, 0xEE);
    __m256 u4 = _mm256_shuffle_ps(t4, t6, 0x44), u5 = _mm256_shuffle_ps(t4, t6, 0xEE), u6 = _mm256_shuffle_ps(t5, t7, 0x44), u7 = _mm256_shuffle_ps(t5, t7, 0xEE);
    __m256 c0 = _mm256_permute2f128_ps(u0, u4, 0x20), c1 = _mm256_permute2f128_ps(u1, u5, 0x20), c2 = _mm256_permute2f128_ps(u2, u6, 0x20), c3 = _mm256_permute2f128_ps(u3, u7, 0x20);
    __m256 c4 = _mm256_permute2f128_ps(u0, u4, 0x31), c5 = _mm256_permute2f128_ps(u1, u5, 0x31), c6 = _mm256_permute2f128_ps(u2, u6, 0x31), c7 = _mm256_permute2f128_ps(u3, u7, 0x31);
    __m256 s = _mm256_add_ps(_mm256_add_ps(_mm256_add_ps(_mm256_add_ps(_mm256_add_ps(_mm256_add_ps(_mm256_add_ps(c0, c1), c2), c3), c4), c5), c6), c7);
    _mm256_storeu_ps(blocks + b, s);
  }
  return b;
}

// max over the first ⌊V/8⌋·8 values and l[0] (NaNs skipped: max_ps returns its second operand on a NaN,
// so the running maximum goes second).
RLHF_AVX2_FN static float maxOf8(const float* l, int64_t V) {
  __m256 m = _mm256_set1_ps(l[0]);
  for (int64_t j = 0; j + 8 <= V; j += 8) m = _mm256_max_ps(_mm256_loadu_ps(l + j), m);
  return hmax8(m);
}
#endif

void siluMulRow(const float* g, const float* u, int64_t n, float* out) {
#ifdef RLHF_AVX2
  if (useVector) return siluMulRow8(g, u, n, out);
#endif
  for (int64_t i = 0; i < n; ++i) out[i] = g[i] / (1.0f + std::exp(-g[i])) * u[i];
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
    // One pass per (b, kv head, t) serves its G query heads together (attendGroup), so each cached key and
    // value row is read once, not G times.
    at::parallel_for(0, B * KV, 4, [&](int64_t i0, int64_t i1) {
      std::vector<float> w(static_cast<size_t>(attendScratch(G, L)));
      std::vector<float> qv(static_cast<size_t>(G * hs));
      for (int64_t i = i0; i < i1; ++i) {
        int64_t b = i / KV, kv = i % KV;
        const float* kb = pk + b * ks[0] + kv * ks[1];
        const float* vb = pv + b * vs[0] + kv * vs[1];
        for (int64_t t = 0; t < T; ++t) {
          int64_t n = causal ? L - T + t + 1 : L;  // keys [0, n) are visible
          const float* brow = pb ? pb + b * bB + t * L : nullptr;
          for (int64_t g = 0; g < G; ++g) {
            auto qa1 = qa[b][kv * G + g][t];
            for (int64_t d = 0; d < hs; ++d) qv[g * hs + d] = qa1[d] * scale;
          }
          attendGroup(qv.data(), G, kb, ks[2], vb, vs[2], brow, n, hs, w.data(), po + ((b * H + kv * G) * T + t) * hs, T * hs);
        }
      }
    });
    return ret(info, out);
  });
}

// ---- inverse-CDF sampling ------------------------------------------------------------------------------
// sampleCdf(probs (B, V) float32, uniforms Float64Array(B)) → (B,) int64: per row, the number of j with
// cdf_j ≤ u · cdf_{V−1}, cdf summed in float64 left to right, clamped to V − 1. The same arithmetic as the
// composite chain in src/generate/sampling.ts (double, cumsum, mul, le, sum, clamp: libtorch's cumsum
// adds sequentially too), so both give the same tokens; this one is a single pass with no (B, V) float64
// temporaries. Rows are independent, each reads only its own uniform.
static Napi::Value sampleCdf(const Napi::CallbackInfo& info) {
  return guard(info, "sampleCdf", [&] {
    const at::Tensor& probs = argT(info, 0);
    auto u = info[1].As<Napi::Float64Array>();
    if (probs.dim() != 2 || probs.scalar_type() != at::kFloat || !probs.device().is_cpu())
      throw std::invalid_argument("sampleCdf expects float32 CPU probabilities (B, V)");
    int64_t B = probs.size(0), V = probs.size(1);
    if (static_cast<int64_t>(u.ElementLength()) != B)
      throw std::invalid_argument("sampleCdf: " + std::to_string(u.ElementLength()) + " uniforms for " + std::to_string(B) + " rows");
    if (V == 0) throw std::invalid_argument("sampleCdf: empty vocabulary");
    at::Tensor pc = probs.contiguous();
    at::Tensor out = at::empty({B}, probs.options().dtype(at::kLong));
    const float* pp = pc.data_ptr<float>();
    const double* pu = u.Data();
    int64_t* po = out.data_ptr<int64_t>();
    std::vector<double> cdf(static_cast<size_t>(V));
    for (int64_t b = 0; b < B; ++b) {
      const float* row = pp + b * V;
      double c = 0;
      for (int64_t j = 0; j < V; ++j) cdf[j] = c += static_cast<double>(row[j]);
      double threshold = pu[b] * c;
      // cdf is non-decreasing (probabilities are ≥ 0), so the count of cdf_j ≤ threshold is the first j
      // where that fails; from a NaN on every comparison fails, as in the composite chain.
      int64_t n = 0;
      while (n < V && cdf[n] <= threshold) ++n;
      po[b] = std::min(n, V - 1);
    }
    return ret(info, out);
  });
}

// ---- the next token from logits, in one pass per row -------------------------------------------------
// Weights w_j = e^((l_j − max l) / T) in float32 (0 for a −∞ logit). The cdf is summed in blocks of 8: each
// block's sum in float32 in index order, the block sums prefixed in float64 in order, and cdf_j =
// prefix(block) + partial_j with partial_j the block's float32 sum up to j, in the same order, so the cdf is
// non-decreasing and ends each block exactly at the next block's prefix. The token is
// #{j : cdf_j ≤ u · total}, clamped to V − 1, as sampleCdf draws. T = 0 is greedy: the first maximal
// logit. The log-prob is the raw model's, log softmax(l)_token whatever T. Rows are independent; each reads
// only its own uniform.
static constexpr int64_t kCdfBlock = 8;

static void expWeights(const float* l, int64_t V, float mx, float invT, float* w) {
  const float ninf = -std::numeric_limits<float>::infinity();
  int64_t j = 0;
#ifdef RLHF_AVX2
  if (useVector) j = expWeights8(l, V, mx, invT, w);
#endif
  for (; j < V; ++j) w[j] = l[j] > ninf ? expNonPositive((l[j] - mx) * invT) : 0.0f;
}

// The largest of l[0, V), NaNs skipped after l[0].
static float rowMax(const float* l, int64_t V) {
  float mx = l[0];
  int64_t j = 1;
#ifdef RLHF_AVX2
  if (useVector && V >= 16) {
    mx = maxOf8(l, V);
    j = V / 8 * 8;
  }
#endif
  for (; j < V; ++j)
    if (l[j] > mx) mx = l[j];
  return mx;
}

// Fills w with the weights e^((l_j − mx) · invT) and blocks with their block sums; returns the total, the
// block sums added in order in float64.
static double weightsTotal(const float* l, int64_t V, float mx, float invT, float* w, float* blocks) {
  expWeights(l, V, mx, invT, w);
  int64_t nb = (V + kCdfBlock - 1) / kCdfBlock, b = 0;
#ifdef RLHF_AVX2
  if (useVector) b = blockSums8(w, V, blocks);
#endif
  for (; b < nb; ++b) {
    float s = 0;
    for (int64_t j = b * kCdfBlock, e = std::min(V, j + kCdfBlock); j < e; ++j) s += w[j];
    blocks[b] = s;
  }
  double total = 0;
  for (b = 0; b < nb; ++b) total += blocks[b];
  return total;
}

// log softmax(l)_token from the raw model's normaliser (weightsTotal at invT = 1).
static float rawLogprob(const float* l, float mx, int64_t token, double rawTotal) {
  return static_cast<float>(static_cast<double>(l[token]) - mx - std::log(rawTotal));
}

static void sampleRow(const float* l, int64_t V, double temperature, double u, float* w, float* blocks, int64_t* token, float* logprob) {
  float mx = rowMax(l, V);
  int64_t arg = 0;
  double rawTotal = -1;  // computed with the sampling weights when T = 1, else after the draw
  if (temperature == 0) {
    while (arg < V - 1 && !(l[arg] == mx)) ++arg;
  } else {
    float invT = static_cast<float>(1.0 / temperature);
    double total = weightsTotal(l, V, mx, invT, w, blocks), threshold = u * total, prefix = 0;
    if (invT == 1.0f) rawTotal = total;
    int64_t nb = (V + kCdfBlock - 1) / kCdfBlock, b = 0;
    while (b < nb && prefix + blocks[b] <= threshold) prefix += blocks[b++];
    int64_t n = b * kCdfBlock;
    if (b < nb) {
      float partial = 0;
      for (int64_t e = std::min(V, n + kCdfBlock); n < e && prefix + (partial += w[n]) <= threshold;) ++n;
    }
    arg = std::min(n, V - 1);
  }
  if (rawTotal < 0) rawTotal = weightsTotal(l, V, mx, 1.0f, w, blocks);
  *token = arg;
  *logprob = rawLogprob(l, mx, arg, rawTotal);
}

// sampleLogits(logits (B, V) float32, temperature ≥ 0, uniforms Float64Array(B)) → [tokens (B,) int64,
// logprobs (B,) float32].
static Napi::Value sampleLogits(const Napi::CallbackInfo& info) {
  return guard(info, "sampleLogits", [&] {
    const at::Tensor& logits = argT(info, 0);
    double temperature = argF64(info, 1);
    auto u = info[2].As<Napi::Float64Array>();
    if (logits.dim() != 2 || !fastPath({&logits}))
      throw std::invalid_argument("sampleLogits expects float32 CPU logits (B, V) without a gradient, got " + describe(logits));
    int64_t B = logits.size(0), V = logits.size(1);
    if (static_cast<int64_t>(u.ElementLength()) != B)
      throw std::invalid_argument("sampleLogits: " + std::to_string(u.ElementLength()) + " uniforms for " + std::to_string(B) + " rows");
    if (V == 0) throw std::invalid_argument("sampleLogits: empty vocabulary");
    if (!(temperature >= 0)) throw std::invalid_argument("sampleLogits: temperature must be >= 0");
    at::Tensor lc = logits.contiguous();
    at::Tensor tokens = at::empty({B}, logits.options().dtype(at::kLong));
    at::Tensor logprobs = at::empty({B}, logits.options());
    const float* pl = lc.data_ptr<float>();
    const double* pu = u.Data();
    int64_t* pt = tokens.data_ptr<int64_t>();
    float* pp = logprobs.data_ptr<float>();
    at::parallel_for(0, B, 16, [&](int64_t b0, int64_t b1) {
      std::vector<float> w(static_cast<size_t>(V));
      std::vector<float> blocks(static_cast<size_t>((V + kCdfBlock - 1) / kCdfBlock));
      for (int64_t b = b0; b < b1; ++b) sampleRow(pl + b * V, V, temperature, pu[b], w.data(), blocks.data(), pt + b, pp + b);
    });
    return retMany(info, {tokens, logprobs});
  });
}

// tokenLogprobs(logits (B, V) float32, tokens (B,) int64) → (B,) float32: log softmax(logits)[token], the
// same arithmetic as sampleLogits' log-probs (so a token chosen by the composite filters gets the log-prob
// sampleLogits would give it).
static Napi::Value tokenLogprobs(const Napi::CallbackInfo& info) {
  return guard(info, "tokenLogprobs", [&] {
    const at::Tensor& logits = argT(info, 0);
    const at::Tensor& tokens = argT(info, 1);
    if (logits.dim() != 2 || !fastPath({&logits}) || logits.size(1) == 0)
      throw std::invalid_argument("tokenLogprobs expects float32 CPU logits (B, V) without a gradient, got " + describe(logits));
    int64_t B = logits.size(0), V = logits.size(1);
    if (tokens.dim() != 1 || tokens.size(0) != B || tokens.scalar_type() != at::kLong || !tokens.device().is_cpu())
      throw std::invalid_argument("tokenLogprobs expects int64 CPU tokens (" + std::to_string(B) + "), got " + describe(tokens));
    at::Tensor lc = logits.contiguous(), tc = tokens.contiguous();
    at::Tensor out = at::empty({B}, logits.options());
    const float* pl = lc.data_ptr<float>();
    const int64_t* pt = tc.data_ptr<int64_t>();
    for (int64_t b = 0; b < B; ++b)
      if (pt[b] < 0 || pt[b] >= V) throw std::invalid_argument("tokenLogprobs: token " + std::to_string(pt[b]) + " outside the vocabulary of " + std::to_string(V));
    float* po = out.data_ptr<float>();
    at::parallel_for(0, B, 16, [&](int64_t b0, int64_t b1) {
      std::vector<float> w(static_cast<size_t>(V)), blocks(static_cast<size_t>((V + kCdfBlock - 1) / kCdfBlock));
      for (int64_t b = b0; b < b1; ++b) {
        const float* l = pl + b * V;
        float mx = rowMax(l, V);
        po[b] = rawLogprob(l, mx, pt[b], weightsTotal(l, V, mx, 1.0f, w.data(), blocks.data()));
      }
    });
    return ret(info, out);
  });
}

void registerKernels(Napi::Env env, Exports exports) {
  RLHF_EXPORT("rmsNorm", rmsNorm);
  RLHF_EXPORT("rotary", rotary);
  RLHF_EXPORT("groupedAttention", groupedAttention);
  RLHF_EXPORT("vectorKernels", vectorKernels);
  RLHF_EXPORT("sampleCdf", sampleCdf);
  RLHF_EXPORT("sampleLogits", sampleLogits);
  RLHF_EXPORT("tokenLogprobs", tokenLogprobs);
}

}  // namespace rlhf
