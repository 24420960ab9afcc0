// Shared plumbing for the addon: the tensor handle table, argument readers and the error guard.
//
// Tensors cross the boundary as small integer handles into a native table (not as ObjectWrap objects):
// measured here, a wrapped object per result costs ~4.2 µs per op, a handle ~0.8 µs (measured on the 2-core EPYC development machine).
// JavaScript owns lifetime explicitly through `free`; the JS facade guarantees a freed handle is never
// passed again, and the table still checks every handle so a stale one is an error, not a crash.
#pragma once

#include <napi.h>
#include <torch/torch.h>

#include <string>
#include <vector>

namespace rlhf {

// ---- the handle table ----------------------------------------------------------------------------
int32_t put(at::Tensor t);
const at::Tensor& get(int32_t id);
at::Tensor take(int32_t id);  // removes the entry and returns the tensor
void release(int32_t id);
size_t liveCount();
// The handles an op reads, with their argument positions, so an error can name their shapes (rethrow).
// Handles, not tensor copies (a copy is two atomic refcount updates per argument), and a plain static,
// not thread_local (a TLS lookup per access in a shared library): the addon is only ever called from
// the JavaScript thread, which the handle table already assumes. Nothing is released during an op, so
// a noted handle still names the same tensor when rethrow reads it.
struct OpInputs {
  int32_t n = 0;
  int32_t id[8];
  uint8_t position[8];
};
extern OpInputs g_inputs;
inline void noteInput(int32_t id, size_t position) {
  if (g_inputs.n < 8) {
    g_inputs.id[g_inputs.n] = id;
    g_inputs.position[g_inputs.n] = static_cast<uint8_t>(position);
    ++g_inputs.n;
  }
}

// ---- dtypes: the codes are mirrored in src/tensor/native.ts (DTYPE_CODES) -------------------------
at::ScalarType dtypeFromCode(int32_t code);
int32_t codeFromDtype(at::ScalarType t);

// ---- argument readers ----------------------------------------------------------------------------
inline int32_t argInt(const Napi::CallbackInfo& info, size_t i) {
  return info[i].As<Napi::Number>().Int32Value();
}
inline int64_t argI64(const Napi::CallbackInfo& info, size_t i) {
  return info[i].As<Napi::Number>().Int64Value();
}
inline double argF64(const Napi::CallbackInfo& info, size_t i) {
  return info[i].As<Napi::Number>().DoubleValue();
}
inline bool argBool(const Napi::CallbackInfo& info, size_t i) { return info[i].ToBoolean().Value(); }
// Reads a tensor argument and notes it (with its position, since C++ evaluates call arguments in any
// order) so an error message can list the op's inputs.
inline const at::Tensor& argT(const Napi::CallbackInfo& info, size_t i) {
  int32_t id = argInt(info, i);
  const at::Tensor& t = get(id);
  noteInput(id, i);
  return t;
}
// A handle of -1 means "absent" (an optional tensor argument).
c10::optional<at::Tensor> argOptT(const Napi::CallbackInfo& info, size_t i);
std::vector<int64_t> argI64s(const Napi::CallbackInfo& info, size_t i);
std::vector<at::Tensor> argTs(const Napi::CallbackInfo& info, size_t i);
std::string argStr(const Napi::CallbackInfo& info, size_t i);
// JS numbers carry no int/float distinction: an integral value becomes an integer Scalar (so
// `intTensor + 2` stays integral, as in Python), anything else a double.
at::Scalar argScalar(const Napi::CallbackInfo& info, size_t i);
c10::Device argDevice(const Napi::CallbackInfo& info, size_t i);
c10::Device checkedDevice(const std::string& name);

inline Napi::Value ret(const Napi::CallbackInfo& info, at::Tensor t) {
  return Napi::Number::New(info.Env(), put(std::move(t)));
}
Napi::Value retMany(const Napi::CallbackInfo& info, const std::vector<at::Tensor>& ts);

// ---- the error guard -----------------------------------------------------------------------------
// Every exported function runs inside `guard`: libtorch's c10::Error and any std::exception become a
// JavaScript Error naming the op and the shapes and dtypes of the tensors it read.
[[noreturn]] void rethrow(Napi::Env env, const char* op);

template <typename F>
Napi::Value guard(const Napi::CallbackInfo& info, const char* op, F&& f) {
  g_inputs.n = 0;
  try {
    return f();
  } catch (const Napi::Error&) {
    throw;
  } catch (...) {
    rethrow(info.Env(), op);
  }
}

std::string describe(const at::Tensor& t);

// ---- threads (runtime.cpp) ------------------------------------------------------------------------------
// OpenBLAS's pool, found with dlsym (the BLAS is whatever libtorch loaded): −1 / nothing where it is not
// OpenBLAS.
int blasThreads();
void setBlasThreads(int n);

// ---- registration, one function per area file ------------------------------------------------------
using Exports = Napi::Object;
void registerTensor(Napi::Env env, Exports exports);
void registerOps(Napi::Env env, Exports exports);
void registerAutograd(Napi::Env env, Exports exports);
void registerOptim(Napi::Env env, Exports exports);
void registerRuntime(Napi::Env env, Exports exports);
void registerKernels(Napi::Env env, Exports exports);
void registerDecode(Napi::Env env, Exports exports);

#define RLHF_EXPORT(name, fn) exports.Set(name, Napi::Function::New(env, fn, name))

}  // namespace rlhf
