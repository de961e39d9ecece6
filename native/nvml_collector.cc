// One NVML sample into plain structs; see nvml_collector.h.
#include "nvml_collector.h"

#include <algorithm>
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
constexpr unsigned kMaxMigSlots = 64;  // 7 on an H100; anything past 64 is a driver fault

// nvmlReturn_t is never negative; a library that returns a negative code is faulty, and the code
// must not pass for one of the addon's own statuses (readings.h).
int ValidNvmlReturn(int rc) { return rc < 0 ? NVML_ERROR_UNKNOWN : rc; }

template <typename Fn, typename... Args>
int CallNvml(const NvmlApi& api, NvmlCall call, Args... args) {
  return ValidNvmlReturn(api.symbols.template CallOr<Fn>(NVML_ERROR_FUNCTION_NOT_FOUND, call, args...));
}

// NVML promises NUL-terminated strings; a faulty driver (or the fault matrix) may fill the whole
// buffer without one. The length is then never taken from strlen, and the text is not used: it is
// cut off at an unknown point, so the field becomes null with its own status.
void SetBoundedString(const char* buffer, size_t size, Reading<std::string>* out) {
  size_t length = strnlen(buffer, size);
  if (length == size) {
    out->rc = kStringUnterminated;
    return;
  }
  out->value.assign(buffer, length);
}

