/*
 * Plain structs that hold what one open or one sample read from NVML and CUDA, in the drivers'
 * own units, with the return code of every call beside its value. Filled on the worker thread,
 * converted to JavaScript on the main thread; no Node-API here.
 */
#ifndef GPU_LAYERS_READINGS_H_
#define GPU_LAYERS_READINGS_H_

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "nvml_abi.h"

namespace gpu_layers {

// Status codes of our own, kept apart from NVML's (all >= 0) and CUDA's (all >= 0).
constexpr int kNotCalled = -1;         // the call was not made (its precondition did not hold)
constexpr int kRowsImplausible = -2;   // process rows decoded to impossible pids or ids
constexpr int kStringUnterminated = -3;  // the driver filled the whole string buffer, no NUL
constexpr int kCountImplausible = -4;    // a first process count above any real GPU's (kMaxProcessRows)

template <typename T>
struct Reading {
  int rc = kNotCalled;
  T value{};
  bool ok() const { return rc == 0; }
};

struct MemoryValue {
  int version = 0;  // 2 for nvmlDeviceGetMemoryInfo_v2, 1 for the v1 fallback (no reserved)
  uint64_t total = 0;
  uint64_t reserved = 0;
  uint64_t free = 0;
  uint64_t used = 0;
};

struct ProcessRow {
  uint32_t pid = 0;
  uint64_t used_gpu_memory = 0;
  uint32_t gpu_instance_id = GPU_LAYERS_NVML_U32_NOT_AVAILABLE;
  uint32_t compute_instance_id = GPU_LAYERS_NVML_U32_NOT_AVAILABLE;
};

enum ProcessKind { kCompute = 0, kGraphics = 1, kMps = 2, kProcessKindCount = 3 };

struct ProcessList {
  int rc = kNotCalled;
  unsigned row_bytes = 0;  // the row size the rows were decoded with
  std::vector<ProcessRow> rows;
};

struct MigMode {
  unsigned current = 0;
  unsigned pending = 0;
};

// What a full GPU and a MIG device both report.
struct DeviceCommonReading {
  Reading<std::string> name;
  Reading<std::string> uuid;
  Reading<MemoryValue> memory;
  std::array<ProcessList, kProcessKindCount> processes;
};

struct MigDeviceReading : DeviceCommonReading {
  unsigned slot = 0;
  int handle_rc = kNotCalled;
  Reading<unsigned> gpu_instance_id;
  Reading<unsigned> compute_instance_id;
};

struct DeviceReading : DeviceCommonReading {
  unsigned index = 0;
  int handle_rc = kNotCalled;
  Reading<nvmlPciInfo_t> pci;
  Reading<nvmlBAR1Memory_t> bar1;
  Reading<nvmlUtilization_t> utilization;
  Reading<MigMode> mig_mode;
  Reading<unsigned> max_mig_devices;
  std::vector<MigDeviceReading> mig_devices;
};

struct SampleReading {
  double started_at_ms = 0;  // wall clock, ms since the epoch
  double duration_ms = 0;    // monotonic
  Reading<std::string> driver_version;
  Reading<std::string> nvml_version;
  Reading<int> cuda_driver_version;
  Reading<unsigned> device_count;
  std::vector<DeviceReading> devices;
};

struct CudaDeviceReading {
  int ordinal = 0;
  int handle_rc = kNotCalled;
  Reading<std::string> name;
  Reading<std::string> uuid_hex;  // 32 lower-case hex digits, no prefix
  Reading<uint64_t> total_mem;
  Reading<int> pci_domain;
  Reading<int> pci_bus;
  Reading<int> pci_device;
};

struct LibraryReading {
  std::string requested;
  bool loaded = false;
  std::string load_error;
  std::string loaded_path;
  // Per logical call: the exported symbol it resolved to, or empty when none exists.
  std::vector<std::pair<std::string, std::string>> symbols;
};

struct OpenReading {
  LibraryReading nvml;
  int init_rc = kNotCalled;
  std::string init_error_string;  // nvmlErrorString's own words for init_rc, when available
  std::string driver_version;     // read once to choose the _v3 row size
  std::array<unsigned, kProcessKindCount> process_row_bytes{};
  bool cuda_requested = false;
  LibraryReading cuda;
  int cuda_init_rc = kNotCalled;
  Reading<int> cuda_driver_version;
  Reading<int> cuda_device_count;
  std::vector<CudaDeviceReading> cuda_devices;
};

}  // namespace gpu_layers

#endif  // GPU_LAYERS_READINGS_H_
