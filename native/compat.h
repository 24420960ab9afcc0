// Version differences between the libtorch builds we support, kept in one place.
//
// libtorch 1.13 (Debian's) exposes attention only as the private `at::_scaled_dot_product_attention`
// (returning (out, weights), no `scale` argument); 2.x has the public `at::scaled_dot_product_attention`.
#pragma once

#include <ATen/Version.h>
#include <torch/torch.h>
#include <torch/version.h>

#include <cstring>
#include <sstream>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>

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

// AdamW as one fused multi-tensor kernel: `at::_fused_adamw_` has a CPU kernel since libtorch 2.4 (CUDA
// since 2.0). It reads each step count from a float32 scalar tensor and does not increment it (the caller
// does, as torch.optim's `_fused_adamw` does); amsgrad off, so max_exp_avg_sqs is empty.
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 4)
inline constexpr bool kFusedAdamW = true;
inline void fusedAdamW(at::TensorList params, at::TensorList grads, at::TensorList expAvgs, at::TensorList expAvgSqs,
                       at::TensorList steps, double lr, double beta1, double beta2, double weightDecay, double eps) {
  at::_fused_adamw_(params, grads, expAvgs, expAvgSqs, {}, steps, lr, beta1, beta2, weightDecay, eps,
                    /*amsgrad=*/false, /*maximize=*/false);
}
#else
inline constexpr bool kFusedAdamW = false;
inline void fusedAdamW(at::TensorList, at::TensorList, at::TensorList, at::TensorList, at::TensorList, double, double,
                       double, double, double) {
  throw std::invalid_argument("fused AdamW needs libtorch >= 2.4 (this is " TORCH_VERSION ")");
}
#endif

// A CPU allocator for every version: libtorch 2.3 made Allocator::allocate non-const and added a pure
// copy_data(); 1.13 has only `allocate(size_t) const`. Both allocate overloads are declared without
// `override`, so whichever the base declares is the one overridden and the other is a plain overload.
struct AllocatorBase : at::Allocator {
  virtual at::DataPtr allocateBytes(size_t n) const = 0;
  at::DataPtr allocate(size_t n) const { return allocateBytes(n); }  // NOLINT: overrides on 1.x
  at::DataPtr allocate(size_t n) { return allocateBytes(n); }        // NOLINT: overrides on 2.3+
  void copy_data(void* dest, const void* src, std::size_t count) const { std::memcpy(dest, src, count); }
};

// The optimiser's per-parameter state map is keyed by the TensorImpl's address printed as a string on
// 1.13 and by the address itself on 2.x: the key type is read off the map, not off a version number.
using OptimStateKey = std::decay_t<decltype(std::declval<torch::optim::Optimizer&>().state())>::key_type;
template <typename Key = OptimStateKey>
inline Key optimStateKey(const at::Tensor& p) {
  if constexpr (std::is_same_v<Key, std::string>) {
    std::ostringstream os;  // what 1.13's c10::guts::to_string does
    os << p.unsafeGetTensorImpl();
    return os.str();
  } else {
    return p.unsafeGetTensorImpl();
  }
}

// The vector ISA libtorch's own CPU kernels dispatch to (DEFAULT, AVX2, AVX512, ...; ATEN_CPU_CAPABILITY
// lowers it). 2.x names it; 1.13 keeps the function unexported and only prints it in show_config().
inline std::string cpuCapability() {
#if TORCH_VERSION_MAJOR >= 2
  return at::get_cpu_capability();
#else
  const std::string config = at::show_config();
  const std::string key = "CPU capability usage: ";
  size_t at = config.find(key);
  if (at == std::string::npos) return "unknown";
  size_t from = at + key.size();
  return config.substr(from, config.find('\n', from) - from);
#endif
}

}  // namespace rlhf::compat