Reading<std::string> ReadSystemString(const NvmlApi& api, NvmlCall call) {
  char buffer[GPU_LAYERS_NVML_VERSION_BUFFER] = {0};
  Reading<std::string> out;
  out.rc = CallNvml<nvmlStringFn>(api, call, buffer, static_cast<unsigned>(sizeof(buffer)));
  if (out.ok()) SetBoundedString(buffer, sizeof(buffer), &out);
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

bool InstanceIdsFit(const std::vector<ProcessRow>& rows, const InstanceIdRule& ids) {
  for (const ProcessRow& row : rows) {
    bool na = row.gpu_instance_id == GPU_LAYERS_NVML_U32_NOT_AVAILABLE;
    // Every row of one list has ids, or none has.
    if (na != (rows.front().gpu_instance_id == GPU_LAYERS_NVML_U32_NOT_AVAILABLE)) return false;
    if (ids.kind == InstanceIdRule::kAbsent && !na) return false;
    if (ids.kind == InstanceIdRule::kPresent) {
      if (na) return false;
      std::pair<uint32_t, uint32_t> pair(row.gpu_instance_id, row.compute_instance_id);
      if (!ids.pairs.empty() && std::find(ids.pairs.begin(), ids.pairs.end(), pair) == ids.pairs.end()) return false;
    }
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

  // MIG first: whether the rows' instance ids must be there, and which pairs, helps tell the
  // process row size apart (nvml-abi.md 1.2).
  out->mig_mode.rc = CallNvml<nvmlDeviceUint2Fn>(api_, NvmlCall::kMigMode, device, &out->mig_mode.value.current,
                                                 &out->mig_mode.value.pending);
  out->mig_devices.clear();
  InstanceIdRule ids;
  if (out->mig_mode.ok() && out->mig_mode.value.current == 0) ids.kind = InstanceIdRule::kAbsent;
  if (out->mig_mode.ok() && out->mig_mode.value.current == 1) {
    ReadMigDevices(device, out);
    ids.kind = InstanceIdRule::kPresent;
    // The pairs are known only when every slot was read.
    bool all_read = out->max_mig_devices.ok() && out->max_mig_devices.value <= kMaxMigSlots;
    for (const MigDeviceReading& mig : out->mig_devices) {
      if (!all_read) break;
      if (!mig.gpu_instance_id.ok() || !mig.compute_instance_id.ok() ||
          mig.gpu_instance_id.value == GPU_LAYERS_NVML_U32_NOT_AVAILABLE) {
        ids.pairs.clear();  // a MIG device whose pair is unknown: any pair may be its
        break;
      }
      ids.pairs.emplace_back(mig.gpu_instance_id.value, mig.compute_instance_id.value);
    }
  }
  ReadCommon(device, ids, out);

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
}

void NvmlCollector::ReadCommon(nvmlDevice_t device, const InstanceIdRule& ids, DeviceCommonReading* out) {
  out->name = ReadDeviceString(NvmlCall::kName, device);
  out->uuid = ReadDeviceString(NvmlCall::kUuid, device);
  ReadMemory(device, &out->memory);
  for (int kind = 0; kind < kProcessKindCount; ++kind) {
    ReadProcesses(device, static_cast<ProcessKind>(kind), ids, &out->processes[kind]);
  }
}

void NvmlCollector::ReadMigDevices(nvmlDevice_t parent, DeviceReading* out) {
  out->max_mig_devices.rc =
      CallNvml<nvmlDeviceUintFn>(api_, NvmlCall::kMaxMigDeviceCount, parent, &out->max_mig_devices.value);
  if (!out->max_mig_devices.ok()) return;
  unsigned slots = out->max_mig_devices.value;
  if (slots > kMaxMigSlots) slots = kMaxMigSlots;
  for (unsigned slot = 0; slot < slots; ++slot) {
    nvmlDevice_t mig = nullptr;
    int rc = CallNvml<nvmlMigHandleFn>(api_, NvmlCall::kMigDeviceHandleByIndex, parent, slot, &mig);
    if (rc == NVML_ERROR_NOT_FOUND) continue;  // an empty slot, not an error (nvml-abi.md 4.4)
    out->mig_devices.emplace_back();
    MigDeviceReading& reading = out->mig_devices.back();
    reading.slot = slot;
    reading.handle_rc = rc;
    if (rc != NVML_SUCCESS) continue;
    reading.gpu_instance_id.rc =
        CallNvml<nvmlDeviceUintFn>(api_, NvmlCall::kGpuInstanceId, mig, &reading.gpu_instance_id.value);
    reading.compute_instance_id.rc =
        CallNvml<nvmlDeviceUintFn>(api_, NvmlCall::kComputeInstanceId, mig, &reading.compute_instance_id.value);
    // Every process of a MIG device runs in its own GPU and compute instance.
    InstanceIdRule ids;
    ids.kind = InstanceIdRule::kPresent;
    if (reading.gpu_instance_id.ok() && reading.compute_instance_id.ok() &&
        reading.gpu_instance_id.value != GPU_LAYERS_NVML_U32_NOT_AVAILABLE) {
      ids.pairs.emplace_back(reading.gpu_instance_id.value, reading.compute_instance_id.value);
    }
    ReadCommon(mig, ids, &reading);
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

// Decodes `count` rows at `stride` and says whether that is the layout the driver wrote: nothing
// past count * stride within the 32 bytes a row can take (the buffer was zeroed), and instance ids
// as `ids` says. Whether the values are plausible is another question (ProcessRowsPlausible).
bool NvmlCollector::LayoutFits(unsigned count, unsigned stride, const InstanceIdRule& ids,
                               std::vector<ProcessRow>* rows) const {
  size_t end = static_cast<size_t>(count) * kAllocatedRowBytes;
  for (size_t i = static_cast<size_t>(count) * stride; i < end; ++i) {
    if (row_buffer_[i] != 0) return false;
  }
  DecodeProcessRows(row_buffer_.data(), count, stride, rows);
  // 16-byte (v1) rows carry no instance ids: nothing to check them against.
  return stride < sizeof(nvmlProcessInfo_v2_t) || InstanceIdsFit(*rows, ids);
}

void NvmlCollector::ReadProcesses(nvmlDevice_t device, ProcessKind kind, const InstanceIdRule& ids, ProcessList* out) {
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
    rc = ValidNvmlReturn(fn(device, &count, capacity > 0 ? row_buffer_.data() : nullptr));
    if (rc != NVML_ERROR_INSUFFICIENT_SIZE) break;
    // More rows than any GPU runs: claimed at once, the count itself is a fault; reached by
    // growing between calls, the list kept growing (INSUFFICIENT_SIZE stays).
    if (count > kMaxProcessRows) {
      if (attempt == 0) rc = kCountImplausible;
      break;
    }
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
  // The driver may write another layout than its version suggests (nvml-abi.md 1.2 lists such
  // reports). The buffer holds 32 bytes a row, so every size can be decoded in bounds. When the
  // expected size fits the layout, its rows are the answer, plausible or not; another size is
  // taken only when the expected one does not fit, and only with plausible rows. Then once more
  // allowing ids with MIG off (the same on every row), so that a driver which reports 0 there
  // instead of "not available" still gets its processes read.
  InstanceIdRule lenient = ids;
  if (lenient.kind == InstanceIdRule::kAbsent) lenient.kind = InstanceIdRule::kAny;
  const unsigned expected = out->row_bytes;
  for (const InstanceIdRule* rule : {&ids, static_cast<const InstanceIdRule*>(&lenient)}) {
    if (rule == &lenient && lenient.kind == ids.kind) break;
    if (LayoutFits(count, expected, *rule, &out->rows)) {
      if (ProcessRowsPlausible(out->rows)) return;
      break;
    }
    for (unsigned stride : {24u, 32u, 16u}) {
      if (stride != expected && LayoutFits(count, stride, *rule, &out->rows) && ProcessRowsPlausible(out->rows)) {
        out->row_bytes = stride;
        return;
      }
    }
  }
  out->rows.clear();
  out->rc = kRowsImplausible;
}

Reading<std::string> NvmlCollector::ReadDeviceString(NvmlCall call, nvmlDevice_t device) {
  char buffer[GPU_LAYERS_NVML_NAME_BUFFER] = {0};
  Reading<std::string> out;
  out.rc = CallNvml<nvmlDeviceStringFn>(api_, call, device, buffer, static_cast<unsigned>(sizeof(buffer)));
  if (out.ok()) SetBoundedString(buffer, sizeof(buffer), &out);
  return out;
}

}  // namespace gpu_layers
