/*
 * A small wrapper over dlopen/dlsym/dlinfo. Libraries are opened with RTLD_NOW | RTLD_LOCAL so
 * NVML's symbols never leak into the global namespace (another NVML user may share the process)
 * and a missing symbol shows up as a null pointer from dlsym, never as a crash at call time.
 */
#ifndef GPU_LAYERS_DYNAMIC_LIBRARY_H_
#define GPU_LAYERS_DYNAMIC_LIBRARY_H_

#include <string>

namespace gpu_layers {

class DynamicLibrary {
 public:
  DynamicLibrary() = default;
  // Never dlclose: a call wedged inside the driver may still be running on a detached worker
  // thread, and unloading the code under it would crash the host. pynvml never unloads either.
  ~DynamicLibrary() = default;
  DynamicLibrary(const DynamicLibrary&) = delete;
  DynamicLibrary& operator=(const DynamicLibrary&) = delete;

  bool Open(const std::string& name);
  bool loaded() const { return handle_ != nullptr; }
  const std::string& requested_name() const { return requested_name_; }
  const std::string& error() const { return error_; }
  // The file the dynamic linker actually mapped (resolves "libnvidia-ml.so.1" to a full path).
  const std::string& loaded_path() const { return loaded_path_; }
  void* Symbol(const char* name) const;

 private:
  void* handle_ = nullptr;
  std::string requested_name_;
  std::string error_;
  std::string loaded_path_;
};

}  // namespace gpu_layers

#endif  // GPU_LAYERS_DYNAMIC_LIBRARY_H_
