// The CUDA driver symbol candidates (nvml-abi.md 6.1).
#include "cuda_api.h"

namespace gpu_layers {

const std::array<SymbolSpec, kCudaCallCount>& CudaSymbolSpecs() {
  // The plain cuDeviceTotalMem is the CUDA 2.0 ABI with a 32-bit output (truncates above 4 GiB),
  // so it is not a fallback. The plain cuDeviceGetUuid is the pre-11.4 ABI with the same
  // signature; under MIG it may return the parent's UUID, so it is the second choice only.
  static const std::array<SymbolSpec, kCudaCallCount> table = {{
      {"cuInit", {"cuInit", nullptr}},
      {"cuDriverGetVersion", {"cuDriverGetVersion", nullptr}},
      {"cuDeviceGetCount", {"cuDeviceGetCount", nullptr}},
      {"cuDeviceGet", {"cuDeviceGet", nullptr}},
      {"cuDeviceGetName", {"cuDeviceGetName", nullptr}},
      {"cuDeviceGetUuid", {"cuDeviceGetUuid_v2", "cuDeviceGetUuid", nullptr}},
      {"cuDeviceTotalMem", {"cuDeviceTotalMem_v2", nullptr}},
      {"cuDeviceGetAttribute", {"cuDeviceGetAttribute", nullptr}},
      {"cuGetErrorName", {"cuGetErrorName", nullptr}},
  }};
  return table;
}

}  // namespace gpu_layers
