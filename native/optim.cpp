// Optimisers are libtorch's own (torch::optim::AdamW, SGD); this file creates them from parameter
// groups, steps them, and moves their state in and out so a checkpoint resumes bit-identically.
// AdamW can step through libtorch's fused multi-tensor kernel instead (compat::fusedAdamW, libtorch
// >= 2.4): the same state objects either way, so checkpoints do not depend on the path.
#include <array>
#include <map>
#include <tuple>

#include "common.h"
#include "compat.h"

namespace rlhf {

static std::vector<std::unique_ptr<torch::optim::Optimizer>> g_optims;
static std::vector<int32_t> g_kinds;  // 0 = AdamW, 1 = SGD
static std::vector<bool> g_fused;     // AdamW stepped by the fused kernel

static torch::optim::Optimizer& optimAt(const Napi::CallbackInfo& info, size_t i) {
  int32_t id = argInt(info, i);
  if (id < 0 || static_cast<size_t>(id) >= g_optims.size() || !g_optims[id])
    throw std::invalid_argument("optimizer " + std::to_string(id) + " does not exist (disposed?)");
  return *g_optims[id];
}

static double num(const Napi::Object& o, const char* key, double dflt) {
  Napi::Value v = o.Get(key);
  return v.IsUndefined() ? dflt : v.As<Napi::Number>().DoubleValue();
}

static std::vector<at::Tensor> groupParams(const Napi::Object& g) {
  Napi::Array a = g.Get("params").As<Napi::Array>();
  std::vector<at::Tensor> ps;
  for (uint32_t k = 0; k < a.Length(); ++k) ps.push_back(get(a.Get(k).As<Napi::Number>().Int32Value()));
  return ps;
}

// optimizerNew(kind: 0 AdamW | 1 SGD, groups: [{params: handles, lr, weightDecay, beta1, beta2, eps,
// momentum, dampening, nesterov}], fused: AdamW through the fused kernel) -> id. The JS side has already
// filled every default and checked that the fused kernel exists.
static Napi::Value optimizerNew(const Napi::CallbackInfo& info) {
  return guard(info, "optimizerNew", [&] {
    int32_t kind = argInt(info, 0);
    Napi::Array groups = info[1].As<Napi::Array>();
    std::vector<torch::optim::OptimizerParamGroup> pgs;
    for (uint32_t k = 0; k < groups.Length(); ++k) {
      Napi::Object g = groups.Get(k).As<Napi::Object>();
      if (kind == 0) {
        auto o = torch::optim::AdamWOptions(num(g, "lr", 1e-3))
                     .betas({num(g, "beta1", 0.9), num(g, "beta2", 0.999)})
                     .eps(num(g, "eps", 1e-8))
                     .weight_decay(num(g, "weightDecay", 0.01));
        pgs.emplace_back(groupParams(g), std::make_unique<torch::optim::AdamWOptions>(o));
      } else {
        Napi::Value nest = g.Get("nesterov");
        auto o = torch::optim::SGDOptions(num(g, "lr", 1e-2))
                     .momentum(num(g, "momentum", 0))
                     .dampening(num(g, "dampening", 0))
                     .weight_decay(num(g, "weightDecay", 0))
                     .nesterov(!nest.IsUndefined() && nest.ToBoolean().Value());
        pgs.emplace_back(groupParams(g), std::make_unique<torch::optim::SGDOptions>(o));
      }
    }
    std::unique_ptr<torch::optim::Optimizer> opt;
    if (kind == 0)
      opt = std::make_unique<torch::optim::AdamW>(pgs, torch::optim::AdamWOptions());
    else if (kind == 1)
      opt = std::make_unique<torch::optim::SGD>(pgs, torch::optim::SGDOptions(1e-2));
    else
      throw std::invalid_argument("unknown optimizer kind " + std::to_string(kind));
    bool fused = kind == 0 && info.Length() > 2 && info[2].ToBoolean().Value();
    if (fused && !compat::kFusedAdamW) compat::fusedAdamW({}, {}, {}, {}, {}, 0, 0, 0, 0, 0);  // throws, naming the version
    g_optims.push_back(std::move(opt));
    g_kinds.push_back(kind);
    g_fused.push_back(fused);
    return Napi::Number::New(info.Env(), static_cast<double>(g_optims.size() - 1));
  });
}

static compat::OptimStateKey keyOf(const at::Tensor& p) { return compat::optimStateKey(p); }

// The per-parameter state of AdamW, created as torch::optim::AdamW creates it (step 0, zero moments).
static torch::optim::AdamWParamState& adamState(torch::optim::Optimizer& opt, const at::Tensor& p) {
  auto& slot = opt.state()[keyOf(p)];
  if (!slot) {
    auto st = std::make_unique<torch::optim::AdamWParamState>();
    st->step(0);
    st->exp_avg(torch::zeros_like(p, at::MemoryFormat::Contiguous));
    st->exp_avg_sq(torch::zeros_like(p, at::MemoryFormat::Contiguous));
    slot = std::move(st);
  }
  return static_cast<torch::optim::AdamWParamState&>(*slot);
}

// One AdamW step of every group through the fused kernel, with each group's lr, betas, eps and weight
// decay. The kernel walks each tensor as one flat array, so parameters, gradients and moments must be
// contiguous (a moment loaded from a checkpoint is made so once), and one call takes one device and dtype.
static void fusedAdamWStep(torch::optim::Optimizer& opt) {
  using Bucket = std::tuple<int, int, int>;  // device type, device index, dtype
  for (auto& g : opt.param_groups()) {
    auto& o = static_cast<torch::optim::AdamWOptions&>(g.options());
    std::map<Bucket, std::array<std::vector<at::Tensor>, 5>> buckets;  // params, grads, m, v, steps
    for (auto& p : g.params()) {
      if (!p.grad().defined()) continue;
      if (!p.is_contiguous()) throw std::invalid_argument("fused AdamW needs contiguous parameters, got " + describe(p));
      auto& st = adamState(opt, p);
      if (!st.exp_avg().is_contiguous()) st.exp_avg(st.exp_avg().contiguous());
      if (!st.exp_avg_sq().is_contiguous()) st.exp_avg_sq(st.exp_avg_sq().contiguous());
      st.step(st.step() + 1);
      auto& b = buckets[{static_cast<int>(p.device().type()), p.device().index(), static_cast<int>(p.scalar_type())}];
      b[0].push_back(p);
      b[1].push_back(p.grad().contiguous());
      b[2].push_back(st.exp_avg());
      b[3].push_back(st.exp_avg_sq());
      b[4].push_back(at::full({}, static_cast<double>(st.step()), p.options().dtype(at::kFloat)));
    }
    for (auto& [_, b] : buckets)
      compat::fusedAdamW(b[0], b[1], b[2], b[3], b[4], o.lr(), std::get<0>(o.betas()), std::get<1>(o.betas()),
                         o.weight_decay(), o.eps());
  }
}

static Napi::Value optimizerStep(const Napi::CallbackInfo& info) {
  return guard(info, "optimizer.step", [&] {
    at::NoGradGuard ng;
    auto& opt = optimAt(info, 0);
    if (g_fused[argInt(info, 0)])
      fusedAdamWStep(opt);
    else
      opt.step();
    return info.Env().Undefined();
  });
}

static Napi::Value optimizerZeroGrad(const Napi::CallbackInfo& info) {
  return guard(info, "optimizer.zeroGrad", [&] {
    for (auto& g : optimAt(info, 0).param_groups())
      for (auto& p : g.params()) p.mutable_grad().reset();
    return info.Env().Undefined();
  });
}

static Napi::Value optimizerSetLr(const Napi::CallbackInfo& info) {
  return guard(info, "optimizer.setLr", [&] {
    auto& groups = optimAt(info, 0).param_groups();
    int32_t g = argInt(info, 1);
    if (g < 0 || static_cast<size_t>(g) >= groups.size()) throw std::invalid_argument("no parameter group " + std::to_string(g));
    groups[g].options().set_lr(argF64(info, 2));
    return info.Env().Undefined();
  });
}

static Napi::Value optimizerFree(const Napi::CallbackInfo& info) {
  return guard(info, "optimizer.dispose", [&] {
    optimAt(info, 0);
    g_optims[argInt(info, 0)].reset();
    return info.Env().Undefined();
  });
}

// optimizerGetState(id) -> per parameter, in group order: null (no state yet), AdamW
// [step, expAvg, expAvgSq] or SGD [momentumBuffer|-1]. Tensors are fresh copies owned by JS.
static Napi::Value optimizerGetState(const Napi::CallbackInfo& info) {
  return guard(info, "optimizer.state", [&] {
    auto& opt = optimAt(info, 0);
    int32_t kind = g_kinds[argInt(info, 0)];
    Napi::Env env = info.Env();
    Napi::Array out = Napi::Array::New(env);
    uint32_t n = 0;
    for (auto& g : opt.param_groups())
      for (auto& p : g.params()) {
        auto it = opt.state().find(keyOf(p));
        if (it == opt.state().end()) {
          out.Set(n++, env.Null());
          continue;
        }
        Napi::Array s = Napi::Array::New(env);
        if (kind == 0) {
          auto& st = static_cast<torch::optim::AdamWParamState&>(*it->second);
          s.Set(0u, Napi::Number::New(env, static_cast<double>(st.step())));
          s.Set(1u, Napi::Number::New(env, put(st.exp_avg().clone())));
          s.Set(2u, Napi::Number::New(env, put(st.exp_avg_sq().clone())));
        } else {
          auto& st = static_cast<torch::optim::SGDParamState&>(*it->second);
          s.Set(0u, Napi::Number::New(env, st.momentum_buffer().defined() ? put(st.momentum_buffer().clone()) : -1));
        }
        out.Set(n++, s);
      }
    return out;
  });
}

// optimizerSetState(id, state): the inverse of optimizerGetState; tensors are copied in.
static Napi::Value optimizerSetState(const Napi::CallbackInfo& info) {
  return guard(info, "optimizer.loadState", [&] {
    auto& opt = optimAt(info, 0);
    int32_t kind = g_kinds[argInt(info, 0)];
    Napi::Array in = info[1].As<Napi::Array>();
    std::vector<at::Tensor> params;
    for (auto& g : opt.param_groups())
      for (auto& p : g.params()) params.push_back(p);
    if (in.Length() != params.size())
      throw std::invalid_argument("optimizer state has " + std::to_string(in.Length()) + " entries, optimizer has " +
                                  std::to_string(params.size()) + " parameters");
    auto tensorAt = [&](const Napi::Array& s, uint32_t k, const at::Tensor& like) {
      at::Tensor t = get(s.Get(k).As<Napi::Number>().Int32Value());
      if (!t.sizes().equals(like.sizes()))
        throw std::invalid_argument("optimizer state shape " + describe(t) + " does not match parameter " + describe(like));
      return t.to(like.options()).clone();
    };
    opt.state().clear();
    for (uint32_t k = 0; k < params.size(); ++k) {
      Napi::Value v = in.Get(k);
      if (v.IsNull()) continue;
      Napi::Array s = v.As<Napi::Array>();
      if (kind == 0) {
        auto st = std::make_unique<torch::optim::AdamWParamState>();
        st->step(s.Get(0u).As<Napi::Number>().Int64Value());
        st->exp_avg(tensorAt(s, 1, params[k]));
        st->exp_avg_sq(tensorAt(s, 2, params[k]));
        opt.state()[keyOf(params[k])] = std::move(st);
      } else {
        auto st = std::make_unique<torch::optim::SGDParamState>();
        if (s.Get(0u).As<Napi::Number>().Int32Value() >= 0) st->momentum_buffer(tensorAt(s, 0, params[k]));
        opt.state()[keyOf(params[k])] = std::move(st);
      }
    }
    return info.Env().Undefined();
  });
}

// clipGradNorm(handles, maxNorm, normType) -> total norm before clipping (PyTorch's clip_grad_norm_).
static Napi::Value clipGradNorm(const Napi::CallbackInfo& info) {
  return guard(info, "clipGradNorm", [&] {
    double total = torch::nn::utils::clip_grad_norm_(argTs(info, 0), argF64(info, 1), argF64(info, 2));
    return Napi::Number::New(info.Env(), total);
  });
}

void registerOptim(Napi::Env env, Exports exports) {
  RLHF_EXPORT("optimizerNew", optimizerNew);
  RLHF_EXPORT("optimizerStep", optimizerStep);
  RLHF_EXPORT("optimizerZeroGrad", optimizerZeroGrad);
  RLHF_EXPORT("optimizerSetLr", optimizerSetLr);
  RLHF_EXPORT("optimizerFree", optimizerFree);
  RLHF_EXPORT("optimizerGetState", optimizerGetState);
  RLHF_EXPORT("optimizerSetState", optimizerSetState);
  RLHF_EXPORT("clipGradNorm", clipGradNorm);
}

}  // namespace rlhf
