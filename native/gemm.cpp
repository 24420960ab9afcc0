// A small-matrix GEMM for the fused decoder step: C (M, N) = [C +] A (M, K) · Wᵀ [+ bias], W (N, K) as
// nn.Linear stores it. At decode sizes (M = batch rows, K = 64…1024) OpenBLAS spends half its time
// outside the multiply-adds (measured on stories260K's shapes, 256 × 64 × 172: ~57 GFLOP/s of this core's
// ~120); with K small, one 16-column panel of W and six rows of A sit in L1 and a 6 × 16 register block
// runs at the FMA units' rate. Larger problems (A or a W panel beyond the caches) go to libtorch's BLAS.
#include "kernels.h"

#include <algorithm>
#include <vector>

namespace rlhf {

#ifdef RLHF_AVX2
// Rows [0, R) of a 16-column block: acc(r, half) += A[r][k] · Wp[k][half·8 … +8] over k, then
// C[r][0, nc) = (accumulate ? C : 0) + acc + bias. Wp is the block's panel, k-major, zero past nc.
template <int R>
RLHF_AVX2_FN static void block6x16(const float* A, int64_t lda, const float* Wp, int64_t K, const float* bias, float* C, int64_t ldc,
                                    int64_t nc, bool accumulate) {
  __m256 acc[R][2];
  _Pragma("GCC unroll 6") for (int r = 0; r < R; ++r) acc[r][0] = acc[r][1] = _mm256_setzero_ps();
  for (int64_t k = 0; k < K; ++k) {
    __m256 w0 = _mm256_loadu_ps(Wp + k * 16), w1 = _mm256_loadu_ps(Wp + k * 16 + 8);
    _Pragma("GCC unroll 6") for (int r = 0; r < R; ++r) {
      __m256 a = _mm256_broadcast_ss(A + r * lda + k);
      acc[r][0] = _mm256_fmadd_ps(a, w0, acc[r][0]);
      acc[r][1] = _mm256_fmadd_ps(a, w1, acc[r][1]);
    }
  }
  if (nc == 16) {  // a whole block: plain loads and stores (masked ones are slow on some cores)
    __m256 b0 = bias ? _mm256_loadu_ps(bias) : _mm256_setzero_ps(), b1 = bias ? _mm256_loadu_ps(bias + 8) : _mm256_setzero_ps();
    _Pragma("GCC unroll 6") for (int r = 0; r < R; ++r) {
      float* c = C + r * ldc;
      __m256 v0 = _mm256_add_ps(acc[r][0], b0), v1 = _mm256_add_ps(acc[r][1], b1);
      if (accumulate) v0 = _mm256_add_ps(_mm256_loadu_ps(c), v0), v1 = _mm256_add_ps(_mm256_loadu_ps(c + 8), v1);
      _mm256_storeu_ps(c, v0);
      _mm256_storeu_ps(c + 8, v1);
    }
    return;
  }
  // The last block: the columns that exist in each half.
  const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  __m256i m0 = _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(std::min<int64_t>(nc, 8))), lane);
  __m256i m1 = _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(std::max<int64_t>(nc - 8, 0))), lane);
  __m256 b0 = bias ? _mm256_maskload_ps(bias, m0) : _mm256_setzero_ps(), b1 = bias ? _mm256_maskload_ps(bias + 8, m1) : _mm256_setzero_ps();
  _Pragma("GCC unroll 6") for (int r = 0; r < R; ++r) {
    float* c = C + r * ldc;
    __m256 v0 = _mm256_add_ps(acc[r][0], b0), v1 = _mm256_add_ps(acc[r][1], b1);
    if (accumulate) v0 = _mm256_add_ps(_mm256_maskload_ps(c, m0), v0), v1 = _mm256_add_ps(_mm256_maskload_ps(c + 8, m1), v1);
    _mm256_maskstore_ps(c, m0, v0);
    _mm256_maskstore_ps(c + 8, m1, v1);
  }
}

template <int R>
RLHF_AVX2_FN static void rowsTail(int64_t rows, const float* A, int64_t lda, const float* Wp, int64_t K, const float* bias, float* C,
                                  int64_t ldc, int64_t nc, bool accumulate) {
  if (rows == R) return block6x16<R>(A, lda, Wp, K, bias, C, ldc, nc, accumulate);
  if constexpr (R > 1) rowsTail<R - 1>(rows, A, lda, Wp, K, bias, C, ldc, nc, accumulate);
}

