/*
 * One probe's native state: the loaded NVML and CUDA libraries, NVML's init/shutdown pairing and
 * the collector. Open() loads and initialises once; Sample() reads; Close() shuts NVML down once.
 * Everything here runs on the probe's worker thread; nothing here knows about JavaScript.
 */
#ifndef GPU_LAYERS_PROBE_SESSION_H_
#define GPU_LAYERS_PROBE_SESSION_H_

#include <memory>
#include <string>

#include "cuda_api.h"
#include "nvml_api.h"
#include "nvml_collector.h"
#include "readings.h"

namespace gpu_layers {

struct ProbeConfig {
  std::string nvml_library;  // dlopen name or path
  std::string cuda_library;  // empty: do not load CUDA
};

class ProbeSession {
 public:
  void Open(const ProbeConfig& config, OpenReading* out);
  void Sample(SampleReading* out);
  void Close();

 private:
  void OpenCuda(const std::string& library_name, OpenReading* out);

  NvmlApi nvml_;
  CudaApi cuda_;
  bool nvml_initialised_ = false;
  std::unique_ptr<NvmlCollector> collector_;
};

}  // namespace gpu_layers

#endif  // GPU_LAYERS_PROBE_SESSION_H_
