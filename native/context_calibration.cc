/*
 * Creates the primary CUDA context on every device, so that the short-lived `gpu-layers
 * calibrate` child can read through NVML what a bare context costs there. The probe never calls
 * this: its symbol table (cuda_api.cc) does not even resolve the context calls, which live only
 * in this file's own table. Synchronous on purpose: the child does nothing else, and its parent
 * kills it if the driver does not answer. The contexts stay until the child exits.
 */
#include "context_calibration.h"

#include <cstdio>
#include <string>

#include "cuda_api.h"
#include "symbol_table.h"

namespace gpu_layers {

namespace {

enum class ContextCall : int { kRetain, kSetCurrent, kCount };
constexpr int kContextCallCount = static_cast<int>(ContextCall::kCount);

const std::array<SymbolSpec, kContextCallCount>& ContextSymbolSpecs() {
  static const std::array<SymbolSpec, kContextCallCount> table = {{
      {"cuDevicePrimaryCtxRetain", {"cuDevicePrimaryCtxRetain", nullptr}},
      {"cuCtxSetCurrent", {"cuCtxSetCurrent", nullptr}},
  }};
  return table;
}

typedef struct CUctx_st* CUcontext;
typedef CUresult (*cuPrimaryCtxRetainFn)(CUcontext* context, CUdevice device);
typedef CUresult (*cuCtxSetCurrentFn)(CUcontext context);

std::string UuidHex(const CUuuid& uuid) {
  char hex[33];
  for (int i = 0; i < 16; ++i) std::snprintf(hex + 2 * i, 3, "%02x", static_cast<unsigned char>(uuid.bytes[i]));
  return std::string(hex, 32);
}

}  // namespace

// retainPrimaryContexts(cudaLibrary) -> { loaded, loadError, initRc, devices: [{ ordinal, uuidHex, rc }] }
Napi::Value RetainPrimaryContexts(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsString()) throw Napi::TypeError::New(env, "retainPrimaryContexts(cudaLibrary): a path or name");
  // Process lifetime: the contexts must outlive this call.
  static CudaApi cuda;
  static SymbolTable<ContextCall, kContextCallCount> context_symbols{ContextSymbolSpecs()};
  Napi::Object out = Napi::Object::New(env);
  bool loaded = cuda.library.loaded() || cuda.Load(info[0].As<Napi::String>());
  out.Set("loaded", loaded);
  out.Set("loadError", loaded ? env.Null() : Napi::String::New(env, cuda.library.error()));
  Napi::Array devices = Napi::Array::New(env);
  out.Set("devices", devices);
  if (!loaded) return out;
  context_symbols.Resolve(cuda.library);
  int init_rc = cuda.symbols.CallOr<cuInitFn>(CUDA_ERROR_NOT_FOUND, CudaCall::kInit, 0u);
  out.Set("initRc", init_rc);
  if (init_rc != CUDA_SUCCESS) return out;
  int count = 0;
  cuda.symbols.CallOr<cuIntOutFn>(CUDA_ERROR_NOT_FOUND, CudaCall::kDeviceGetCount, &count);
  for (int ordinal = 0; ordinal < count && ordinal < 1024; ++ordinal) {
    Napi::Object device = Napi::Object::New(env);
    device.Set("ordinal", ordinal);
    CUdevice handle = 0;
    int rc = cuda.symbols.CallOr<cuDeviceGetFn>(CUDA_ERROR_NOT_FOUND, CudaCall::kDeviceGet, &handle, ordinal);
    CUuuid uuid{};
    if (rc == CUDA_SUCCESS &&
        cuda.symbols.CallOr<cuDeviceGetUuidFn>(CUDA_ERROR_NOT_FOUND, CudaCall::kDeviceGetUuid, &uuid, handle) == CUDA_SUCCESS) {
      device.Set("uuidHex", UuidHex(uuid));
    } else {
      device.Set("uuidHex", env.Null());
    }
    CUcontext context = nullptr;
    if (rc == CUDA_SUCCESS) {
      rc = context_symbols.CallOr<cuPrimaryCtxRetainFn>(CUDA_ERROR_NOT_FOUND, ContextCall::kRetain, &context, handle);
    }
    // Making it current commits the context's memory on drivers that create it lazily.
    if (rc == CUDA_SUCCESS) rc = context_symbols.CallOr<cuCtxSetCurrentFn>(CUDA_ERROR_NOT_FOUND, ContextCall::kSetCurrent, context);
    device.Set("rc", rc);
    devices.Set(static_cast<uint32_t>(ordinal), device);
  }
  return out;
}

}  // namespace gpu_layers
