/*
 * The NVML function table: one entry per logical call, each resolved from exported symbols tried
 * newest first (nvmlInit_v2 before nvmlInit, ..._v3 before _v2 before the plain name). A symbol
 * the driver does not export stays null and becomes a per-field status
 * (NVML_ERROR_FUNCTION_NOT_FOUND) in the sample; it never fails the load.
 */
#ifndef GPU_LAYERS_NVML_API_H_
#define GPU_LAYERS_NVML_API_H_

#include <string>

#include "dynamic_library.h"
#include "nvml_abi.h"
#include "symbol_table.h"

namespace gpu_layers {

enum class NvmlCall : int {
  kInit,
  kShutdown,
  kErrorString,
  kDriverVersion,
  kNvmlVersion,
  kCudaDriverVersion,
  kDeviceCount,
  kHandleByIndex,
  kName,
  kUuid,
  kPciInfo,
  kMemoryInfoV2,
  kMemoryInfoV1,
  kBar1MemoryInfo,
  kUtilizationRates,
  kMigMode,
  kMaxMigDeviceCount,
  kMigDeviceHandleByIndex,
  kGpuInstanceId,
  kComputeInstanceId,
  kComputeProcesses,
  kGraphicsProcesses,
  kMpsComputeProcesses,
  // Looked up only to tell the 535.43-535.86 driver family apart when its version is unknown.
  kConfComputeMemSizeInfo,
  kRunningProcessDetailList,
  kCount
};

constexpr int kNvmlCallCount = static_cast<int>(NvmlCall::kCount);
using NvmlSymbols = SymbolTable<NvmlCall, kNvmlCallCount>;

// The single table of every NVML symbol the addon may call (the mock exports the same names).
const std::array<SymbolSpec, kNvmlCallCount>& NvmlSymbolSpecs();

struct NvmlApi {
  DynamicLibrary library;
  NvmlSymbols symbols{NvmlSymbolSpecs()};

  bool Load(const std::string& library_name) {
    if (!library.Open(library_name)) return false;
    symbols.Resolve(library);
    return true;
  }
};

// Row size the resolved process-list function writes. _v3 is 32 bytes on drivers 535.43.02 to
// 535.86.x and 24 elsewhere (nvml-abi.md 1.2); _v2 is 24; the plain symbol is the 16-byte v1 row.
// driver_version may be empty, then nvitop's symbol rule decides the _v3 case.
unsigned ProcessRowBytes(const NvmlSymbols& symbols, NvmlCall process_call, const std::string& driver_version);

}  // namespace gpu_layers

#endif  // GPU_LAYERS_NVML_API_H_
