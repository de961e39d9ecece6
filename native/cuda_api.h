/*
 * The CUDA driver function table: context-free calls only (nvml-abi.md 6.2). The probe must never
 * create a context, because a context costs device memory and puts the probe in NVML's process
 * list: cuDevicePrimaryCtxRetain, cuCtxCreate and cuMemGetInfo are deliberately absent here.
 */
#ifndef GPU_LAYERS_CUDA_API_H_
#define GPU_LAYERS_CUDA_API_H_

#include <string>

#include "cuda_abi.h"
#include "dynamic_library.h"
#include "symbol_table.h"

namespace gpu_layers {

enum class CudaCall : int {
  kInit,
  kDriverGetVersion,
  kDeviceGetCount,
  kDeviceGet,
  kDeviceGetName,
  kDeviceGetUuid,
  kDeviceTotalMem,
  kDeviceGetAttribute,
  kGetErrorName,
  kCount
};

constexpr int kCudaCallCount = static_cast<int>(CudaCall::kCount);
using CudaSymbols = SymbolTable<CudaCall, kCudaCallCount>;

const std::array<SymbolSpec, kCudaCallCount>& CudaSymbolSpecs();

struct CudaApi {
  DynamicLibrary library;
  CudaSymbols symbols{CudaSymbolSpecs()};

  bool Load(const std::string& library_name) {
    if (!library.Open(library_name)) return false;
    symbols.Resolve(library);
    return true;
  }
};

}  // namespace gpu_layers

#endif  // GPU_LAYERS_CUDA_API_H_
