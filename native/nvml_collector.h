/*
 * Fills one SampleReading from NVML: system versions, then for every device its identity, PCI,
 * memory (v2, else v1), BAR1, utilization, MIG devices and the three process lists. Every call's
 * return code is kept beside its value; no call's failure stops the others. Plain C++, run on the
 * probe's worker thread.
 */
#ifndef GPU_LAYERS_NVML_COLLECTOR_H_
#define GPU_LAYERS_NVML_COLLECTOR_H_

#include <array>
#include <cstdint>
#include <utility>
#include <vector>

#include "nvml_api.h"
#include "readings.h"

namespace gpu_layers {

// What NVML puts in the instance ids of a list's rows (nvml-abi.md 3.2): NVML_VALUE_NOT_AVAILABLE
// with MIG off; with MIG on, ids, and on a MIG device its own pair. Used to tell row sizes apart.
struct InstanceIdRule {
  enum Kind { kAny, kAbsent, kPresent } kind = kAny;
  std::vector<std::pair<uint32_t, uint32_t>> pairs;  // kPresent: the only (GI, CI) pairs, when known
};

class NvmlCollector {
 public:
  NvmlCollector(const NvmlApi& api, const std::array<unsigned, kProcessKindCount>& row_bytes)
      : api_(api), row_bytes_(row_bytes) {}

  void Collect(SampleReading* out);

 private:
  void ReadDevice(unsigned index, DeviceReading* out);
  void ReadCommon(nvmlDevice_t device, const InstanceIdRule& ids, DeviceCommonReading* out);
  void ReadMigDevices(nvmlDevice_t parent, DeviceReading* out);
  void ReadMemory(nvmlDevice_t device, Reading<MemoryValue>* out);
  void ReadProcesses(nvmlDevice_t device, ProcessKind kind, const InstanceIdRule& ids, ProcessList* out);
  bool LayoutFits(unsigned count, unsigned stride, const InstanceIdRule& ids, std::vector<ProcessRow>* rows) const;
  Reading<std::string> ReadDeviceString(NvmlCall call, nvmlDevice_t device);

  const NvmlApi& api_;
  std::array<unsigned, kProcessKindCount> row_bytes_;
  std::vector<unsigned char> row_buffer_;  // reused across samples
};

// Decodes `count` rows of `stride` bytes. Exposed for the stride tests.
void DecodeProcessRows(const unsigned char* buffer, unsigned count, unsigned stride, std::vector<ProcessRow>* rows);
// Whether decoded rows could have come from a driver: pids in 1..PID_MAX_LIMIT, instance ids
// either both "not available" (MIG off) or small, memory either "not available" or below 2^53.
bool ProcessRowsPlausible(const std::vector<ProcessRow>& rows);
// Whether the rows' instance ids are what NVML gives for the device's MIG state, the same way on
// every row.
bool InstanceIdsFit(const std::vector<ProcessRow>& rows, const InstanceIdRule& ids);

}  // namespace gpu_layers

#endif  // GPU_LAYERS_NVML_COLLECTOR_H_
