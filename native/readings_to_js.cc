// Readings to plain JavaScript objects; see readings_to_js.h for the conversion rules.
#include "readings_to_js.h"

#include <cmath>
#include <string>

namespace gpu_layers {

namespace {

constexpr int kRowWidth = 5;  // kind, pid, usedGpuMemory, gpuInstanceId, computeInstanceId

Napi::Value U64(Napi::Env env, uint64_t value) {
  if (value == GPU_LAYERS_NVML_U64_NOT_AVAILABLE) return env.Null();
  return Napi::Number::New(env, static_cast<double>(value));
}

Napi::Value U32(Napi::Env env, uint32_t value) {
  if (value == GPU_LAYERS_NVML_U32_NOT_AVAILABLE) return env.Null();
  return Napi::Number::New(env, value);
}

double RowU64(uint64_t value) {
  return value == GPU_LAYERS_NVML_U64_NOT_AVAILABLE ? std::nan("") : static_cast<double>(value);
}

double RowU32(uint32_t value) {
  return value == GPU_LAYERS_NVML_U32_NOT_AVAILABLE ? std::nan("") : static_cast<double>(value);
}

// Sets obj[key] to convert(value) when the call succeeded, else null; records the code in rc.
template <typename T, typename Convert>
void SetReading(Napi::Object obj, Napi::Object rc, const char* key, const Reading<T>& reading, Convert convert) {
  rc.Set(key, reading.rc);
  obj.Set(key, reading.ok() ? convert(reading.value) : obj.Env().Null());
}

Napi::Value StringValue(Napi::Env env, const std::string& value) { return Napi::String::New(env, value); }

Napi::Value MemoryToJs(Napi::Env env, const MemoryValue& memory) {
  Napi::Object out = Napi::Object::New(env);
  out.Set("version", memory.version);
  out.Set("total", U64(env, memory.total));
  // v1 has no reserved field: its used already includes it.
  out.Set("reserved", memory.version == 2 ? U64(env, memory.reserved) : env.Null());
  out.Set("free", U64(env, memory.free));
  out.Set("used", U64(env, memory.used));
  return out;
}

void SetCommon(Napi::Env env, Napi::Object out, Napi::Object rc, const DeviceCommonReading& reading) {
  auto string_value = [env](const std::string& v) { return StringValue(env, v); };
  SetReading(out, rc, "name", reading.name, string_value);
  SetReading(out, rc, "uuid", reading.uuid, string_value);
  SetReading(out, rc, "memory", reading.memory, [env](const MemoryValue& m) { return MemoryToJs(env, m); });

  size_t rows = 0;
  for (const ProcessList& list : reading.processes) rows += list.rows.size();
  Napi::Float64Array array = Napi::Float64Array::New(env, rows * kRowWidth);
  double* data = array.Data();
  Napi::Array lists = Napi::Array::New(env, kProcessKindCount);
  for (int kind = 0; kind < kProcessKindCount; ++kind) {
    const ProcessList& list = reading.processes[kind];
    Napi::Object status = Napi::Object::New(env);
    status.Set("rc", list.rc);
    status.Set("rowBytes", list.row_bytes);
    lists.Set(static_cast<uint32_t>(kind), status);
    for (const ProcessRow& row : list.rows) {
      *data++ = kind;
      *data++ = row.pid;
      *data++ = RowU64(row.used_gpu_memory);
      *data++ = RowU32(row.gpu_instance_id);
      *data++ = RowU32(row.compute_instance_id);
    }
  }
  out.Set("processRows", array);
  out.Set("processLists", lists);
}

Napi::Object MigDeviceToJs(Napi::Env env, const MigDeviceReading& reading) {
  Napi::Object out = Napi::Object::New(env);
  Napi::Object rc = Napi::Object::New(env);
  out.Set("slot", reading.slot);
  rc.Set("handle", reading.handle_rc);
  out.Set("rc", rc);
  if (reading.handle_rc != 0) return out;
  SetCommon(env, out, rc, reading);
  auto u32 = [env](unsigned v) { return U32(env, v); };
  SetReading(out, rc, "gpuInstanceId", reading.gpu_instance_id, u32);
  SetReading(out, rc, "computeInstanceId", reading.compute_instance_id, u32);
  return out;
}

Napi::Object DeviceToJs(Napi::Env env, const DeviceReading& reading) {
  Napi::Object out = Napi::Object::New(env);
  Napi::Object rc = Napi::Object::New(env);
  out.Set("index", reading.index);
  rc.Set("handle", reading.handle_rc);
  out.Set("rc", rc);
  if (reading.handle_rc != 0) return out;
  SetCommon(env, out, rc, reading);
  SetReading(out, rc, "pci", reading.pci, [env](const nvmlPciInfo_t& pci) {
    Napi::Object value = Napi::Object::New(env);
    value.Set("busId", pci.busId);
    value.Set("busIdLegacy", pci.busIdLegacy);
    value.Set("domain", pci.domain);
    value.Set("bus", pci.bus);
    value.Set("device", pci.device);
    value.Set("pciDeviceId", pci.pciDeviceId);
    value.Set("pciSubSystemId", pci.pciSubSystemId);
    return value;
  });
  SetReading(out, rc, "bar1", reading.bar1, [env](const nvmlBAR1Memory_t& bar1) {
    Napi::Object value = Napi::Object::New(env);
    value.Set("total", U64(env, bar1.bar1Total));
    value.Set("free", U64(env, bar1.bar1Free));
    value.Set("used", U64(env, bar1.bar1Used));
    return value;
  });
  SetReading(out, rc, "utilization", reading.utilization, [env](const nvmlUtilization_t& utilization) {
    Napi::Object value = Napi::Object::New(env);
    value.Set("gpu", U32(env, utilization.gpu));
    value.Set("memory", U32(env, utilization.memory));
    return value;
  });
  SetReading(out, rc, "migMode", reading.mig_mode, [env](const MigMode& mode) {
    Napi::Object value = Napi::Object::New(env);
    value.Set("current", U32(env, mode.current));
    value.Set("pending", U32(env, mode.pending));
    return value;
  });
  SetReading(out, rc, "maxMigDevices", reading.max_mig_devices, [env](unsigned v) { return U32(env, v); });
  Napi::Array mig = Napi::Array::New(env, reading.mig_devices.size());
  for (size_t i = 0; i < reading.mig_devices.size(); ++i) {
    mig.Set(static_cast<uint32_t>(i), MigDeviceToJs(env, reading.mig_devices[i]));
  }
  out.Set("migDevices", mig);
  return out;
}

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
  Napi::Object out = Napi::Object::New(env);
  Napi::Object rc = Napi::Object::New(env);
  out.Set("startedAtMs", reading.started_at_ms);
  out.Set("durationMs", reading.duration_ms);
  auto string_value = [env](const std::string& v) { return StringValue(env, v); };
  SetReading(out, rc, "driverVersion", reading.driver_version, string_value);
  SetReading(out, rc, "nvmlVersion", reading.nvml_version, string_value);
  SetReading(out, rc, "cudaDriverVersion", reading.cuda_driver_version, [env](int v) { return Napi::Number::New(env, v); });
  SetReading(out, rc, "deviceCount", reading.device_count, [env](unsigned v) { return Napi::Number::New(env, v); });
  out.Set("rc", rc);
  Napi::Array devices = Napi::Array::New(env, reading.devices.size());
  for (size_t i = 0; i < reading.devices.size(); ++i) {
    devices.Set(static_cast<uint32_t>(i), DeviceToJs(env, reading.devices[i]));
  }
  out.Set("devices", devices);
  return out;
}

}  // namespace gpu_layers
