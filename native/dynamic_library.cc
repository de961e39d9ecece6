// dlopen/dlsym wrapper; see dynamic_library.h for the loading rules.
#include "dynamic_library.h"

#include <dlfcn.h>
#include <link.h>

namespace gpu_layers {

bool DynamicLibrary::Open(const std::string& name) {
  requested_name_ = name;
  dlerror();
  handle_ = dlopen(name.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (handle_ == nullptr) {
    const char* message = dlerror();
    error_ = message != nullptr ? message : "dlopen failed";
    return false;
  }
  struct link_map* map = nullptr;
  if (dlinfo(handle_, RTLD_DI_LINKMAP, &map) == 0 && map != nullptr && map->l_name != nullptr) {
    loaded_path_ = map->l_name;
  }
  return true;
}

void* DynamicLibrary::Symbol(const char* name) const {
  if (handle_ == nullptr) return nullptr;
  return dlsym(handle_, name);
}

}  // namespace gpu_layers
