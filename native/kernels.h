// The fused loops' row kernels (kernels.cpp), shared with the fused decoder step (decode.cpp). Each works
// on float32 rows on the CPU and takes its AVX2 + FMA path where kernels.cpp chose it at run time.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <initializer_list>

// x86-64: AVX2 + FMA paths, compiled for those instructions function by function (target attributes) and
// chosen at run time when the CPU has them (vectorPath()), so one binary runs anywhere.
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define RLHF_AVX2 1
#define RLHF_AVX2_FN __attribute__((target("avx2,fma")))
#endif

namespace rlhf {

#ifdef RLHF_AVX2
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
#endif

// Whether the fused loops take their vector path now (kernels.cpp: the CPU has AVX2 + FMA, not switched off).
bool vectorPath();

// Whether the fused loops may run on these tensors: float32 on the CPU, none needing a gradient.
bool fastPath(std::initializer_list<const at::Tensor*> ts);

// out = x / sqrt(mean(x²) + eps) · w over one row of d (w may be null: no scale), the sum of squares in
// index order (the rmsNorm op's arithmetic).
void rmsNormRow(const float* x, const float* w, int64_t d, float eps, float* out);
// The same with the sum of squares in eight FMA lanes where the vector path is on (the decoder step's).
void rmsNormRowFast(const float* x, const float* w, int64_t d, float eps, float* out);

// The G query heads that share one kv head (head g's query at q + g·hs, already scaled by 1/√hs; its
// output at out + g·outStride) over keys [0, n) of a cache block: softmax(q·k_j + brow_j) weighted sum of
// v_j. kb/vb point at key/value row 0, kL/vL are the row strides, brow the additive bias row (null: none),
// s scratch of attendScratch(G, n) floats. Masked keys (−∞) weigh exactly 0; a head with every key masked
// gives NaN, as softmax does. With head size 8 on the vector path each key and value row is loaded once
// for all G.
void attendGroup(const float* q, int64_t G, const float* kb, int64_t kL, const float* vb, int64_t vL, const float* brow, int64_t n,
                 int64_t hs, float* s, float* out, int64_t outStride);
int64_t attendScratch(int64_t G, int64_t n);

// out_i = silu(g_i) · u_i = g_i / (1 + e^(−g_i)) · u_i over n values (out may alias g).
void siluMulRow(const float* g, const float* u, int64_t n, float* out);

// C (M, N) = [C +] A (M, K) · Wᵀ [+ bias] for W (N, K) row-major, when the problem is small enough for
// the register-blocked kernel of gemm.cpp (vector path only); returns false, touching nothing, otherwise.
bool smallGemm(const float* A, int64_t lda, int64_t M, int64_t K, const float* W, int64_t N, const float* bias, float* C, int64_t ldc,
               bool accumulate);

}  // namespace rlhf
