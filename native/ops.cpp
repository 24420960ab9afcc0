// Tensor math. Families of same-signature ops share one entry point with an op code; the code tables
// are exported by name (unaryOps, binaryOps, reduceOps) and the TypeScript side looks codes up by name,
// so the two sides cannot drift apart.
#include "common.h"
#include "compat.h"

#include <limits>

namespace rlhf {

using Unary = at::Tensor (*)(const at::Tensor&);
using Binary = at::Tensor (*)(const at::Tensor&, const at::Tensor&);

struct UnaryOp { const char* name; Unary fn; };
struct BinaryOp { const char* name; Binary fn; };

static const UnaryOp kUnary[] = {
    {"neg", [](const at::Tensor& a) { return at::neg(a); }},
    {"exp", [](const at::Tensor& a) { return at::exp(a); }},
    {"log", [](const at::Tensor& a) { return at::log(a); }},
    {"log1p", [](const at::Tensor& a) { return at::log1p(a); }},
    {"sqrt", [](const at::Tensor& a) { return at::sqrt(a); }},
    {"rsqrt", [](const at::Tensor& a) { return at::rsqrt(a); }},
    {"abs", [](const at::Tensor& a) { return at::abs(a); }},
    {"sign", [](const at::Tensor& a) { return at::sign(a); }},
    {"tanh", [](const at::Tensor& a) { return at::tanh(a); }},
    {"sigmoid", [](const at::Tensor& a) { return at::sigmoid(a); }},
    {"relu", [](const at::Tensor& a) { return at::relu(a); }},
    {"gelu", [](const at::Tensor& a) { return at::gelu(a, "none"); }},
    // GPT-2's gelu_new is this tanh approximation.
    {"geluTanh", [](const at::Tensor& a) { return at::gelu(a, "tanh"); }},
    {"silu", [](const at::Tensor& a) { return at::silu(a); }},
    {"softplus", [](const at::Tensor& a) { return at::softplus(a); }},
    {"logSigmoid", [](const at::Tensor& a) { return at::log_sigmoid(a); }},
    {"logicalNot", [](const at::Tensor& a) { return at::logical_not(a); }},
    {"floor", [](const at::Tensor& a) { return at::floor(a); }},
    {"ceil", [](const at::Tensor& a) { return at::ceil(a); }},
    {"round", [](const at::Tensor& a) { return at::round(a); }},
    {"sin", [](const at::Tensor& a) { return at::sin(a); }},
    {"cos", [](const at::Tensor& a) { return at::cos(a); }},
    {"erf", [](const at::Tensor& a) { return at::erf(a); }},
    {"reciprocal", [](const at::Tensor& a) { return at::reciprocal(a); }},
    {"square", [](const at::Tensor& a) { return at::square(a); }},
    {"isnan", [](const at::Tensor& a) { return at::isnan(a); }},
    {"isfinite", [](const at::Tensor& a) { return at::isfinite(a); }},
    {"contiguous", [](const at::Tensor& a) { return a.contiguous(); }},
    {"clone", [](const at::Tensor& a) { return a.clone(); }},
    {"detach", [](const at::Tensor& a) { return a.detach(); }},
    {"flattenAll", [](const at::Tensor& a) { return a.flatten(); }},
};

// Integer floor division and remainder of the dtype's minimum by -1 overflow, and x86 traps that with
// SIGFPE, killing the process: libtorch 1.13 does not check (found by test/native/fuzz.test.ts). Only
// int32 and int64 trap (narrower types are divided as int after C's promotions), so only they pay for
// this extra pass over the inputs.
static void checkIntDivision(const at::Tensor& a, const at::Tensor& b) {
  at::ScalarType rt = at::result_type(a, b);
  if (rt != at::kInt && rt != at::kLong) return;
  at::Scalar lo = rt == at::kInt ? at::Scalar(int64_t{std::numeric_limits<int32_t>::min()})
                                 : at::Scalar(std::numeric_limits<int64_t>::min());
  if ((a.to(rt).eq(lo) & b.to(rt).eq(-1)).any().item<bool>())
    throw std::invalid_argument(std::string("integer overflow: the ") + (rt == at::kInt ? "int32" : "int64") +
                                " minimum divided by -1 is not representable");
}

static const BinaryOp kBinary[] = {
    {"add", [](const at::Tensor& a, const at::Tensor& b) { return at::add(a, b); }},
    {"sub", [](const at::Tensor& a, const at::Tensor& b) { return at::sub(a, b); }},
    {"mul", [](const at::Tensor& a, const at::Tensor& b) { return at::mul(a, b); }},
    {"div", [](const at::Tensor& a, const at::Tensor& b) { return at::div(a, b); }},
    {"pow", [](const at::Tensor& a, const at::Tensor& b) { return at::pow(a, b); }},
    {"remainder", [](const at::Tensor& a, const at::Tensor& b) { checkIntDivision(a, b); return at::remainder(a, b); }},
    {"floorDivide", [](const at::Tensor& a, const at::Tensor& b) { checkIntDivision(a, b); return at::div(a, b, "floor"); }},
    {"maximum", [](const at::Tensor& a, const at::Tensor& b) { return at::maximum(a, b); }},
    {"minimum", [](const at::Tensor& a, const at::Tensor& b) { return at::minimum(a, b); }},
    {"eq", [](const at::Tensor& a, const at::Tensor& b) { return at::eq(a, b); }},
    {"ne", [](const at::Tensor& a, const at::Tensor& b) { return at::ne(a, b); }},
    {"lt", [](const at::Tensor& a, const at::Tensor& b) { return at::lt(a, b); }},
    {"le", [](const at::Tensor& a, const at::Tensor& b) { return at::le(a, b); }},
    {"gt", [](const at::Tensor& a, const at::Tensor& b) { return at::gt(a, b); }},
    {"ge", [](const at::Tensor& a, const at::Tensor& b) { return at::ge(a, b); }},
    {"logicalAnd", [](const at::Tensor& a, const at::Tensor& b) { return at::logical_and(a, b); }},
    {"logicalOr", [](const at::Tensor& a, const at::Tensor& b) { return at::logical_or(a, b); }},
    {"matmul", [](const at::Tensor& a, const at::Tensor& b) { return at::matmul(a, b); }},
    {"bmm", [](const at::Tensor& a, const at::Tensor& b) { return at::bmm(a, b); }},
};

constexpr int32_t kNumUnary = sizeof(kUnary) / sizeof(kUnary[0]);
constexpr int32_t kNumBinary = sizeof(kBinary) / sizeof(kBinary[0]);

// Unknown codes are a JS Error (thrown as Napi::Error, which the callback wrapper converts).
template <typename T, int32_t N>
static const T& opAt(const Napi::CallbackInfo& info, const T (&table)[N]) {
  int32_t code = argInt(info, 0);
  if (code < 0 || code >= N) throw Napi::Error::New(info.Env(), "unknown op code " + std::to_string(code));
  return table[code];
}

// A JS number as a 0-d "wrapped number" tensor: type promotion then treats it as a Python scalar does
// (float32 tensor * 2.5 stays float32), and reversed ops (2 - t, 2 / t) use the same kernels.
static at::Tensor wrapScalar(const at::Scalar& s) {
  at::Tensor t = c10::scalar_to_tensor(s);
  t.unsafeGetTensorImpl()->set_wrapped_number(true);
  return t;
}

static Napi::Value unary(const Napi::CallbackInfo& info) {
  const UnaryOp& op = opAt(info, kUnary);
  return guard(info, op.name, [&] { return ret(info, op.fn(argT(info, 1))); });
}

static Napi::Value binary(const Napi::CallbackInfo& info) {
  const BinaryOp& op = opAt(info, kBinary);
  return guard(info, op.name, [&] { return ret(info, op.fn(argT(info, 1), argT(info, 2))); });
}

// binaryScalar(code, a, scalar, reversed): a ⊙ s, or s ⊙ a when reversed.
static Napi::Value binaryScalar(const Napi::CallbackInfo& info) {
  const BinaryOp& op = opAt(info, kBinary);
  return guard(info, op.name, [&] {
    const at::Tensor& a = argT(info, 1);
    at::Tensor s = wrapScalar(argScalar(info, 2));
    if (!a.device().is_cpu()) s = s.to(a.device());
    return ret(info, argBool(info, 3) ? op.fn(s, a) : op.fn(a, s));
  });
}

// ---- reductions ----------------------------------------------------------------------------------
// dims: an array, or null for "all dimensions".
static c10::optional<std::vector<int64_t>> optDims(const Napi::CallbackInfo& info, size_t i) {
  if (info[i].IsNull() || info[i].IsUndefined()) return c10::nullopt;
  return argI64s(info, i);
}

static std::vector<int64_t> allDims(const at::Tensor& t) {
  std::vector<int64_t> d(t.dim());
  for (int64_t k = 0; k < t.dim(); ++k) d[k] = k;
  return d;
}

static const char* kReduceNames[] = {"sum", "mean", "logsumexp", "amax", "amin", "prod", "all", "any"};

static Napi::Value reduce(const Napi::CallbackInfo& info) {
  int32_t code = argInt(info, 0);
  if (code < 0 || code >= 8) throw Napi::Error::New(info.Env(), "unknown reduction code");
  return guard(info, kReduceNames[code], [&] {
    const at::Tensor& t = argT(info, 1);
    auto dims = optDims(info, 2);
    bool keep = argBool(info, 3);
    std::vector<int64_t> d = dims ? *dims : allDims(t);
    switch (code) {
      case 0: return ret(info, dims ? at::sum(t, d, keep) : at::sum(t));
      case 1: return ret(info, dims ? at::mean(t, d, keep) : at::mean(t));
      case 2: return ret(info, at::logsumexp(t, d, keep));
      case 3: return ret(info, at::amax(t, d, keep));
      case 4: return ret(info, at::amin(t, d, keep));
      case 5: {
        if (!dims) return ret(info, at::prod(t));
        if (d.size() != 1) throw std::invalid_argument("prod reduces one dimension at a time");
        return ret(info, at::prod(t, d[0], keep));
      }
      case 6:
      case 7: {
        at::Tensor r = t;
        if (!dims) return ret(info, code == 6 ? at::all(t) : at::any(t));
        // Reduce the highest dims first so the remaining indices stay valid.
        std::vector<int64_t> sorted = d;
        for (auto& x : sorted) x = c10::maybe_wrap_dim(x, t.dim());
        std::sort(sorted.rbegin(), sorted.rend());
        for (int64_t x : sorted) r = code == 6 ? at::all(r, x, keep) : at::any(r, x, keep);
        return ret(info, r);
      }
    }
    throw std::logic_error("unreachable");
  });
}

// varStd(isStd, h, dims|null, correction, keepdim)
static Napi::Value varStd(const Napi::CallbackInfo& info) {
  bool isStd = argBool(info, 0);
  return guard(info, isStd ? "std" : "var", [&] {
    const at::Tensor& t = argT(info, 1);
    auto dims = optDims(info, 2);
    c10::optional<int64_t> corr = argI64(info, 3);
    at::OptionalIntArrayRef d = dims ? at::OptionalIntArrayRef(*dims) : c10::nullopt;
    bool keep = argBool(info, 4);
    return ret(info, isStd ? at::std(t, d, corr, keep) : at::var(t, d, corr, keep));
  });
}

// maxMin(isMin, h, dim, keepdim) -> [values, indices]
static Napi::Value maxMin(const Napi::CallbackInfo& info) {
  bool isMin = argBool(info, 0);
  return guard(info, isMin ? "min" : "max", [&] {
    auto r = isMin ? at::min(argT(info, 1), argI64(info, 2), argBool(info, 3))
                   : at::max(argT(info, 1), argI64(info, 2), argBool(info, 3));
    return retMany(info, {std::get<0>(r), std::get<1>(r)});
  });
}

// argMaxMin(isMin, h, dim|null, keepdim)
static Napi::Value argMaxMin(const Napi::CallbackInfo& info) {
  bool isMin = argBool(info, 0);
  return guard(info, isMin ? "argmin" : "argmax", [&] {
    c10::optional<int64_t> dim;
    if (!info[2].IsNull() && !info[2].IsUndefined()) dim = argI64(info, 2);
    const at::Tensor& t = argT(info, 1);
    return ret(info, isMin ? at::argmin(t, dim, argBool(info, 3)) : at::argmax(t, dim, argBool(info, 3)));
  });
}

static Napi::Value cumsum(const Napi::CallbackInfo& info) {
  return guard(info, "cumsum", [&] { return ret(info, at::cumsum(argT(info, 0), argI64(info, 1))); });
}

static Napi::Value softmax(const Napi::CallbackInfo& info) {
  bool isLog = argBool(info, 0);
  return guard(info, isLog ? "logSoftmax" : "softmax", [&] {
    const at::Tensor& t = argT(info, 1);
    int64_t dim = argI64(info, 2);
    return ret(info, isLog ? at::log_softmax(t, dim) : at::softmax(t, dim));
  });
}

// topk(h, k, dim, largest, sorted) -> [values, indices]
static Napi::Value topk(const Napi::CallbackInfo& info) {
  return guard(info, "topk", [&] {
    auto r = at::topk(argT(info, 0), argI64(info, 1), argI64(info, 2), argBool(info, 3), argBool(info, 4));
    return retMany(info, {std::get<0>(r), std::get<1>(r)});
  });
}

// sort(h, dim, descending, stable) -> [values, indices]
static Napi::Value sort(const Napi::CallbackInfo& info) {
  return guard(info, "sort", [&] {
    auto r = at::sort(argT(info, 0), argBool(info, 3), argI64(info, 1), argBool(info, 2));
    return retMany(info, {std::get<0>(r), std::get<1>(r)});
  });
}

static Napi::Value einsum(const Napi::CallbackInfo& info) {
  return guard(info, "einsum", [&] { return ret(info, at::einsum(argStr(info, 0), argTs(info, 1))); });
}

static Napi::Value clamp(const Napi::CallbackInfo& info) {
  return guard(info, "clamp", [&] {
    c10::optional<at::Scalar> lo, hi;
    if (!info[1].IsNull()) lo = argScalar(info, 1);
    if (!info[2].IsNull()) hi = argScalar(info, 2);
    return ret(info, at::clamp(argT(info, 0), lo, hi));
  });
}

static Napi::Value where(const Napi::CallbackInfo& info) {
  return guard(info, "where", [&] { return ret(info, at::where(argT(info, 0), argT(info, 1), argT(info, 2))); });
}

static Napi::Value maskedFill(const Napi::CallbackInfo& info) {
  return guard(info, "maskedFill", [&] { return ret(info, at::masked_fill(argT(info, 0), argT(info, 1), argScalar(info, 2))); });
}

// to(h, dtypeCode|-1, device|""): a no-op returns a new handle sharing storage.
static Napi::Value to(const Napi::CallbackInfo& info) {
  return guard(info, "to", [&] {
    const at::Tensor& t = argT(info, 0);
    int32_t code = argInt(info, 1);
    std::string dev = argStr(info, 2);
    at::ScalarType dt = code < 0 ? t.scalar_type() : dtypeFromCode(code);
    c10::Device device = dev.empty() ? t.device() : checkedDevice(dev);
    return ret(info, t.to(device, dt));
  });
}

// ---- shapes and views ----------------------------------------------------------------------------
static Napi::Value reshape(const Napi::CallbackInfo& info) {
  return guard(info, "reshape", [&] { return ret(info, at::reshape(argT(info, 0), argI64s(info, 1))); });
}
static Napi::Value view(const Napi::CallbackInfo& info) {
  return guard(info, "view", [&] { return ret(info, argT(info, 0).view(argI64s(info, 1))); });
}
static Napi::Value flatten(const Napi::CallbackInfo& info) {
  return guard(info, "flatten", [&] { return ret(info, at::flatten(argT(info, 0), argI64(info, 1), argI64(info, 2))); });
}
static Napi::Value squeeze(const Napi::CallbackInfo& info) {
  return guard(info, "squeeze", [&] {
    const at::Tensor& t = argT(info, 0);
    return ret(info, info[1].IsNull() ? at::squeeze(t) : at::squeeze(t, argI64(info, 1)));
  });
}
static Napi::Value unsqueeze(const Napi::CallbackInfo& info) {
  return guard(info, "unsqueeze", [&] { return ret(info, at::unsqueeze(argT(info, 0), argI64(info, 1))); });
}
static Napi::Value transpose(const Napi::CallbackInfo& info) {
  return guard(info, "transpose", [&] { return ret(info, at::transpose(argT(info, 0), argI64(info, 1), argI64(info, 2))); });
}
static Napi::Value permute(const Napi::CallbackInfo& info) {
  return guard(info, "permute", [&] { return ret(info, argT(info, 0).permute(argI64s(info, 1))); });
}
static Napi::Value expand(const Napi::CallbackInfo& info) {
  return guard(info, "expand", [&] { return ret(info, argT(info, 0).expand(argI64s(info, 1))); });
}
static Napi::Value repeat(const Napi::CallbackInfo& info) {
  return guard(info, "repeat", [&] { return ret(info, argT(info, 0).repeat(argI64s(info, 1))); });
}
static Napi::Value flip(const Napi::CallbackInfo& info) {
  return guard(info, "flip", [&] { return ret(info, at::flip(argT(info, 0), argI64s(info, 1))); });
}
// slice(h, dim, start, end, step): Python's t[start:end:step] along dim (clamped like Python).
static Napi::Value slice(const Napi::CallbackInfo& info) {
  return guard(info, "slice", [&] {
    return ret(info, at::slice(argT(info, 0), argI64(info, 1), argI64(info, 2), argI64(info, 3), argI64(info, 4)));
  });
}
static Napi::Value narrow(const Napi::CallbackInfo& info) {
  return guard(info, "narrow", [&] { return ret(info, at::narrow(argT(info, 0), argI64(info, 1), argI64(info, 2), argI64(info, 3))); });
}
static Napi::Value select(const Napi::CallbackInfo& info) {
  return guard(info, "select", [&] { return ret(info, at::select(argT(info, 0), argI64(info, 1), argI64(info, 2))); });
}
static Napi::Value indexSelect(const Napi::CallbackInfo& info) {
  return guard(info, "indexSelect", [&] {
    const at::Tensor& t = argT(info, 0);
    const at::Tensor& idx = argT(info, 2);
    // libtorch 1.13 writes past its result when a 0-d tensor is indexed by other than one index
    // (pytorch#88940, #90998; found by test/native/fuzz.test.ts); later versions reject it, as here.
    if (t.dim() == 0 && idx.numel() != 1)
      throw std::invalid_argument("a 0-d tensor takes exactly one index, got " + std::to_string(idx.numel()));
    return ret(info, at::index_select(t, argI64(info, 1), idx));
  });
}
static Napi::Value gather(const Napi::CallbackInfo& info) {
  return guard(info, "gather", [&] { return ret(info, at::gather(argT(info, 0), argI64(info, 1), argT(info, 2))); });
}
// scatter(h, dim, index, src, add): out-of-place scatter / scatter_add.
static Napi::Value scatter(const Napi::CallbackInfo& info) {
  bool add = argBool(info, 4);
  return guard(info, add ? "scatterAdd" : "scatter", [&] {
    const at::Tensor& t = argT(info, 0);
    int64_t dim = argI64(info, 1);
    const at::Tensor& idx = argT(info, 2);
    const at::Tensor& src = argT(info, 3);
    return ret(info, add ? at::scatter_add(t, dim, idx, src) : at::scatter(t, dim, idx, src));
  });
}
// index(h, [handle|-1 ...]): advanced indexing t[i0, i1, ...] with tensors; -1 is a full slice.
static Napi::Value index(const Napi::CallbackInfo& info) {
  return guard(info, "index", [&] {
    const at::Tensor& t = argT(info, 0);
    Napi::Array a = info[1].As<Napi::Array>();
    c10::List<c10::optional<at::Tensor>> idx;
    for (uint32_t k = 0; k < a.Length(); ++k) {
      int32_t h = a.Get(k).As<Napi::Number>().Int32Value();
      idx.push_back(h < 0 ? c10::optional<at::Tensor>() : c10::optional<at::Tensor>(get(h)));
    }
    return ret(info, at::index(t, idx));
  });
}
static Napi::Value cat(const Napi::CallbackInfo& info) {
  return guard(info, "cat", [&] { return ret(info, at::cat(argTs(info, 0), argI64(info, 1))); });
}
static Napi::Value stack(const Napi::CallbackInfo& info) {
  return guard(info, "stack", [&] { return ret(info, at::stack(argTs(info, 0), argI64(info, 1))); });
}
// split(h, sizes: number | number[], dim)
static Napi::Value split(const Napi::CallbackInfo& info) {
  return guard(info, "split", [&] {
    const at::Tensor& t = argT(info, 0);
    int64_t dim = argI64(info, 2);
    if (info[1].IsArray()) return retMany(info, at::split_with_sizes(t, argI64s(info, 1), dim));
    return retMany(info, at::split(t, argI64(info, 1), dim));
  });
}
static Napi::Value chunk(const Napi::CallbackInfo& info) {
  return guard(info, "chunk", [&] { return retMany(info, at::chunk(argT(info, 0), argI64(info, 1), argI64(info, 2))); });
}
static Napi::Value triangle(const Napi::CallbackInfo& info) {
  bool upper = argBool(info, 0);
  return guard(info, upper ? "triu" : "tril", [&] {
    return ret(info, upper ? at::triu(argT(info, 1), argI64(info, 2)) : at::tril(argT(info, 1), argI64(info, 2)));
  });
}

// ---- neural-network ops ------------------------------------------------------------------------------
static Napi::Value embedding(const Napi::CallbackInfo& info) {
  return guard(info, "embedding", [&] {
    const at::Tensor& w = argT(info, 0);
    const at::Tensor& ids = argT(info, 1);
    return ret(info, at::embedding(w, ids));
  });
}
static Napi::Value linear(const Napi::CallbackInfo& info) {
  return guard(info, "linear", [&] { return ret(info, at::linear(argT(info, 0), argT(info, 1), argOptT(info, 2))); });
}
// layerNorm(x, normalizedShape, weight|-1, bias|-1, eps)
static Napi::Value layerNorm(const Napi::CallbackInfo& info) {
  return guard(info, "layerNorm", [&] {
    return ret(info, at::layer_norm(argT(info, 0), argI64s(info, 1), argOptT(info, 2), argOptT(info, 3), argF64(info, 4)));
  });
}
static Napi::Value dropout(const Napi::CallbackInfo& info) {
  return guard(info, "dropout", [&] { return ret(info, at::dropout(argT(info, 0), argF64(info, 1), argBool(info, 2))); });
}
// crossEntropy(logits (N,C) or (N,C,...), target, ignoreIndex, reduction 0 none|1 mean|2 sum, labelSmoothing)
static Napi::Value crossEntropy(const Napi::CallbackInfo& info) {
  return guard(info, "crossEntropy", [&] {
    return ret(info, at::cross_entropy_loss(argT(info, 0), argT(info, 1), c10::nullopt, argI64(info, 3),
                                            argI64(info, 2), argF64(info, 4)));
  });
}
// sdpa(q, k, v, mask|-1, dropoutP, isCausal, scale|null): q,k,v (B, nh, T, hs).
static Napi::Value sdpa(const Napi::CallbackInfo& info) {
  return guard(info, "scaledDotProductAttention", [&] {
    c10::optional<double> scale;
    if (!info[6].IsNull() && !info[6].IsUndefined()) scale = argF64(info, 6);
    return ret(info, compat::scaledDotProductAttention(argT(info, 0), argT(info, 1), argT(info, 2), argOptT(info, 3),
                                                       argF64(info, 4), argBool(info, 5), scale));
  });
}

// ---- in-place updates (used under noGrad: parameter loading, manual updates) --------------------
static Napi::Value copy_(const Napi::CallbackInfo& info) {
  return guard(info, "copy_", [&] {
    at::Tensor t = argT(info, 0);
    t.copy_(argT(info, 1));
    return info.Env().Undefined();
  });
}
static Napi::Value fill_(const Napi::CallbackInfo& info) {
  return guard(info, "fill_", [&] {
    at::Tensor t = argT(info, 0);
    t.fill_(argScalar(info, 1));
    return info.Env().Undefined();
  });
}
// addScaled_(t, other, alpha): t += alpha · other
static Napi::Value addScaled_(const Napi::CallbackInfo& info) {
  return guard(info, "add_", [&] {
    at::Tensor t = argT(info, 0);
    t.add_(argT(info, 1), argScalar(info, 2));
    return info.Env().Undefined();
  });
}
static Napi::Value mulScalar_(const Napi::CallbackInfo& info) {
  return guard(info, "mul_", [&] {
    at::Tensor t = argT(info, 0);
    t.mul_(argScalar(info, 1));
    return info.Env().Undefined();
  });
}

template <typename T, int32_t N>
static Napi::Array names(Napi::Env env, const T (&table)[N]) {
  Napi::Array a = Napi::Array::New(env, N);
  for (int32_t k = 0; k < N; ++k) a.Set(static_cast<uint32_t>(k), Napi::String::New(env, table[k].name));
  return a;
}

void registerOps(Napi::Env env, Exports exports) {
  exports.Set("unaryOps", names(env, kUnary));
  exports.Set("binaryOps", names(env, kBinary));
  Napi::Array red = Napi::Array::New(env, 8);
  for (uint32_t k = 0; k < 8; ++k) red.Set(k, Napi::String::New(env, kReduceNames[k]));
  exports.Set("reduceOps", red);
  RLHF_EXPORT("unary", unary);
  RLHF_EXPORT("binary", binary);
  RLHF_EXPORT("binaryScalar", binaryScalar);
  RLHF_EXPORT("reduce", reduce);
  RLHF_EXPORT("varStd", varStd);
  RLHF_EXPORT("maxMin", maxMin);
  RLHF_EXPORT("argMaxMin", argMaxMin);
  RLHF_EXPORT("cumsum", cumsum);
  RLHF_EXPORT("softmax", softmax);
  RLHF_EXPORT("topk", topk);
  RLHF_EXPORT("sort", sort);
  RLHF_EXPORT("einsum", einsum);
  RLHF_EXPORT("clamp", clamp);
  RLHF_EXPORT("where", where);
  RLHF_EXPORT("maskedFill", maskedFill);
  RLHF_EXPORT("to", to);
  RLHF_EXPORT("reshape", reshape);
  RLHF_EXPORT("view", view);
  RLHF_EXPORT("flatten", flatten);
  RLHF_EXPORT("squeeze", squeeze);
  RLHF_EXPORT("unsqueeze", unsqueeze);
  RLHF_EXPORT("transpose", transpose);
  RLHF_EXPORT("permute", permute);
  RLHF_EXPORT("expand", expand);
  RLHF_EXPORT("repeat", repeat);
  RLHF_EXPORT("flip", flip);
  RLHF_EXPORT("slice", slice);
  RLHF_EXPORT("narrow", narrow);
  RLHF_EXPORT("select", select);
  RLHF_EXPORT("indexSelect", indexSelect);
  RLHF_EXPORT("gather", gather);
  RLHF_EXPORT("scatter", scatter);
  RLHF_EXPORT("index", index);
  RLHF_EXPORT("cat", cat);
  RLHF_EXPORT("stack", stack);
  RLHF_EXPORT("split", split);
  RLHF_EXPORT("chunk", chunk);
  RLHF_EXPORT("triangle", triangle);
  RLHF_EXPORT("embedding", embedding);
  RLHF_EXPORT("linear", linear);
  RLHF_EXPORT("layerNorm", layerNorm);
  RLHF_EXPORT("dropout", dropout);
  RLHF_EXPORT("crossEntropy", crossEntropy);
  RLHF_EXPORT("sdpa", sdpa);
  RLHF_EXPORT("copy_", copy_);
  RLHF_EXPORT("fill_", fill_);
  RLHF_EXPORT("addScaled_", addScaled_);
  RLHF_EXPORT("mulScalar_", mulScalar_);
}

}  // namespace rlhf
