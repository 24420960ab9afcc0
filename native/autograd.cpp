// Autograd: libtorch owns the graph and the gradients; this file only exposes its switches.
#include "common.h"

namespace rlhf {

static Napi::Value setRequiresGrad(const Napi::CallbackInfo& info) {
  return guard(info, "requiresGrad_", [&] {
    at::Tensor t = argT(info, 0);
    t.set_requires_grad(argBool(info, 1));
    return info.Env().Undefined();
  });
}

static Napi::Value requiresGrad(const Napi::CallbackInfo& info) {
  return guard(info, "requiresGrad", [&] { return Napi::Boolean::New(info.Env(), argT(info, 0).requires_grad()); });
}

static Napi::Value isLeaf(const Napi::CallbackInfo& info) {
  return guard(info, "isLeaf", [&] { return Napi::Boolean::New(info.Env(), argT(info, 0).is_leaf()); });
}

// backward(h, grad|-1, retainGraph): gradients accumulate into leaves' .grad, as in PyTorch.
static Napi::Value backward(const Napi::CallbackInfo& info) {
  return guard(info, "backward", [&] {
    const at::Tensor& t = argT(info, 0);
    auto g = argOptT(info, 1);
    t.backward(g ? *g : at::Tensor(), argBool(info, 2));
    return info.Env().Undefined();
  });
}

// grad(h): a new handle sharing the gradient's storage, or -1 when there is none.
static Napi::Value grad(const Napi::CallbackInfo& info) {
  return guard(info, "grad", [&] {
    const at::Tensor& g = argT(info, 0).grad();
    return Napi::Number::New(info.Env(), g.defined() ? put(g) : -1);
  });
}

// zeroGrad(h): drops the gradient (PyTorch's set_to_none=True), so the next backward writes it afresh.
static Napi::Value zeroGrad(const Napi::CallbackInfo& info) {
  return guard(info, "zeroGrad", [&] {
    at::Tensor t = argT(info, 0);
    t.mutable_grad().reset();
    return info.Env().Undefined();
  });
}

static Napi::Value retainGrad(const Napi::CallbackInfo& info) {
  return guard(info, "retainGrad", [&] {
    argT(info, 0).retain_grad();
    return info.Env().Undefined();
  });
}

// setGradEnabled(on) -> previous state. Grad mode is per thread; JS runs ops on one thread.
static Napi::Value setGradEnabled(const Napi::CallbackInfo& info) {
  bool prev = at::GradMode::is_enabled();
  at::GradMode::set_enabled(argBool(info, 0));
  return Napi::Boolean::New(info.Env(), prev);
}

static Napi::Value isGradEnabled(const Napi::CallbackInfo& info) {
  return Napi::Boolean::New(info.Env(), at::GradMode::is_enabled());
}

void registerAutograd(Napi::Env env, Exports exports) {
  RLHF_EXPORT("setRequiresGrad", setRequiresGrad);
  RLHF_EXPORT("requiresGrad", requiresGrad);
  RLHF_EXPORT("isLeaf", isLeaf);
  RLHF_EXPORT("backward", backward);
  RLHF_EXPORT("grad", grad);
  RLHF_EXPORT("zeroGrad", zeroGrad);
  RLHF_EXPORT("retainGrad", retainGrad);
  RLHF_EXPORT("setGradEnabled", setGradEnabled);
  RLHF_EXPORT("isGradEnabled", isGradEnabled);
}

}  // namespace rlhf
