// The handle table, argument plumbing, creation, read-back, metadata and random generators.
#include <ATen/CPUGeneratorImpl.h>

#include <algorithm>
#include <cstring>

#include "common.h"

namespace rlhf {

// ---- the handle table ----------------------------------------------------------------------------
static std::vector<at::Tensor> g_table;
static std::vector<int32_t> g_free;
static size_t g_live = 0;
OpInputs g_inputs;

int32_t put(at::Tensor t) {
  int32_t id;
  if (!g_free.empty()) {
    id = g_free.back();
    g_free.pop_back();
    g_table[id] = std::move(t);
  } else {
    id = static_cast<int32_t>(g_table.size());
    g_table.push_back(std::move(t));
  }
  ++g_live;
  return id;
}

const at::Tensor& get(int32_t id) {
  if (id < 0 || static_cast<size_t>(id) >= g_table.size() || !g_table[id].defined())
    throw std::invalid_argument("tensor handle " + std::to_string(id) + " is not live (disposed?)");
  return g_table[id];
}

void release(int32_t id) {
  if (id < 0 || static_cast<size_t>(id) >= g_table.size() || !g_table[id].defined())
    throw std::invalid_argument("free of tensor handle " + std::to_string(id) + " that is not live");
  g_table[id].reset();
  g_free.push_back(id);
  --g_live;
}

at::Tensor take(int32_t id) {
  at::Tensor t = get(id);
  release(id);
  return t;
}

size_t liveCount() { return g_live; }

// ---- dtypes ----------------------------------------------------------------------------------------
static const at::ScalarType kDtypes[] = {
    at::kFloat, at::kDouble, at::kBFloat16, at::kHalf, at::kLong,
    at::kInt,   at::kShort,  at::kChar,     at::kByte, at::kBool,
};
constexpr int32_t kNumDtypes = sizeof(kDtypes) / sizeof(kDtypes[0]);

at::ScalarType dtypeFromCode(int32_t code) {
  if (code < 0 || code >= kNumDtypes) throw std::invalid_argument("unknown dtype code " + std::to_string(code));
  return kDtypes[code];
}

int32_t codeFromDtype(at::ScalarType t) {
  for (int32_t i = 0; i < kNumDtypes; ++i)
    if (kDtypes[i] == t) return i;
  throw std::invalid_argument(std::string("dtype ") + c10::toString(t) + " has no rlhf-ts equivalent");
}

// ---- argument readers ----------------------------------------------------------------------------
c10::optional<at::Tensor> argOptT(const Napi::CallbackInfo& info, size_t i) {
  int32_t id = argInt(info, i);
  if (id < 0) return c10::nullopt;
  const at::Tensor& t = get(id);
  noteInput(id, i);
  return t;
}

std::vector<int64_t> argI64s(const Napi::CallbackInfo& info, size_t i) {
  Napi::Array a = info[i].As<Napi::Array>();
  uint32_t n = a.Length();
  std::vector<int64_t> out(n);
  for (uint32_t k = 0; k < n; ++k) out[k] = a.Get(k).As<Napi::Number>().Int64Value();
  return out;
}

std::vector<at::Tensor> argTs(const Napi::CallbackInfo& info, size_t i) {
  Napi::Array a = info[i].As<Napi::Array>();
  uint32_t n = a.Length();
  std::vector<at::Tensor> out;
  out.reserve(n);
  for (uint32_t k = 0; k < n; ++k) {
    int32_t id = a.Get(k).As<Napi::Number>().Int32Value();
    out.push_back(get(id));
    noteInput(id, i);
  }
  return out;
}

std::string argStr(const Napi::CallbackInfo& info, size_t i) { return info[i].As<Napi::String>().Utf8Value(); }

at::Scalar argScalar(const Napi::CallbackInfo& info, size_t i) {
  double v = argF64(info, i);
  if (std::isfinite(v) && std::trunc(v) == v && std::fabs(v) <= 9007199254740992.0 && !(v == 0 && std::signbit(v)))
    return at::Scalar(static_cast<int64_t>(v));
  return at::Scalar(v);
}

// A CUDA device this process can use, else a one-line error: libtorch's own ("Found no NVIDIA driver…",
// "Could not run 'aten::empty.memory_format' with arguments from the 'CUDA' backend…" plus a page of
// dispatch keys) names neither the cause nor the fix.
c10::Device checkedDevice(const std::string& name) {
  c10::Device d(name);
  if (!d.is_cuda()) return d;
#ifndef RLHF_WITH_CUDA
  throw std::invalid_argument("no CUDA device: this rlhf-ts addon is built without CUDA (scripts/cuda-build.sh builds one against PyTorch's CUDA wheel)");
#else
  int64_t n = static_cast<int64_t>(torch::cuda::device_count());
  if (n == 0) throw std::invalid_argument("no CUDA device: the addon is built with CUDA but the driver reports no GPU");
  if (d.has_index() && d.index() >= n)
    throw std::invalid_argument("no CUDA device " + name + ": " + std::to_string(n) + " visible (cuda:0 to cuda:" + std::to_string(n - 1) + ")");
  return d;
#endif
}

c10::Device argDevice(const Napi::CallbackInfo& info, size_t i) { return checkedDevice(argStr(info, i)); }

Napi::Value retMany(const Napi::CallbackInfo& info, const std::vector<at::Tensor>& ts) {
  Napi::Array out = Napi::Array::New(info.Env(), ts.size());
  for (uint32_t k = 0; k < ts.size(); ++k) out.Set(k, Napi::Number::New(info.Env(), put(ts[k])));
  return out;
}

// ---- errors ----------------------------------------------------------------------------------------
static const char* kDtypeNames[] = {"float32", "float64", "bfloat16", "float16", "int64",
                                    "int32",   "int16",   "int8",     "uint8",   "bool"};

std::string describe(const at::Tensor& t) {
  int32_t code = -1;
  for (int32_t i = 0; i < kNumDtypes; ++i)
    if (kDtypes[i] == t.scalar_type()) code = i;
  std::string s = code >= 0 ? kDtypeNames[code] : c10::toString(t.scalar_type());
  s += "[";
  for (int64_t d = 0; d < t.dim(); ++d) s += (d ? "," : "") + std::to_string(t.size(d));
  s += "]";
  if (!t.device().is_cpu()) s += "@" + t.device().str();
  return s;
}

void rethrow(Napi::Env env, const char* op) {
  std::string msg;
  try {
    throw;
  } catch (const c10::Error& e) {
    msg = e.what_without_backtrace();
  } catch (const std::exception& e) {
    msg = e.what();
  } catch (...) {
    msg = "unknown native error";
  }
  // libtorch messages can carry a multi-line C++ context; the first paragraph is the useful part.
  std::vector<std::pair<uint8_t, int32_t>> noted;
  for (int32_t k = 0; k < g_inputs.n; ++k) noted.emplace_back(g_inputs.position[k], g_inputs.id[k]);
  g_inputs.n = 0;
  std::stable_sort(noted.begin(), noted.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  std::string inputs;
  for (size_t k = 0; k < noted.size(); ++k) {
    int32_t id = noted[k].second;
    bool live = static_cast<size_t>(id) < g_table.size() && g_table[id].defined();
    inputs += (k ? ", " : "") + (live ? describe(g_table[id]) : std::string("<freed>"));
  }
  throw Napi::Error::New(env, std::string(op) + "(" + inputs + "): " + msg);
}

// ---- creation ----------------------------------------------------------------------------------------
static at::TensorOptions opts(const Napi::CallbackInfo& info, size_t dtypeArg, size_t deviceArg) {
  return at::TensorOptions().dtype(dtypeFromCode(argInt(info, dtypeArg))).device(argDevice(info, deviceArg));
}

// fromBuffer(bytes: Uint8Array, dtype, shape): always copies, so the JS buffer may be reused at once.
static Napi::Value fromBuffer(const Napi::CallbackInfo& info) {
  return guard(info, "fromBuffer", [&] {
    Napi::TypedArray ta = info[0].As<Napi::TypedArray>();
    auto shape = argI64s(info, 2);
    at::Tensor t = at::empty(shape, at::TensorOptions().dtype(dtypeFromCode(argInt(info, 1))));
    size_t want = t.numel() * t.element_size();
    if (ta.ByteLength() != want)
      throw std::invalid_argument("buffer holds " + std::to_string(ta.ByteLength()) + " bytes, shape needs " +
                                  std::to_string(want));
    uint8_t* src = static_cast<uint8_t*>(ta.ArrayBuffer().Data()) + ta.ByteOffset();
    if (want) std::memcpy(t.data_ptr(), src, want);
    return ret(info, t);
  });
}

// toBuffer(h): a fresh ArrayBuffer with the tensor's contiguous CPU bytes.
static Napi::Value toBuffer(const Napi::CallbackInfo& info) {
  return guard(info, "toBuffer", [&] {
    at::Tensor t = argT(info, 0).detach().to(at::kCPU).contiguous();
    size_t n = t.numel() * t.element_size();
    Napi::ArrayBuffer ab = Napi::ArrayBuffer::New(info.Env(), n);
    if (n) std::memcpy(ab.Data(), t.data_ptr(), n);
    return ab;
  });
}

static Napi::Value item(const Napi::CallbackInfo& info) {
  return guard(info, "item", [&]() -> Napi::Value {
    const at::Tensor& t = argT(info, 0);
    if (t.numel() != 1)
      throw std::invalid_argument("item() needs a tensor with one element, got " + std::to_string(t.numel()));
    return Napi::Number::New(info.Env(), t.item().toDouble());
  });
}

// extrema(h) → [min, max] as numbers, in one call (input checks read both of every batch's ids).
static Napi::Value extrema(const Napi::CallbackInfo& info) {
  return guard(info, "extrema", [&]() -> Napi::Value {
    const at::Tensor& t = argT(info, 0);
    if (t.numel() == 0) throw std::invalid_argument("extrema() of an empty tensor");
    auto [lo, hi] = at::aminmax(t);
    Napi::Array out = Napi::Array::New(info.Env(), 2);
    out.Set(0u, Napi::Number::New(info.Env(), lo.item().toDouble()));
    out.Set(1u, Napi::Number::New(info.Env(), hi.item().toDouble()));
    return out;
  });
}

static Napi::Value full(const Napi::CallbackInfo& info) {
  return guard(info, "full", [&] { return ret(info, at::full(argI64s(info, 0), argScalar(info, 1), opts(info, 2, 3))); });
}

static Napi::Value zeros(const Napi::CallbackInfo& info) {
  return guard(info, "zeros", [&] { return ret(info, at::zeros(argI64s(info, 0), opts(info, 1, 2))); });
}
static Napi::Value empty(const Napi::CallbackInfo& info) {
  return guard(info, "empty", [&] { return ret(info, at::empty(argI64s(info, 0), opts(info, 1, 2))); });
}

static Napi::Value arange(const Napi::CallbackInfo& info) {
  return guard(info, "arange", [&] {
    return ret(info, at::arange(argScalar(info, 0), argScalar(info, 1), argScalar(info, 2), opts(info, 3, 4)));
  });
}

static Napi::Value linspace(const Napi::CallbackInfo& info) {
  return guard(info, "linspace", [&] {
    return ret(info, at::linspace(argScalar(info, 0), argScalar(info, 1), argI64(info, 2), opts(info, 3, 4)));
  });
}

static Napi::Value eye(const Napi::CallbackInfo& info) {
  return guard(info, "eye", [&] { return ret(info, at::eye(argI64(info, 0), argI64(info, 1), opts(info, 2, 3))); });
}

// ---- random generators -------------------------------------------------------------------------------
// Generator ids index this table; -1 means libtorch's default generator (seeded by manualSeed).
static std::vector<at::Generator> g_generators;

static c10::optional<at::Generator> argGen(const Napi::CallbackInfo& info, size_t i) {
  int32_t id = argInt(info, i);
  if (id < 0) return c10::nullopt;
  if (static_cast<size_t>(id) >= g_generators.size() || !g_generators[id].defined())
    throw std::invalid_argument("generator " + std::to_string(id) + " does not exist");
  return g_generators[id];
}

static Napi::Value generatorNew(const Napi::CallbackInfo& info) {
  return guard(info, "generatorNew", [&] {
    c10::Device dev = argDevice(info, 1);
    at::Generator g;
    if (dev.is_cpu())
      g = at::make_generator<at::CPUGeneratorImpl>(static_cast<uint64_t>(argI64(info, 0)));
    else
      throw std::invalid_argument("per-stream generators on " + dev.str() + " are not supported yet; use cpu");
    g_generators.push_back(g);
    return Napi::Number::New(info.Env(), static_cast<double>(g_generators.size() - 1));
  });
}

static Napi::Value generatorFree(const Napi::CallbackInfo& info) {
  return guard(info, "generatorFree", [&] {
    argGen(info, 0);
    g_generators[argInt(info, 0)] = at::Generator();
    return info.Env().Undefined();
  });
}

// The generator's full state as a uint8 tensor, so a checkpoint can resume the exact random stream.
static Napi::Value generatorGetState(const Napi::CallbackInfo& info) {
  return guard(info, "generatorGetState", [&] {
    auto g = argGen(info, 0);
    at::Generator gen = g ? *g : at::detail::getDefaultCPUGenerator();
    std::lock_guard<std::mutex> lock(gen.mutex());
    return ret(info, gen.get_state());
  });
}

static Napi::Value generatorSetState(const Napi::CallbackInfo& info) {
  return guard(info, "generatorSetState", [&] {
    auto g = argGen(info, 0);
    at::Generator gen = g ? *g : at::detail::getDefaultCPUGenerator();
    std::lock_guard<std::mutex> lock(gen.mutex());
    gen.set_state(argT(info, 1));
    return info.Env().Undefined();
  });
}

static Napi::Value manualSeed(const Napi::CallbackInfo& info) {
  return guard(info, "manualSeed", [&] {
    torch::manual_seed(static_cast<uint64_t>(argI64(info, 0)));
    return info.Env().Undefined();
  });
}

static Napi::Value rand(const Napi::CallbackInfo& info) {
  return guard(info, "rand", [&] { return ret(info, at::rand(argI64s(info, 0), argGen(info, 3), opts(info, 1, 2))); });
}

static Napi::Value randn(const Napi::CallbackInfo& info) {
  return guard(info, "randn", [&] { return ret(info, at::randn(argI64s(info, 0), argGen(info, 3), opts(info, 1, 2))); });
}

static Napi::Value randint(const Napi::CallbackInfo& info) {
  return guard(info, "randint", [&] {
    return ret(info, at::randint(argI64(info, 0), argI64(info, 1), argI64s(info, 2), argGen(info, 5), opts(info, 3, 4)));
  });
}

static Napi::Value multinomial(const Napi::CallbackInfo& info) {
  return guard(info, "multinomial", [&] {
    return ret(info, at::multinomial(argT(info, 0), argI64(info, 1), argBool(info, 2), argGen(info, 3)));
  });
}

// In-place initialisers for parameters; they run outside autograd.
static Napi::Value uniform_(const Napi::CallbackInfo& info) {
  return guard(info, "uniform_", [&] {
    at::NoGradGuard ng;
    at::Tensor t = argT(info, 0);
    t.uniform_(argF64(info, 1), argF64(info, 2), argGen(info, 3));
    return info.Env().Undefined();
  });
}

static Napi::Value normal_(const Napi::CallbackInfo& info) {
  return guard(info, "normal_", [&] {
    at::NoGradGuard ng;
    at::Tensor t = argT(info, 0);
    t.normal_(argF64(info, 1), argF64(info, 2), argGen(info, 3));
    return info.Env().Undefined();
  });
}

// ---- metadata and lifetime -------------------------------------------------------------------------
// meta(h) = [dtypeCode, deviceString, ...shape]: one call fills the JS-side cache.
static Napi::Value meta(const Napi::CallbackInfo& info) {
  return guard(info, "meta", [&] {
    const at::Tensor& t = argT(info, 0);
    Napi::Env env = info.Env();
    Napi::Array out = Napi::Array::New(env, t.dim() + 2);
    out.Set(0u, Napi::Number::New(env, codeFromDtype(t.scalar_type())));
    out.Set(1u, Napi::String::New(env, t.device().str()));
    for (int64_t d = 0; d < t.dim(); ++d) out.Set(static_cast<uint32_t>(d + 2), Napi::Number::New(env, t.size(d)));
    return out;
  });
}

static Napi::Value strides(const Napi::CallbackInfo& info) {
  return guard(info, "strides", [&] {
    const at::Tensor& t = argT(info, 0);
    Napi::Array out = Napi::Array::New(info.Env(), t.dim());
    for (int64_t d = 0; d < t.dim(); ++d) out.Set(static_cast<uint32_t>(d), Napi::Number::New(info.Env(), t.stride(d)));
    return out;
  });
}

static Napi::Value free_(const Napi::CallbackInfo& info) {
  return guard(info, "free", [&] {
    release(argInt(info, 0));
    return info.Env().Undefined();
  });
}

// freeMany(handles: Int32Array | number[]): one call for a scope's worth of tensors (a decode step frees
// hundreds). An Int32Array is read in place; an Array costs a property lookup per element (~600 instructions,
// as much as the rest of a free).
static Napi::Value freeMany(const Napi::CallbackInfo& info) {
  return guard(info, "freeMany", [&] {
    if (info[0].IsTypedArray() && info[0].As<Napi::TypedArray>().TypedArrayType() == napi_int32_array) {
      Napi::Int32Array a = info[0].As<Napi::Int32Array>();
      const int32_t* ids = a.Data();
      for (size_t k = 0, n = a.ElementLength(); k < n; ++k) release(ids[k]);
    } else {
      Napi::Array a = info[0].As<Napi::Array>();
      for (uint32_t k = 0; k < a.Length(); ++k) release(a.Get(k).As<Napi::Number>().Int32Value());
    }
    return info.Env().Undefined();
  });
}

static Napi::Value liveTensors(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), static_cast<double>(liveCount()));
}

