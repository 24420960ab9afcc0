// Fused inference kernels: hand-written loops for the small, op-dense pieces of a decoder step
// (RMSNorm, rotary embedding, attention over a KV cache with grouped-query heads). At decode time
// these are dozens of tiny libtorch ops per layer whose dispatch dominates; one loop each is faster.
//
// Each entry point takes the fast path only when nothing needs a gradient and the tensors are float32
// on the CPU; otherwise it composes libtorch ops (which autograd differentiates), so results are the
// same either way (tests compare the two paths).
#include <ATen/Parallel.h>

// x86-64: the decode attention has an AVX2 + FMA path, compiled for those instructions function by
// function (target attributes) and chosen at run time when the CPU has them, so one binary runs anywhere
// and nothing else in this file changes with the build machine.
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define RLHF_AVX2 1
#define RLHF_AVX2_FN __attribute__((target("avx2,fma")))
#endif

#include <atomic>
#include <cmath>
#include <cstdlib>
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

// Horizontal max and sum of eight lanes, in registers (a store and eight scalar reloads stall on
// store-to-load forwarding).
RLHF_AVX2_FN static inline float hmax8(__m256 v) {
  __m128 m = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  m = _mm_max_ps(m, _mm_movehl_ps(m, m));
  m = _mm_max_ss(m, _mm_shuffle_ps(m, m, 0x55));
  return _mm_cvtss_f32(m);
}
RLHF_AVX2_FN static inline float hsum8(__m256 v) {
  __m128 m = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  m = _mm_add_ps(m, _mm_movehl_ps(m, m));
  m = _mm_add_ss(m, _mm_shuffle_ps(m, m, 0x55));
  return _mm_cvtss_f32(m);
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

// vectorKernels(on: -1 query | 0 | 1) → whether the vector path is in use afterwards (never where the
// CPU lacks it).
static Napi::Value vectorKernels(const Napi::CallbackInfo& info) {
  return guard(info, "vectorKernels", [&] {
    double on = argF64(info, 0);
    if (on >= 0) useVector = cpuHasAvx2Fma && on > 0;
    return Napi::Boolean::New(info.Env(), useVector.load());
  });
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
#ifdef RLHF_AVX2
            if (hs == 8 && ks[3] == 1 && vs[3] == 1 && useVector) {  // the vector path: 8-wide keys, values and exp
              attendRow8(qv.data(), kb, ks[2], vb, vs[2], brow, n, s, po + ((b * H + kv * G + g) * T + t) * hs);
              continue;
            }
#endif
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

void registerKernels(Napi::Env env, Exports exports) {
  RLHF_EXPORT("rmsNorm", rmsNorm);
  RLHF_EXPORT("rotary", rotary);
  RLHF_EXPORT("groupedAttention", groupedAttention);
  RLHF_EXPORT("vectorKernels", vectorKernels);
  RLHF_EXPORT("sampleCdf", sampleCdf);
}

}  // namespace rlhf
