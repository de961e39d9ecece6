// One NVML sample into plain structs; see nvml_collector.h.
#include "nvml_collector.h"

#include <chrono>
#include <cstring>

namespace gpu_layers {

namespace {

constexpr NvmlCall kProcessCalls[kProcessKindCount] = {
    NvmlCall::kComputeProcesses, NvmlCall::kGraphicsProcesses, NvmlCall::kMpsComputeProcesses};

// Every buffer row gets 32 bytes whatever stride we expect, so a wrong guess about the driver's
// row size can never make it write past the end (nvml-abi.md 1.2, "safe choice").
constexpr unsigned kAllocatedRowBytes = sizeof(nvmlProcessInfo_535_t);
// The count call plus four fills: enough for processes appearing between calls, bounded so a list
// that grows on every call ends in INSUFFICIENT_SIZE instead of a loop.
constexpr int kProcessListAttempts = 5;
// No GPU runs anywhere near this many processes; a larger count is a driver fault, not a reason
// to allocate gigabytes.
constexpr unsigned kMaxProcessRows = 1u << 16;
constexpr uint32_t kPidMaxLimit = 4194304;  // PID_MAX_LIMIT on 64-bit Linux
constexpr uint64_t kMaxExactDouble = 1ULL << 53;

template <typename Fn, typename... Args>
int CallNvml(const NvmlApi& api, NvmlCall call, Args... args) {
  return api.symbols.template CallOr<Fn>(NVML_ERROR_FUNCTION_NOT_FOUND, call, args...);
}

// NVML promises NUL-terminated strings; a faulty driver (or the fault matrix) may fill the whole
// buffer without one, so the length is bounded by the buffer, never by strlen.
std::string BoundedString(const char* buffer, size_t size) { return std::string(buffer, strnlen(buffer, size)); }

Reading<std::string> ReadSystemString(const NvmlApi& api, NvmlCall call) {
  char buffer[GPU_LAYERS_NVML_VERSION_BUFFER] = {0};
  Reading<std::string> out;
  out.rc = CallNvml<nvmlStringFn>(api, call, buffer, static_cast<unsigned>(sizeof(buffer)));
  if (out.ok()) out.value = BoundedString(buffer, sizeof(buffer));
  return out;
}

double WallClockMs() {
  using namespace std::chrono;
  return duration<double, std::milli>(system_clock::now().time_since_epoch()).count();
}

}  // namespace

void DecodeProcessRows(const unsigned char* buffer, unsigned count, unsigned stride, std::vector<ProcessRow>* rows) {
  rows->resize(count);
  for (unsigned i = 0; i < count; ++i) {
    const unsigned char* row = buffer + static_cast<size_t>(i) * stride;
    ProcessRow& out = (*rows)[i];
    // memcpy at the documented offsets: pid @0, 4 bytes padding, usedGpuMemory @8, ids @16/@20.
    std::memcpy(&out.pid, row + 0, sizeof(uint32_t));
    std::memcpy(&out.used_gpu_memory, row + 8, sizeof(uint64_t));
    if (stride >= sizeof(nvmlProcessInfo_v2_t)) {
      std::memcpy(&out.gpu_instance_id, row + 16, sizeof(uint32_t));
      std::memcpy(&out.compute_instance_id, row + 20, sizeof(uint32_t));
    } else {
      out.gpu_instance_id = GPU_LAYERS_NVML_U32_NOT_AVAILABLE;
      out.compute_instance_id = GPU_LAYERS_NVML_U32_NOT_AVAILABLE;
    }
  }
}

bool ProcessRowsPlausible(const std::vector<ProcessRow>& rows) {
  for (const ProcessRow& row : rows) {
    if (row.pid == 0 || row.pid > kPidMaxLimit) return false;
    if (row.used_gpu_memory != GPU_LAYERS_NVML_U64_NOT_AVAILABLE && row.used_gpu_memory >= kMaxExactDouble) {
      return false;
    }
    bool gi_na = row.gpu_instance_id == GPU_LAYERS_NVML_U32_NOT_AVAILABLE;
    bool ci_na = row.compute_instance_id == GPU_LAYERS_NVML_U32_NOT_AVAILABLE;
    if (gi_na != ci_na) return false;
    if (!gi_na && (row.gpu_instance_id > 0xFFFF || row.compute_instance_id > 0xFFFF)) return false;
  }
  return true;
}

void NvmlCollector::Collect(SampleReading* out) {
  auto started = std::chrono::steady_clock::now();
  out->started_at_ms = WallClockMs();
  out->driver_version = ReadSystemString(api_, NvmlCall::kDriverVersion);
  out->nvml_version = ReadSystemString(api_, NvmlCall::kNvmlVersion);
  out->cuda_driver_version.rc =
      CallNvml<nvmlIntOutFn>(api_, NvmlCall::kCudaDriverVersion, &out->cuda_driver_version.value);
  out->device_count.rc = CallNvml<nvmlUintOutFn>(api_, NvmlCall::kDeviceCount, &out->device_count.value);
  out->devices.clear();
  if (out->device_count.ok()) {
    // A count above any real machine is a driver fault; read what a real one could hold.
    unsigned count = out->device_count.value;
    if (count > 1024) count = 1024;
    out->devices.resize(count);
    for (unsigned i = 0; i < count; ++i) ReadDevice(i, &out->devices[i]);
  }
  out->duration_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - started).count();
}