// Few rows (a decode step of one or two sequences): packing a panel of W costs as much as using it, so each
// output is a dot product of an A row with a W row, four W rows at a time.
RLHF_AVX2_FN static void gemv8(const float* A, int64_t lda, int64_t M, int64_t K, const float* W, int64_t N, const float* bias, float* C,
                               int64_t ldc, bool accumulate) {
  for (int64_t m = 0; m < M; ++m) {
    const float* a = A + m * lda;
    float* c = C + m * ldc;
    int64_t n = 0;
    for (; n + 4 <= N; n += 4) {
      const float* w0 = W + n * K;
      __m256 s0 = _mm256_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
      int64_t k = 0;
      for (; k + 8 <= K; k += 8) {
        __m256 x = _mm256_loadu_ps(a + k);
        s0 = _mm256_fmadd_ps(x, _mm256_loadu_ps(w0 + k), s0);
        s1 = _mm256_fmadd_ps(x, _mm256_loadu_ps(w0 + K + k), s1);
        s2 = _mm256_fmadd_ps(x, _mm256_loadu_ps(w0 + 2 * K + k), s2);
        s3 = _mm256_fmadd_ps(x, _mm256_loadu_ps(w0 + 3 * K + k), s3);
      }
      float r[4] = {hsum8(s0), hsum8(s1), hsum8(s2), hsum8(s3)};
      for (; k < K; ++k)
        for (int j = 0; j < 4; ++j) r[j] += a[k] * w0[j * K + k];
      for (int j = 0; j < 4; ++j) c[n + j] = (accumulate ? c[n + j] : 0.0f) + r[j] + (bias ? bias[n + j] : 0.0f);
    }
    for (; n < N; ++n) {
      const float* w = W + n * K;
      __m256 s = _mm256_setzero_ps();
      int64_t k = 0;
      for (; k + 8 <= K; k += 8) s = _mm256_fmadd_ps(_mm256_loadu_ps(a + k), _mm256_loadu_ps(w + k), s);
      float r = hsum8(s);
      for (; k < K; ++k) r += a[k] * w[k];
      c[n] = (accumulate ? c[n] : 0.0f) + r + (bias ? bias[n] : 0.0f);
    }
  }
}

RLHF_AVX2_FN static void gemm8(const float* A, int64_t lda, int64_t M, int64_t K, const float* W, int64_t N, const float* bias, float* C,
                               int64_t ldc, bool accumulate) {
  thread_local std::vector<float> panel;
  panel.resize(static_cast<size_t>(K * 16));
  for (int64_t n0 = 0; n0 < N; n0 += 16) {
    int64_t nc = std::min<int64_t>(16, N - n0);
    // The panel: Wp[k][c] = W[n0 + c][k], zero for the columns past N.
    for (int64_t c = 0; c < 16; ++c) {
      const float* wr = W + (n0 + c) * K;
      if (c < nc)
        for (int64_t k = 0; k < K; ++k) panel[k * 16 + c] = wr[k];
      else
        for (int64_t k = 0; k < K; ++k) panel[k * 16 + c] = 0;
    }
    const float* b = bias ? bias + n0 : nullptr;
    int64_t m = 0;
    for (; m + 6 <= M; m += 6) block6x16<6>(A + m * lda, lda, panel.data(), K, b, C + m * ldc + n0, ldc, nc, accumulate);
    if (m < M) rowsTail<5>(M - m, A + m * lda, lda, panel.data(), K, b, C + m * ldc + n0, ldc, nc, accumulate);
  }
}
#endif

bool smallGemm(const float* A, int64_t lda, int64_t M, int64_t K, const float* W, int64_t N, const float* bias, float* C, int64_t ldc,
               bool accumulate) {
#ifdef RLHF_AVX2
  // A's rows stream from L2 once per 16-column panel; the panel (16 · K floats) stays in L1.
  if (vectorPath() && K <= 1024 && M * K <= 128 * 1024) {
    if (M <= 2) gemv8(A, lda, M, K, W, N, bias, C, ldc, accumulate);
    else gemm8(A, lda, M, K, W, N, bias, C, ldc, accumulate);
    return true;
  }
#endif
  return false;
}

}  // namespace rlhf
