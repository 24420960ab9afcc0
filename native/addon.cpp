// Module entry: each area file registers its own functions (see common.h).
#include "common.h"

namespace rlhf {

static Napi::Object init(Napi::Env env, Napi::Object exports) {
  registerRuntime(env, exports);
  registerTensor(env, exports);
  registerOps(env, exports);
  registerAutograd(env, exports);
  registerOptim(env, exports);
  registerKernels(env, exports);
  registerDecode(env, exports);
  return exports;
}

}  // namespace rlhf

static Napi::Object Init(Napi::Env env, Napi::Object exports) { return rlhf::init(env, exports); }

NODE_API_MODULE(rlhf_native, Init)