void NvmlCollector::ReadDevice(unsigned index, DeviceReading* out) {
  out->index = index;
  nvmlDevice_t device = nullptr;
  out->handle_rc = CallNvml<nvmlHandleByIndexFn>(api_, NvmlCall::kHandleByIndex, index, &device);
  // GetCount_v2 also counts devices we may not open (NO_PERMISSION): skip them, keep the others.
  if (out->handle_rc != NVML_SUCCESS) return;

  ReadCommon(device, out);

  nvmlPciInfo_t pci;
  std::memset(&pci, 0, sizeof(pci));
  out->pci.rc = CallNvml<nvmlDevicePciFn>(api_, NvmlCall::kPciInfo, device, &pci);
  if (out->pci.ok()) {
    pci.busIdLegacy[sizeof(pci.busIdLegacy) - 1] = '\0';
    pci.busId[sizeof(pci.busId) - 1] = '\0';
    // Only _v3 fills the 32-byte busId; older generations leave the tail as reserved words.
    if (api_.symbols.Generation(NvmlCall::kPciInfo) != 0) pci.busId[0] = '\0';
    out->pci.value = pci;
  }
  out->bar1.rc = CallNvml<nvmlDeviceBar1Fn>(api_, NvmlCall::kBar1MemoryInfo, device, &out->bar1.value);
  out->utilization.rc =
      CallNvml<nvmlDeviceUtilizationFn>(api_, NvmlCall::kUtilizationRates, device, &out->utilization.value);
  out->mig_mode.rc = CallNvml<nvmlDeviceUint2Fn>(api_, NvmlCall::kMigMode, device, &out->mig_mode.value.current,
                                                 &out->mig_mode.value.pending);
  out->mig_devices.clear();
  if (out->mig_mode.ok() && out->mig_mode.value.current == 1) ReadMigDevices(device, out);
}

void NvmlCollector::ReadCommon(nvmlDevice_t device, DeviceCommonReading* out) {
  out->name = ReadDeviceString(NvmlCall::kName, device);
  out->uuid = ReadDeviceString(NvmlCall::kUuid, device);
  ReadMemory(device, &out->memory);
  for (int kind = 0; kind < kProcessKindCount; ++kind) {
    ReadProcesses(device, static_cast<ProcessKind>(kind), &out->processes[kind]);
  }
}

void NvmlCollector::ReadMigDevices(nvmlDevice_t parent, DeviceReading* out) {
  out->max_mig_devices.rc =
      CallNvml<nvmlDeviceUintFn>(api_, NvmlCall::kMaxMigDeviceCount, parent, &out->max_mig_devices.value);
  if (!out->max_mig_devices.ok()) return;
  unsigned slots = out->max_mig_devices.value;
  if (slots > 64) slots = 64;  // 7 on an H100; anything past 64 is a driver fault
  for (unsigned slot = 0; slot < slots; ++slot) {
    nvmlDevice_t mig = nullptr;
    int rc = CallNvml<nvmlMigHandleFn>(api_, NvmlCall::kMigDeviceHandleByIndex, parent, slot, &mig);
    if (rc == NVML_ERROR_NOT_FOUND) continue;  // an empty slot, not an error (nvml-abi.md 4.4)
    out->mig_devices.emplace_back();
    MigDeviceReading& reading = out->mig_devices.back();
    reading.slot = slot;
    reading.handle_rc = rc;
    if (rc != NVML_SUCCESS) continue;
    ReadCommon(mig, &reading);
    reading.gpu_instance_id.rc =
        CallNvml<nvmlDeviceUintFn>(api_, NvmlCall::kGpuInstanceId, mig, &reading.gpu_instance_id.value);
    reading.compute_instance_id.rc =
        CallNvml<nvmlDeviceUintFn>(api_, NvmlCall::kComputeInstanceId, mig, &reading.compute_instance_id.value);
  }
}

