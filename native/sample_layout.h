/*
 * The layout a sample crosses from C++ to JavaScript in: fixed-width records of numbers in
 * Float64Arrays (one record per device, per MIG device, per process row) plus arrays of strings,
 * the way Node's own fs.stat hands its figures over. Building hundreds of small objects through
 * Node-API costs more than the NVML calls themselves; filling a typed array costs nothing, and
 * JavaScript builds objects from it far faster.
 *
 * The field lists below are the single definition of the layout. The addon exports the names
 * (sampleLayout), and TypeScript looks every field up by name when it loads the addon, so the
 * two sides cannot silently disagree about an offset.
 */
#ifndef GPU_LAYERS_SAMPLE_LAYOUT_H_
#define GPU_LAYERS_SAMPLE_LAYOUT_H_

#define GPU_LAYERS_SYSTEM_FIELDS(X)                                                               \
  X(startedAtMs) X(durationMs) X(driverVersionRc) X(nvmlVersionRc) X(cudaDriverVersionRc)          \
  X(cudaDriverVersion) X(deviceCountRc) X(deviceCount)

// Shared by full GPUs and MIG devices. Process rows of a record are rows
// [processRowStart, processRowStart + processRowCount) of the processRows array.
#define GPU_LAYERS_COMMON_FIELDS(X)                                                               \
  X(handleRc) X(nameRc) X(uuidRc) X(memoryRc) X(memoryVersion) X(memoryTotal) X(memoryReserved)    \
  X(memoryFree) X(memoryUsed) X(computeProcessesRc) X(computeRowBytes) X(graphicsProcessesRc)      \
  X(graphicsRowBytes) X(mpsProcessesRc) X(mpsRowBytes) X(processRowStart) X(processRowCount)

#define GPU_LAYERS_DEVICE_FIELDS(X)                                                               \
  X(index) GPU_LAYERS_COMMON_FIELDS(X) X(pciRc) X(pciDomain) X(pciBus) X(pciDevice) X(pciDeviceId) \
  X(pciSubSystemId) X(bar1Rc) X(bar1Total) X(bar1Free) X(bar1Used) X(utilizationRc)                \
  X(utilizationGpu) X(utilizationMemory) X(migModeRc) X(migModeCurrent) X(migModePending)          \
  X(maxMigDevicesRc) X(maxMigDevices)

// parent: the position of the MIG device's GPU in the devices array.
#define GPU_LAYERS_MIG_FIELDS(X)                                                                  \
  X(parent) X(slot) GPU_LAYERS_COMMON_FIELDS(X) X(gpuInstanceIdRc) X(gpuInstanceId)                \
  X(computeInstanceIdRc) X(computeInstanceId)

// kind: 0 compute, 1 graphics, 2 MPS.
#define GPU_LAYERS_PROCESS_ROW_FIELDS(X) X(kind) X(pid) X(usedGpuMemory) X(gpuInstanceId) X(computeInstanceId)

#define GPU_LAYERS_SYSTEM_STRINGS(X) X(driverVersion) X(nvmlVersion)
#define GPU_LAYERS_DEVICE_STRINGS(X) X(name) X(uuid) X(busId) X(busIdLegacy)
#define GPU_LAYERS_MIG_STRINGS(X) X(name) X(uuid)

namespace gpu_layers {

#define GPU_LAYERS_ENUM_ENTRY(name) name,
// One namespace per list: several lists share field names (name, uuid, handleRc, ...).
namespace system_field { enum : int { GPU_LAYERS_SYSTEM_FIELDS(GPU_LAYERS_ENUM_ENTRY) kWidth }; }
namespace common_field { enum : int { GPU_LAYERS_COMMON_FIELDS(GPU_LAYERS_ENUM_ENTRY) kWidth }; }
namespace device_field { enum : int { GPU_LAYERS_DEVICE_FIELDS(GPU_LAYERS_ENUM_ENTRY) kWidth }; }
namespace mig_field { enum : int { GPU_LAYERS_MIG_FIELDS(GPU_LAYERS_ENUM_ENTRY) kWidth }; }
namespace row_field { enum : int { GPU_LAYERS_PROCESS_ROW_FIELDS(GPU_LAYERS_ENUM_ENTRY) kWidth }; }
namespace system_string { enum : int { GPU_LAYERS_SYSTEM_STRINGS(GPU_LAYERS_ENUM_ENTRY) kWidth }; }
namespace device_string { enum : int { GPU_LAYERS_DEVICE_STRINGS(GPU_LAYERS_ENUM_ENTRY) kWidth }; }
namespace mig_string { enum : int { GPU_LAYERS_MIG_STRINGS(GPU_LAYERS_ENUM_ENTRY) kWidth }; }
#undef GPU_LAYERS_ENUM_ENTRY

// The shared fields sit in one block in both records, so one writer fills both.
static_assert(device_field::processRowCount - device_field::handleRc == common_field::processRowCount, "common block");
static_assert(mig_field::processRowCount - mig_field::handleRc == common_field::processRowCount, "common block");

}  // namespace gpu_layers

#endif  // GPU_LAYERS_SAMPLE_LAYOUT_H_
