// The NVML symbol candidates and the _v3 row-size rule.
#include "nvml_api.h"

#include <cstdio>

namespace gpu_layers {

const std::array<SymbolSpec, kNvmlCallCount>& NvmlSymbolSpecs() {
  // Order matches NvmlCall. Plain (unversioned) names keep the old ABI (nvml-abi.md 1.1), so they
  // come last and the caller sizes its buffers for whichever generation was found.
  static const std::array<SymbolSpec, kNvmlCallCount> table = {{
      {"init", {"nvmlInit_v2", "nvmlInit", nullptr}},
      {"shutdown", {"nvmlShutdown", nullptr}},
      {"errorString", {"nvmlErrorString", nullptr}},
      {"driverVersion", {"nvmlSystemGetDriverVersion", nullptr}},
      {"nvmlVersion", {"nvmlSystemGetNVMLVersion", nullptr}},
      {"cudaDriverVersion", {"nvmlSystemGetCudaDriverVersion_v2", "nvmlSystemGetCudaDriverVersion", nullptr}},
      {"deviceCount", {"nvmlDeviceGetCount_v2", "nvmlDeviceGetCount", nullptr}},
      {"handleByIndex", {"nvmlDeviceGetHandleByIndex_v2", "nvmlDeviceGetHandleByIndex", nullptr}},
      {"name", {"nvmlDeviceGetName", nullptr}},
      {"uuid", {"nvmlDeviceGetUUID", nullptr}},
      // Only _v3 is trusted with the 68-byte struct; older ones share its first 36 bytes.
      {"pciInfo", {"nvmlDeviceGetPciInfo_v3", "nvmlDeviceGetPciInfo_v2", "nvmlDeviceGetPciInfo", nullptr}},
      {"memoryInfoV2", {"nvmlDeviceGetMemoryInfo_v2", nullptr}},
      {"memoryInfo", {"nvmlDeviceGetMemoryInfo", nullptr}},
      {"bar1MemoryInfo", {"nvmlDeviceGetBAR1MemoryInfo", nullptr}},
      {"utilizationRates", {"nvmlDeviceGetUtilizationRates", nullptr}},
      {"migMode", {"nvmlDeviceGetMigMode", nullptr}},
      {"maxMigDeviceCount", {"nvmlDeviceGetMaxMigDeviceCount", nullptr}},
      {"migDeviceHandleByIndex", {"nvmlDeviceGetMigDeviceHandleByIndex", nullptr}},
      {"gpuInstanceId", {"nvmlDeviceGetGpuInstanceId", nullptr}},
      {"computeInstanceId", {"nvmlDeviceGetComputeInstanceId", nullptr}},
      {"computeProcesses",
       {"nvmlDeviceGetComputeRunningProcesses_v3", "nvmlDeviceGetComputeRunningProcesses_v2",
        "nvmlDeviceGetComputeRunningProcesses", nullptr}},
      {"graphicsProcesses",
       {"nvmlDeviceGetGraphicsRunningProcesses_v3", "nvmlDeviceGetGraphicsRunningProcesses_v2",
        "nvmlDeviceGetGraphicsRunningProcesses", nullptr}},
      {"mpsComputeProcesses",
       {"nvmlDeviceGetMPSComputeRunningProcesses_v3", "nvmlDeviceGetMPSComputeRunningProcesses_v2",
        "nvmlDeviceGetMPSComputeRunningProcesses", nullptr}},
      {"confComputeMemSizeInfo", {"nvmlDeviceGetConfComputeMemSizeInfo", nullptr}},
      {"runningProcessDetailList", {"nvmlDeviceGetRunningProcessDetailList", nullptr}},
  }};
  return table;
}

namespace {

// True for the drivers whose _v3 wrote 32-byte rows: 535.43.02, 535.54.03, 535.86.05/.10. 535.98
// dropped _v3, and 535.104.05 brought it back with 24-byte rows (nvml-abi.md 1.2).
bool Is535With32ByteRows(const std::string& driver_version) {
  unsigned major = 0, minor = 0;
  if (std::sscanf(driver_version.c_str(), "%u.%u", &major, &minor) != 2) return false;
  return major == 535 && minor >= 43 && minor < 98;
}

}  // namespace

unsigned ProcessRowBytes(const NvmlSymbols& symbols, NvmlCall process_call, const std::string& driver_version) {
  switch (symbols.Generation(process_call)) {
    case 0:
      break;  // _v3, decided below
    case 1:
      return sizeof(nvmlProcessInfo_v2_t);
    case 2:
      return sizeof(nvmlProcessInfo_v1_t);
    default:
      return 0;
  }
  if (!driver_version.empty()) {
    return Is535With32ByteRows(driver_version) ? sizeof(nvmlProcessInfo_535_t) : sizeof(nvmlProcessInfo_v2_t);
  }
  // Without a version string, nvitop's rule: the confidential-compute call arrived in 535.43.02
  // and the detail list (which took over the 32-byte row) in 535.104.05.
  bool cc = symbols.Has(NvmlCall::kConfComputeMemSizeInfo);
  bool detail = symbols.Has(NvmlCall::kRunningProcessDetailList);
  return (cc && !detail) ? sizeof(nvmlProcessInfo_535_t) : sizeof(nvmlProcessInfo_v2_t);
}

}  // namespace gpu_layers
