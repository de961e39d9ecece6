// Readings to JavaScript values; see readings_to_js.h for the conversion rules.
#include "readings_to_js.h"

#include <cmath>
#include <string>

#include "sample_layout.h"

namespace gpu_layers {

namespace {

// ---------- the open reading: small, once per probe, plain objects ----------

// Sets obj[key] to convert(value) when the call succeeded, else null; records the code in rc.
template <typename T, typename Convert>
void SetReading(Napi::Object obj, Napi::Object rc, const char* key, const Reading<T>& reading, Convert convert) {
  rc.Set(key, reading.rc);
  obj.Set(key, reading.ok() ? convert(reading.value) : obj.Env().Null());
}

Napi::Value StringValue(Napi::Env env, const std::string& value) { return Napi::String::New(env, value); }

Napi::Object LibraryToJs(Napi::Env env, const LibraryReading& library) {
  Napi::Object out = Napi::Object::New(env);
  out.Set("requested", library.requested);
  out.Set("loaded", library.loaded);
  out.Set("loadError", library.load_error.empty() ? env.Null() : Napi::String::New(env, library.load_error));
  out.Set("loadedPath", library.loaded_path.empty() ? env.Null() : Napi::String::New(env, library.loaded_path));
  Napi::Object symbols = Napi::Object::New(env);
  for (const auto& entry : library.symbols) {
    symbols.Set(entry.first, entry.second.empty() ? env.Null() : Napi::String::New(env, entry.second));
  }
  out.Set("symbols", symbols);
  return out;
}

Napi::Object CudaDeviceToJs(Napi::Env env, const CudaDeviceReading& reading) {
  Napi::Object out = Napi::Object::New(env);
  Napi::Object rc = Napi::Object::New(env);
  out.Set("ordinal", reading.ordinal);
  rc.Set("handle", reading.handle_rc);
  out.Set("rc", rc);
  auto string_value = [env](const std::string& v) { return StringValue(env, v); };
  auto int_value = [env](int v) { return Napi::Number::New(env, v); };
  SetReading(out, rc, "name", reading.name, string_value);
  SetReading(out, rc, "uuidHex", reading.uuid_hex, string_value);
  SetReading(out, rc, "totalMem", reading.total_mem, [env](uint64_t v) { return Napi::Number::New(env, double(v)); });
  SetReading(out, rc, "pciDomain", reading.pci_domain, int_value);
  SetReading(out, rc, "pciBus", reading.pci_bus, int_value);
  SetReading(out, rc, "pciDevice", reading.pci_device, int_value);
  return out;
}

// ---------- the sample: records in typed arrays (sample_layout.h) ----------

double U64(uint64_t value) {
  return value == GPU_LAYERS_NVML_U64_NOT_AVAILABLE ? std::nan("") : static_cast<double>(value);
}

double U32(uint32_t value) {
  return value == GPU_LAYERS_NVML_U32_NOT_AVAILABLE ? std::nan("") : static_cast<double>(value);
}

void SetString(Napi::Array strings, size_t index, const Reading<std::string>& reading) {
  Napi::Env env = strings.Env();
  strings.Set(static_cast<uint32_t>(index), reading.ok() ? Napi::String::New(env, reading.value) : env.Null());
}

size_t RowCount(const DeviceCommonReading& reading) {
  size_t rows = 0;
  for (const ProcessList& list : reading.processes) rows += list.rows.size();
  return rows;
}

// Fills the block of fields full GPUs and MIG devices share, and appends their process rows.
void WriteCommon(double* common, const DeviceCommonReading& reading, double* rows, size_t* next_row) {
  common[common_field::nameRc] = reading.name.rc;
  common[common_field::uuidRc] = reading.uuid.rc;
  common[common_field::memoryRc] = reading.memory.rc;
  if (reading.memory.ok()) {
    const MemoryValue& m = reading.memory.value;
    common[common_field::memoryVersion] = m.version;
    common[common_field::memoryTotal] = U64(m.total);
    common[common_field::memoryReserved] = m.version == 2 ? U64(m.reserved) : std::nan("");
    common[common_field::memoryFree] = U64(m.free);
    common[common_field::memoryUsed] = U64(m.used);
  }
  const int rc_fields[kProcessKindCount] = {common_field::computeProcessesRc, common_field::graphicsProcessesRc,
                                            common_field::mpsProcessesRc};
  const int bytes_fields[kProcessKindCount] = {common_field::computeRowBytes, common_field::graphicsRowBytes,
                                               common_field::mpsRowBytes};
  common[common_field::processRowStart] = static_cast<double>(*next_row);
  for (int kind = 0; kind < kProcessKindCount; ++kind) {
    const ProcessList& list = reading.processes[kind];
    common[rc_fields[kind]] = list.rc;
    common[bytes_fields[kind]] = list.row_bytes;
    for (const ProcessRow& row : list.rows) {
      double* out = rows + (*next_row)++ * row_field::kWidth;
      out[row_field::kind] = kind;
      out[row_field::pid] = row.pid;
      out[row_field::usedGpuMemory] = U64(row.used_gpu_memory);
      out[row_field::gpuInstanceId] = U32(row.gpu_instance_id);
      out[row_field::computeInstanceId] = U32(row.compute_instance_id);
    }
  }
  common[common_field::processRowCount] = static_cast<double>(RowCount(reading));
}

void WriteDevice(double* record, const DeviceReading& reading, double* rows, size_t* next_row) {
  record[device_field::index] = reading.index;
  record[device_field::handleRc] = reading.handle_rc;
  WriteCommon(record + device_field::handleRc, reading, rows, next_row);
  record[device_field::pciRc] = reading.pci.rc;
  if (reading.pci.ok()) {
    record[device_field::pciDomain] = reading.pci.value.domain;
    record[device_field::pciBus] = reading.pci.value.bus;
    record[device_field::pciDevice] = reading.pci.value.device;
    record[device_field::pciDeviceId] = reading.pci.value.pciDeviceId;
    record[device_field::pciSubSystemId] = reading.pci.value.pciSubSystemId;
  }
  record[device_field::bar1Rc] = reading.bar1.rc;
  if (reading.bar1.ok()) {
    record[device_field::bar1Total] = U64(reading.bar1.value.bar1Total);
    record[device_field::bar1Free] = U64(reading.bar1.value.bar1Free);
    record[device_field::bar1Used] = U64(reading.bar1.value.bar1Used);
  }
  record[device_field::utilizationRc] = reading.utilization.rc;
  if (reading.utilization.ok()) {
    record[device_field::utilizationGpu] = U32(reading.utilization.value.gpu);
    record[device_field::utilizationMemory] = U32(reading.utilization.value.memory);
  }
  record[device_field::migModeRc] = reading.mig_mode.rc;
  if (reading.mig_mode.ok()) {
    record[device_field::migModeCurrent] = U32(reading.mig_mode.value.current);
    record[device_field::migModePending] = U32(reading.mig_mode.value.pending);
  }
  record[device_field::maxMigDevicesRc] = reading.max_mig_devices.rc;
  if (reading.max_mig_devices.ok()) record[device_field::maxMigDevices] = U32(reading.max_mig_devices.value);
}

void WriteMigDevice(double* record, size_t parent, const MigDeviceReading& reading, double* rows, size_t* next_row) {
  record[mig_field::parent] = static_cast<double>(parent);
  record[mig_field::slot] = reading.slot;
  record[mig_field::handleRc] = reading.handle_rc;
  WriteCommon(record + mig_field::handleRc, reading, rows, next_row);
  record[mig_field::gpuInstanceIdRc] = reading.gpu_instance_id.rc;
  if (reading.gpu_instance_id.ok()) record[mig_field::gpuInstanceId] = U32(reading.gpu_instance_id.value);
  record[mig_field::computeInstanceIdRc] = reading.compute_instance_id.rc;
  if (reading.compute_instance_id.ok()) record[mig_field::computeInstanceId] = U32(reading.compute_instance_id.value);
}

template <size_t N>
Napi::Array Names(Napi::Env env, const char* const (&names)[N]) {
  Napi::Array out = Napi::Array::New(env, N);
  for (size_t i = 0; i < N; ++i) out.Set(static_cast<uint32_t>(i), names[i]);
  return out;
}

}  // namespace

Napi::Object OpenReadingToJs(Napi::Env env, const OpenReading& reading) {
  Napi::Object out = Napi::Object::New(env);
  out.Set("nvml", LibraryToJs(env, reading.nvml));
  out.Set("initRc", reading.init_rc);
  out.Set("initErrorString",
          reading.init_error_string.empty() ? env.Null() : Napi::String::New(env, reading.init_error_string));
  out.Set("driverVersion", reading.driver_version.empty() ? env.Null() : Napi::String::New(env, reading.driver_version));
  Napi::Array row_bytes = Napi::Array::New(env, kProcessKindCount);
  for (int kind = 0; kind < kProcessKindCount; ++kind) {
    row_bytes.Set(static_cast<uint32_t>(kind), reading.process_row_bytes[kind]);
  }
  out.Set("processRowBytes", row_bytes);

  Napi::Object cuda = Napi::Object::New(env);
  cuda.Set("requested", reading.cuda_requested);
  cuda.Set("library", LibraryToJs(env, reading.cuda));
  cuda.Set("initRc", reading.cuda_init_rc);
  Napi::Object rc = Napi::Object::New(env);
  auto int_value = [env](int v) { return Napi::Number::New(env, v); };
  SetReading(cuda, rc, "driverVersion", reading.cuda_driver_version, int_value);
  SetReading(cuda, rc, "deviceCount", reading.cuda_device_count, int_value);
  cuda.Set("rc", rc);
  Napi::Array devices = Napi::Array::New(env, reading.cuda_devices.size());
  for (size_t i = 0; i < reading.cuda_devices.size(); ++i) {
    devices.Set(static_cast<uint32_t>(i), CudaDeviceToJs(env, reading.cuda_devices[i]));
  }
  cuda.Set("devices", devices);
  out.Set("cuda", cuda);
  return out;
}

Napi::Object SampleReadingToJs(Napi::Env env, const SampleReading& reading) {
  size_t mig_count = 0;
  size_t row_count = 0;
  for (const DeviceReading& device : reading.devices) {
    row_count += RowCount(device);
    mig_count += device.mig_devices.size();
    for (const MigDeviceReading& mig : device.mig_devices) row_count += RowCount(mig);
  }
  // Typed arrays start zeroed: the fields of a failed call stay 0 and JavaScript reads its rc.
  Napi::Float64Array system = Napi::Float64Array::New(env, system_field::kWidth);
  Napi::Float64Array devices = Napi::Float64Array::New(env, reading.devices.size() * device_field::kWidth);
  Napi::Float64Array migs = Napi::Float64Array::New(env, mig_count * mig_field::kWidth);
  Napi::Float64Array rows = Napi::Float64Array::New(env, row_count * row_field::kWidth);
  Napi::Array system_strings = Napi::Array::New(env, system_string::kWidth);
  Napi::Array device_strings = Napi::Array::New(env, reading.devices.size() * device_string::kWidth);
  Napi::Array mig_strings = Napi::Array::New(env, mig_count * mig_string::kWidth);

  double* s = system.Data();
  s[system_field::startedAtMs] = reading.started_at_ms;
  s[system_field::durationMs] = reading.duration_ms;
  s[system_field::driverVersionRc] = reading.driver_version.rc;
  s[system_field::nvmlVersionRc] = reading.nvml_version.rc;
  s[system_field::cudaDriverVersionRc] = reading.cuda_driver_version.rc;
  s[system_field::cudaDriverVersion] = reading.cuda_driver_version.value;
  s[system_field::deviceCountRc] = reading.device_count.rc;
  s[system_field::deviceCount] = reading.device_count.value;
  SetString(system_strings, system_string::driverVersion, reading.driver_version);
  SetString(system_strings, system_string::nvmlVersion, reading.nvml_version);

  size_t next_row = 0;
  size_t next_mig = 0;
  for (size_t i = 0; i < reading.devices.size(); ++i) {
    const DeviceReading& device = reading.devices[i];
    WriteDevice(devices.Data() + i * device_field::kWidth, device, rows.Data(), &next_row);
    size_t base = i * device_string::kWidth;
    SetString(device_strings, base + device_string::name, device.name);
    SetString(device_strings, base + device_string::uuid, device.uuid);
    SetString(device_strings, base + device_string::busId, {device.pci.rc, device.pci.ok() ? device.pci.value.busId : ""});
    SetString(device_strings, base + device_string::busIdLegacy,
              {device.pci.rc, device.pci.ok() ? device.pci.value.busIdLegacy : ""});
    for (const MigDeviceReading& mig : device.mig_devices) {
      WriteMigDevice(migs.Data() + next_mig * mig_field::kWidth, i, mig, rows.Data(), &next_row);
      SetString(mig_strings, next_mig * mig_string::kWidth + mig_string::name, mig.name);
      SetString(mig_strings, next_mig * mig_string::kWidth + mig_string::uuid, mig.uuid);
      ++next_mig;
    }
  }

  Napi::Object out = Napi::Object::New(env);
  out.Set("system", system);
  out.Set("systemStrings", system_strings);
  out.Set("devices", devices);
  out.Set("deviceStrings", device_strings);
  out.Set("migDevices", migs);
  out.Set("migStrings", mig_strings);
  out.Set("processRows", rows);
  return out;
}

Napi::Object SampleLayoutToJs(Napi::Env env) {
#define GPU_LAYERS_NAME_ENTRY(name) #name,
  static const char* const system[] = {GPU_LAYERS_SYSTEM_FIELDS(GPU_LAYERS_NAME_ENTRY)};
  static const char* const device[] = {GPU_LAYERS_DEVICE_FIELDS(GPU_LAYERS_NAME_ENTRY)};
  static const char* const mig[] = {GPU_LAYERS_MIG_FIELDS(GPU_LAYERS_NAME_ENTRY)};
  static const char* const row[] = {GPU_LAYERS_PROCESS_ROW_FIELDS(GPU_LAYERS_NAME_ENTRY)};
  static const char* const system_strings[] = {GPU_LAYERS_SYSTEM_STRINGS(GPU_LAYERS_NAME_ENTRY)};
  static const char* const device_strings[] = {GPU_LAYERS_DEVICE_STRINGS(GPU_LAYERS_NAME_ENTRY)};
  static const char* const mig_strings[] = {GPU_LAYERS_MIG_STRINGS(GPU_LAYERS_NAME_ENTRY)};
#undef GPU_LAYERS_NAME_ENTRY
  Napi::Object out = Napi::Object::New(env);
  out.Set("system", Names(env, system));
  out.Set("device", Names(env, device));
  out.Set("migDevice", Names(env, mig));
  out.Set("processRow", Names(env, row));
  out.Set("systemStrings", Names(env, system_strings));
  out.Set("deviceStrings", Names(env, device_strings));
  out.Set("migStrings", Names(env, mig_strings));
  return out;
}

}  // namespace gpu_layers