void NvmlCollector::ReadMemory(nvmlDevice_t device, Reading<MemoryValue>* out) {
  out->value = MemoryValue{};
  if (api_.symbols.Has(NvmlCall::kMemoryInfoV2)) {
    nvmlMemory_v2_t memory;
    std::memset(&memory, 0, sizeof(memory));
    memory.version = GPU_LAYERS_NVML_MEMORY_V2_VERSION;
    out->rc = CallNvml<nvmlDeviceMemoryV2Fn>(api_, NvmlCall::kMemoryInfoV2, device, &memory);
    if (out->ok()) {
      out->value = MemoryValue{2, memory.total, memory.reserved, memory.free, memory.used};
      return;
    }
    // v2 fails on some platforms where v1 works (WSL, nvml-abi.md 4.7): fall back on any failure.
  }
  nvmlMemory_v1_t memory;
  std::memset(&memory, 0, sizeof(memory));
  out->rc = CallNvml<nvmlDeviceMemoryV1Fn>(api_, NvmlCall::kMemoryInfoV1, device, &memory);
  if (out->ok()) out->value = MemoryValue{1, memory.total, 0, memory.free, memory.used};
}

void NvmlCollector::ReadProcesses(nvmlDevice_t device, ProcessKind kind, ProcessList* out) {
  out->rows.clear();
  out->row_bytes = row_bytes_[kind];
  auto fn = api_.symbols.Get<nvmlDeviceProcessesFn>(kProcessCalls[kind]);
  if (fn == nullptr) {
    out->rc = NVML_ERROR_FUNCTION_NOT_FOUND;
    return;
  }
  // Two-call pattern: ask for the count with an empty buffer, then fill with headroom, and retry
  // while processes keep appearing between the calls (nvml-abi.md 4.1).
  unsigned capacity = 0;
  unsigned count = 0;
  int rc = NVML_ERROR_INSUFFICIENT_SIZE;
  for (int attempt = 0; attempt < kProcessListAttempts; ++attempt) {
    if (row_buffer_.size() < static_cast<size_t>(capacity) * kAllocatedRowBytes) {
      row_buffer_.resize(static_cast<size_t>(capacity) * kAllocatedRowBytes);
    }
    if (capacity > 0) std::memset(row_buffer_.data(), 0, static_cast<size_t>(capacity) * kAllocatedRowBytes);
    count = capacity;
    rc = fn(device, &count, capacity > 0 ? row_buffer_.data() : nullptr);
    if (rc != NVML_ERROR_INSUFFICIENT_SIZE) break;
    if (count > kMaxProcessRows) break;
    unsigned grown = count > capacity ? count : capacity;
    capacity = grown + grown / 2 + 4;
    if (capacity > kMaxProcessRows) capacity = kMaxProcessRows;
  }
  out->rc = rc;
  if (rc != NVML_SUCCESS) return;
  if (count > capacity) {
    // Success with more rows than the buffer holds: the driver did not honour the size.
    out->rc = kRowsImplausible;
    return;
  }
  if (count == 0) return;
  DecodeProcessRows(row_buffer_.data(), count, out->row_bytes, &out->rows);
  if (ProcessRowsPlausible(out->rows)) return;
  // The chosen row size gave impossible rows: the driver writes another layout than its version
  // suggests (nvml-abi.md 1.2 lists such reports). The buffer holds 32 bytes a row, so every
  // alternative can be decoded in bounds; keep the first that is plausible.
  for (unsigned stride : {24u, 32u, 16u}) {
    if (stride == out->row_bytes) continue;
    DecodeProcessRows(row_buffer_.data(), count, stride, &out->rows);
    if (ProcessRowsPlausible(out->rows)) {
      out->row_bytes = stride;
      return;
    }
  }
  out->rows.clear();
  out->rc = kRowsImplausible;
}

Reading<std::string> NvmlCollector::ReadDeviceString(NvmlCall call, nvmlDevice_t device) {
  char buffer[GPU_LAYERS_NVML_NAME_BUFFER] = {0};
  Reading<std::string> out;
  out.rc = CallNvml<nvmlDeviceStringFn>(api_, call, device, buffer, static_cast<unsigned>(sizeof(buffer)));
  if (out.ok()) out.value = BoundedString(buffer, sizeof(buffer));
  return out;
}

}  // namespace gpu_layers
