// Process-wide runtime: native-memory accounting, thread counts, BLAS identification, build facts.
#include <c10/core/CPUAllocator.h>
#include <c10/core/impl/alloc_cpu.h>
#include <c10/util/Logging.h>
#include <dlfcn.h>
#include <link.h>
#include <malloc.h>
#include <torch/version.h>

#include <atomic>
#include <climits>
#include <cstdlib>

#include "common.h"
#include "compat.h"

namespace rlhf {

// ---- native memory accounting ----------------------------------------------------------------------
// A CPU allocator that counts bytes: every CPU tensor libtorch allocates (ours, autograd's saved
// tensors, optimiser state) goes through it, so a leak anywhere shows in nativeBytes(). Each block
// carries its size in a 64-byte header (keeping libtorch's 64-byte alignment); data == context, so
// raw_allocate/raw_deleter keep working.
static std::atomic<int64_t> g_bytes{0};
static std::atomic<int64_t> g_peak{0};
constexpr size_t kHeader = 64;

static void countingDelete(void* data) {
  if (!data) return;
  char* base = static_cast<char*>(data) - kHeader;
  g_bytes -= static_cast<int64_t>(*reinterpret_cast<size_t*>(base));
  c10::free_cpu(base);
}

struct CountingAllocator final : compat::AllocatorBase {
  at::DataPtr allocateBytes(size_t n) const override {
    if (n == 0) return {nullptr, nullptr, &countingDelete, at::Device(at::kCPU)};
    char* base = static_cast<char*>(c10::alloc_cpu(n + kHeader));
    *reinterpret_cast<size_t*>(base) = n;
    int64_t now = (g_bytes += static_cast<int64_t>(n));
    int64_t peak = g_peak.load();
    while (now > peak && !g_peak.compare_exchange_weak(peak, now)) {
    }
    void* data = base + kHeader;
    return {data, data, &countingDelete, at::Device(at::kCPU)};
  }
  at::DeleterFnPtr raw_deleter() const override { return &countingDelete; }
};

static CountingAllocator g_allocator;

// glibc's default policy hands freed heap memory back to the OS once more than twice the largest freed
// mmapped block sits at the top of the heap, and re-faults it on the next allocation. A training step
// frees its activations together at the end of its scope, so every step gave back and re-faulted tens
// of MB: ~3,000–4,000 page faults and ~10 ms of system time per step of bench/engine.ts's block_train
// (~150 ms), where Python, freeing progressively, saw ~1,000–2,000. With blocks under 32 MiB served
// from the heap and up to 128 MiB of free heap kept, steady-state steps fault ~0 times. Skipped when the
// user tuned malloc through the environment, or with RLHF_MALLOC_TUNING=0.
static void tuneMalloc() {
#ifdef __GLIBC__
  for (const char* v : {"MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "MALLOC_TOP_PAD_", "GLIBC_TUNABLES"})
    if (std::getenv(v)) return;
  if (const char* off = std::getenv("RLHF_MALLOC_TUNING"); off && std::string(off) == "0") return;
  mallopt(M_MMAP_THRESHOLD, 32 << 20);
  mallopt(M_TRIM_THRESHOLD, 128 << 20);
#endif
}

static Napi::Value nativeBytes(const Napi::CallbackInfo& info) {
  Napi::Object o = Napi::Object::New(info.Env());
  o.Set("cpu", Napi::Number::New(info.Env(), static_cast<double>(g_bytes.load())));
  o.Set("cpuPeak", Napi::Number::New(info.Env(), static_cast<double>(g_peak.load())));
  return o;
}

// resetPeakBytes(): the peak restarts from the bytes held now, so a phase's peak can be read after it.
static Napi::Value resetPeakBytes(const Napi::CallbackInfo& info) {
  g_peak.store(g_bytes.load());
  return info.Env().Undefined();
}

// ---- threads ---------------------------------------------------------------------------------------
// torch::set_num_threads does not bound OpenBLAS's own pool, so we set both (found with dlsym: the BLAS
// is whatever libtorch loaded, and may not be OpenBLAS at all).
using SetThreadsFn = void (*)(int);
using GetThreadsFn = int (*)();

int blasThreads() {
  static auto f = reinterpret_cast<GetThreadsFn>(dlsym(RTLD_DEFAULT, "openblas_get_num_threads"));
  return f ? f() : -1;
}
void setBlasThreads(int n) {
  static auto f = reinterpret_cast<SetThreadsFn>(dlsym(RTLD_DEFAULT, "openblas_set_num_threads"));
  if (f) f(n);
}

// setNumThreads(torch, blas): libtorch's intra-op pool and OpenBLAS's pool.
static Napi::Value setNumThreads(const Napi::CallbackInfo& info) {
  return guard(info, "setNumThreads", [&] {
    int n = argInt(info, 0);
    int blas = argInt(info, 1);
    if (n < 1 || blas < 1) throw std::invalid_argument("thread counts must be >= 1, got " + std::to_string(n) + " and " + std::to_string(blas));
    at::set_num_threads(n);
    setBlasThreads(blas);
    return info.Env().Undefined();
  });
}

static Napi::Value getNumThreads(const Napi::CallbackInfo& info) {
  Napi::Object o = Napi::Object::New(info.Env());
  o.Set("torch", Napi::Number::New(info.Env(), at::get_num_threads()));
  o.Set("interop", Napi::Number::New(info.Env(), at::get_num_interop_threads()));
  int blas = blasThreads();
  o.Set("blas", blas >= 0 ? Napi::Value(Napi::Number::New(info.Env(), blas)) : info.Env().Null());
  return o;
}

// ---- BLAS identification -------------------------------------------------------------------------
static int collectLib(struct dl_phdr_info* phdr, size_t, void* out) {
  std::string name = phdr->dlpi_name ? phdr->dlpi_name : "";
  if (name.find("blas") != std::string::npos || name.find("mkl") != std::string::npos) {
    char resolved[PATH_MAX];
    std::string real = realpath(name.c_str(), resolved) ? resolved : name;
    static_cast<std::vector<std::string>*>(out)->push_back(real);
  }
  return 0;
}

// blasInfo() -> {kind: 'openblas'|'reference'|'mkl'|'unknown', libraries: [...], config, coreType}
// coreType is OpenBLAS's kernel family for this CPU (openblas_get_corename: Haswell, SkylakeX, Zen, …;
// OPENBLAS_CORETYPE overrides it), null for any other BLAS.
static Napi::Value blasInfo(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::vector<std::string> libs;
  dl_iterate_phdr(collectLib, &libs);
  std::string kind = "unknown";
  using ConfigFn = char* (*)();
  auto cfg = reinterpret_cast<ConfigFn>(dlsym(RTLD_DEFAULT, "openblas_get_config"));
  if (cfg) kind = "openblas";
  else if (at::globalContext().hasMKL()) kind = "mkl";
  else
    for (auto& l : libs)
      if (l.find("/blas/") != std::string::npos || l.find("libblas.so") != std::string::npos) kind = "reference";
  Napi::Object o = Napi::Object::New(env);
  o.Set("kind", kind);
  o.Set("config", cfg ? Napi::Value(Napi::String::New(env, cfg())) : env.Null());
  auto core = reinterpret_cast<ConfigFn>(dlsym(RTLD_DEFAULT, "openblas_get_corename"));
  o.Set("coreType", core ? Napi::Value(Napi::String::New(env, core())) : env.Null());
  Napi::Array a = Napi::Array::New(env, libs.size());
  for (uint32_t k = 0; k < libs.size(); ++k) a.Set(k, libs[k]);
  o.Set("libraries", a);
  return o;
}

// The real path of the libtorch this process runs (the file holding at::set_num_threads): the one the
// addon was linked against unless LD_LIBRARY_PATH or a preloaded library says otherwise.
static std::string libtorchPath() {
  Dl_info where{};
  if (!dladdr(reinterpret_cast<void*>(&at::set_num_threads), &where) || !where.dli_fname) return "unknown";
  char resolved[PATH_MAX];
  return realpath(where.dli_fname, resolved) ? resolved : where.dli_fname;
}

static Napi::Value buildInfo(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object o = Napi::Object::New(env);
  o.Set("torchVersion", TORCH_VERSION);
#ifdef RLHF_WITH_CUDA
  o.Set("cudaBuild", true);
#else
  o.Set("cudaBuild", false);
#endif
  o.Set("cudaAvailable", torch::cuda::is_available());
  o.Set("cudaDevices", static_cast<double>(torch::cuda::device_count()));
  o.Set("parallel", at::get_parallel_info());
  o.Set("libtorch", libtorchPath());
  o.Set("cpuCapability", compat::cpuCapability());
  o.Set("fusedAdamW", compat::kFusedAdamW);
  o.Set("mkl", at::globalContext().hasMKL() ? Napi::Value(Napi::String::New(env, at::get_mkl_version())) : env.Null());
  o.Set("mkldnn", at::globalContext().hasMKLDNN() ? Napi::Value(Napi::String::New(env, at::get_mkldnn_version())) : env.Null());
  return o;
}

void registerRuntime(Napi::Env env, Exports exports) {
  c10::SetCPUAllocator(&g_allocator, /*priority=*/UINT8_MAX);
  tuneMalloc();
  // libtorch 1.13 symbolizes a full C++ backtrace in every c10::Error's constructor (~15 ms per error);
  // rethrow() reports only what_without_backtrace(), so fetch none: a failed op then costs microseconds.
  c10::SetStackTraceFetcher([] { return std::string(); });
  RLHF_EXPORT("nativeBytes", nativeBytes);
  RLHF_EXPORT("resetPeakBytes", resetPeakBytes);
  RLHF_EXPORT("setNumThreads", setNumThreads);
  RLHF_EXPORT("getNumThreads", getNumThreads);
  RLHF_EXPORT("blasInfo", blasInfo);
  RLHF_EXPORT("buildInfo", buildInfo);
}

}  // namespace rlhf
