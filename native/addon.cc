/*
 * Module entry of the gpu-layers addon: exports the NativeProbe class, the symbol tables, the
 * sample layout and, for the calibration child only, retainPrimaryContexts.
 * Loading the addon does nothing else: no dlopen, no NVML call, until a probe is opened.
 */
#include <napi.h>

#include "context_calibration.h"
#include "cuda_api.h"
#include "native_probe.h"
#include "nvml_api.h"
#include "readings_to_js.h"

namespace {

template <size_t N>
Napi::Object SymbolTableToJs(Napi::Env env, const std::array<gpu_layers::SymbolSpec, N>& specs) {
  Napi::Object out = Napi::Object::New(env);
  for (const auto& spec : specs) {
    Napi::Array names = Napi::Array::New(env);
    for (uint32_t g = 0; spec.candidates[g] != nullptr; ++g) names.Set(g, spec.candidates[g]);
    out.Set(spec.key, names);
  }
  return out;
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("NativeProbe", gpu_layers::DefineNativeProbe(env));
  // The candidate names of every call, newest first: the mock, the fault matrix and the docs are
  // checked against this single table.
  exports.Set("nvmlSymbols", SymbolTableToJs(env, gpu_layers::NvmlSymbolSpecs()));
  exports.Set("cudaSymbols", SymbolTableToJs(env, gpu_layers::CudaSymbolSpecs()));
  exports.Set("sampleLayout", gpu_layers::SampleLayoutToJs(env));
  // Only the `gpu-layers calibrate` child calls this; a probe never creates a context.
  exports.Set("retainPrimaryContexts", Napi::Function::New(env, gpu_layers::RetainPrimaryContexts));
  return exports;
}

}  // namespace

NODE_API_MODULE(gpu_layers, Init)
