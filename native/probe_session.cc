// Load, initialise, enumerate CUDA devices without a context, sample, shut down.
#include "probe_session.h"

#include <cstdio>
#include <cstring>

namespace gpu_layers {

namespace {

template <typename Table>
void DescribeLibrary(const DynamicLibrary& library, const Table& symbols, LibraryReading* out) {
  out->requested = library.requested_name();
  out->loaded = library.loaded();
  out->load_error = library.error();
  out->loaded_path = library.loaded_path();
  out->symbols.clear();
  if (!library.loaded()) return;
  for (int call = 0; call < Table::size(); ++call) {
    const char* resolved = symbols.ResolvedName(call);
    out->symbols.emplace_back(symbols.Key(call), resolved != nullptr ? resolved : "");
  }
}

template <typename Fn, typename... Args>
int CallCuda(const CudaApi& api, CudaCall call, Args... args) {
  return api.symbols.template CallOr<Fn>(CUDA_ERROR_NOT_FOUND, call, args...);
}

std::string UuidHex(const CUuuid& uuid) {
  char hex[33];
  for (int i = 0; i < 16; ++i) std::snprintf(hex + 2 * i, 3, "%02x", static_cast<unsigned char>(uuid.bytes[i]));
  return std::string(hex, 32);
}

}  // namespace

void ProbeSession::Open(const ProbeConfig& config, OpenReading* out) {
  // CUDA first and whatever NVML does: when NVML fails, what CUDA says (no device, the driver's
  // CUDA version) is part of the explanation.
  out->cuda_requested = !config.cuda_library.empty();
  if (out->cuda_requested) OpenCuda(config.cuda_library, out);

  nvml_.Load(config.nvml_library);
  DescribeLibrary(nvml_.library, nvml_.symbols, &out->nvml);
  if (!nvml_.library.loaded()) return;

  auto init = nvml_.symbols.Get<nvmlVoidFn>(NvmlCall::kInit);
  out->init_rc = init != nullptr ? init() : NVML_ERROR_FUNCTION_NOT_FOUND;
  if (out->init_rc < 0) out->init_rc = NVML_ERROR_UNKNOWN;  // never an nvmlReturn_t: a faulty library
  if (out->init_rc != NVML_SUCCESS) {
    auto error_string = nvml_.symbols.Get<nvmlErrorStringFn>(NvmlCall::kErrorString);
    const char* text = error_string != nullptr ? error_string(out->init_rc) : nullptr;
    if (text != nullptr) out->init_error_string = text;
    return;
  }
  nvml_initialised_ = true;

  char version[GPU_LAYERS_NVML_VERSION_BUFFER] = {0};
  auto driver_version = nvml_.symbols.Get<nvmlStringFn>(NvmlCall::kDriverVersion);
  // A version that fills the whole buffer (no NUL) is cut off somewhere: treat it as unknown.
  if (driver_version != nullptr && driver_version(version, sizeof(version)) == NVML_SUCCESS &&
      strnlen(version, sizeof(version)) < sizeof(version)) {
    out->driver_version = version;
  }
  const NvmlCall process_calls[kProcessKindCount] = {NvmlCall::kComputeProcesses, NvmlCall::kGraphicsProcesses,
                                                     NvmlCall::kMpsComputeProcesses};
  for (int kind = 0; kind < kProcessKindCount; ++kind) {
    out->process_row_bytes[kind] = ProcessRowBytes(nvml_.symbols, process_calls[kind], out->driver_version);
  }
  collector_ = std::make_unique<NvmlCollector>(nvml_, out->process_row_bytes);
}

// CUDA is read once: the driver fixes its device list at cuInit, and only context-free calls are
// made, so the probe never shows up in NVML's process list or costs device memory.
void ProbeSession::OpenCuda(const std::string& library_name, OpenReading* out) {
  cuda_.Load(library_name);
  DescribeLibrary(cuda_.library, cuda_.symbols, &out->cuda);
  if (!cuda_.library.loaded()) return;
  out->cuda_init_rc = CallCuda<cuInitFn>(cuda_, CudaCall::kInit, 0u);
  // cuDriverGetVersion works even when cuInit fails (no device): it reports the driver's CUDA.
  out->cuda_driver_version.rc =
      CallCuda<cuIntOutFn>(cuda_, CudaCall::kDriverGetVersion, &out->cuda_driver_version.value);
  if (out->cuda_init_rc != CUDA_SUCCESS) return;
  out->cuda_device_count.rc = CallCuda<cuIntOutFn>(cuda_, CudaCall::kDeviceGetCount, &out->cuda_device_count.value);
  if (!out->cuda_device_count.ok()) return;
  int count = out->cuda_device_count.value;
  if (count < 0) count = 0;
  if (count > 1024) count = 1024;
  for (int ordinal = 0; ordinal < count; ++ordinal) {
    out->cuda_devices.emplace_back();
    CudaDeviceReading& device_out = out->cuda_devices.back();
    device_out.ordinal = ordinal;
    // Not 0: that is the first device, and a driver that reports success without writing the
    // handle would make every ordinal read the first device's figures.
    CUdevice device = -1;
    device_out.handle_rc = CallCuda<cuDeviceGetFn>(cuda_, CudaCall::kDeviceGet, &device, ordinal);
    if (device_out.handle_rc != CUDA_SUCCESS) continue;
    char name[256] = {0};
    device_out.name.rc = CallCuda<cuDeviceGetNameFn>(cuda_, CudaCall::kDeviceGetName, name,
                                                     static_cast<int>(sizeof(name) - 1), device);
    // The driver was given sizeof(name) - 1 bytes: filling all of them means the name is cut off.
    size_t name_length = strnlen(name, sizeof(name) - 1);
    if (device_out.name.ok() && name_length == sizeof(name) - 1) device_out.name.rc = kStringUnterminated;
    if (device_out.name.ok()) device_out.name.value = std::string(name, name_length);
    CUuuid uuid{};
    device_out.uuid_hex.rc = CallCuda<cuDeviceGetUuidFn>(cuda_, CudaCall::kDeviceGetUuid, &uuid, device);
    if (device_out.uuid_hex.ok()) device_out.uuid_hex.value = UuidHex(uuid);
    size_t total = 0;
    device_out.total_mem.rc = CallCuda<cuDeviceTotalMemFn>(cuda_, CudaCall::kDeviceTotalMem, &total, device);
    device_out.total_mem.value = total;
    device_out.pci_domain.rc = CallCuda<cuDeviceGetAttributeFn>(cuda_, CudaCall::kDeviceGetAttribute,
                                                                &device_out.pci_domain.value,
                                                                GPU_LAYERS_CU_ATTR_PCI_DOMAIN_ID, device);
    device_out.pci_bus.rc = CallCuda<cuDeviceGetAttributeFn>(cuda_, CudaCall::kDeviceGetAttribute,
                                                             &device_out.pci_bus.value, GPU_LAYERS_CU_ATTR_PCI_BUS_ID,
                                                             device);
    device_out.pci_device.rc = CallCuda<cuDeviceGetAttributeFn>(cuda_, CudaCall::kDeviceGetAttribute,
                                                                &device_out.pci_device.value,
                                                                GPU_LAYERS_CU_ATTR_PCI_DEVICE_ID, device);
  }
}

void ProbeSession::Sample(SampleReading* out) {
  if (collector_ == nullptr) return;
  collector_->Collect(out);
}

void ProbeSession::Close() {
  if (!nvml_initialised_) return;
  nvml_initialised_ = false;
  collector_.reset();
  auto shutdown = nvml_.symbols.Get<nvmlVoidFn>(NvmlCall::kShutdown);
  if (shutdown != nullptr) shutdown();
}

}  // namespace gpu_layers