void registerTensor(Napi::Env env, Exports exports) {
  RLHF_EXPORT("fromBuffer", fromBuffer);
  RLHF_EXPORT("toBuffer", toBuffer);
  RLHF_EXPORT("item", item);
  RLHF_EXPORT("extrema", extrema);
  RLHF_EXPORT("full", full);
  RLHF_EXPORT("zeros", zeros);
  RLHF_EXPORT("empty", empty);
  RLHF_EXPORT("arange", arange);
  RLHF_EXPORT("linspace", linspace);
  RLHF_EXPORT("eye", eye);
  RLHF_EXPORT("generatorNew", generatorNew);
  RLHF_EXPORT("generatorFree", generatorFree);
  RLHF_EXPORT("generatorGetState", generatorGetState);
  RLHF_EXPORT("generatorSetState", generatorSetState);
  RLHF_EXPORT("manualSeed", manualSeed);
  RLHF_EXPORT("rand", rand);
  RLHF_EXPORT("randn", randn);
  RLHF_EXPORT("randint", randint);
  RLHF_EXPORT("multinomial", multinomial);
  RLHF_EXPORT("uniform_", uniform_);
  RLHF_EXPORT("normal_", normal_);
  RLHF_EXPORT("meta", meta);
  RLHF_EXPORT("strides", strides);
  RLHF_EXPORT("free", free_);
  RLHF_EXPORT("freeMany", freeMany);
  RLHF_EXPORT("liveTensors", liveTensors);
}

}  // namespace rlhf
