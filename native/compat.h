// Version differences between the libtorch builds we support, kept in one place.
//
// libtorch 1.13 (Debian's) exposes attention only as the private `at::_scaled_dot_product_attention`
// (returning (out, weights), no `scale` argument); 2.x has the public `at::scaled_dot_product_attention`.
#pragma once

#include <torch/torch.h>
#include <torch/version.h>

namespace rlhf::compat {

inline at::Tensor scaledDotProductAttention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                                            const c10::optional<at::Tensor>& mask, double dropoutP,
                                            bool isCausal, c10::optional<double> scale) {
#if TORCH_VERSION_MAJOR >= 2 && TORCH_VERSION_MINOR >= 1
  return at::scaled_dot_product_attention(q, k, v, mask, dropoutP, isCausal, scale);
#else
  // No `scale` argument before 2.1: fold a custom scale into q, since the op divides by sqrt(head_dim).
  at::Tensor qs = q;
  if (scale.has_value()) qs = q * (*scale * std::sqrt(static_cast<double>(q.size(-1))));
#if TORCH_VERSION_MAJOR >= 2
  return at::scaled_dot_product_attention(qs, k, v, mask, dropoutP, isCausal);
#else
  return std::get<0>(at::_scaled_dot_product_attention(qs, k, v, mask, dropoutP, false, isCausal));
#endif
#endif
}

}  // namespace rlhf::compat
