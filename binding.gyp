# node-gyp build of the addon and of the two mock libraries. The source lists live in
# native/sources.json, which CMakeLists.txt reads too, so both builds compile the same files.
{
  # native/glibc_compat.h first in every unit (C and C++): the binaries then need at most
  # GLIBC_2.17 and GLIBCXX_3.4.22, so one prebuilt build loads on Ubuntu 20.04 and RHEL 8
  # (scripts/build/check-glibc.sh checks it).
  "target_defaults": {
    "cflags": ["-include", "<(module_root_dir)/native/glibc_compat.h"]
  },
  "targets": [
    {
      "target_name": "gpu_layers",
      "sources": ["<!@(node -p \"require('./native/sources.json').addon.join(' ')\")"],
      # node_addon_api_except turns C++ exceptions on: a std::bad_alloc on the worker thread is
      # caught and reported as a rejected promise instead of aborting the host process.
      "dependencies": ["<!(node -p \"require('node-addon-api').targets\"):node_addon_api_except"],
      "defines": ["NAPI_VERSION=8", "NODE_ADDON_API_DISABLE_DEPRECATED"],
      # -frtti (node-gyp's default is -fno-rtti; cmake-js keeps RTTI on): without RTTI, make_shared
      # calls _Sp_make_shared_tag::_S_eq, a GLIBCXX_3.4.26 symbol (gcc 9) that RHEL 8 lacks.
      "cflags_cc": ["-std=c++17", "-frtti", "-fvisibility=hidden", "-fstack-protector-strong", "-Wall", "-Wextra"],
      # Only libdl: NVML and CUDA are opened at run time, never linked, so the addon builds and
      # loads on machines without NVIDIA software. libdl.so.2 by name and kept even under
      # --as-needed: since glibc 2.34 it is an empty stub, but on older glibc it is where the
      # dlopen@GLIBC_2.2.5 that glibc_compat.h binds to lives.
      "libraries": ["-Wl,--push-state,--no-as-needed", "-l:libdl.so.2", "-Wl,--pop-state"],
      # -z nodelete: Node dlcloses an addon when the worker_thread that loaded it exits, but a
      # probe's detached thread may still be inside the addon, waiting on a wedged driver.
      "ldflags": ["-Wl,-z,nodelete"]
    },
    {
      "target_name": "mock_nvml",
      "type": "shared_library",
      "product_prefix": "lib",
      "product_name": "nvidia-ml",
      "product_extension": "so.1",
      "product_dir": "<(PRODUCT_DIR)/mock",
      "sources": ["<!@(node -p \"require('./native/sources.json').mockNvml.join(' ')\")"],
      "cflags_c": ["-std=gnu11", "-fvisibility=hidden", "-Wall", "-Wextra"],
      "libraries": ["-lpthread"]
    },
    {
      "target_name": "mock_cuda",
      "type": "shared_library",
      "product_prefix": "lib",
      "product_name": "cuda",
      "product_extension": "so.1",
      "product_dir": "<(PRODUCT_DIR)/mock",
      "sources": ["<!@(node -p \"require('./native/sources.json').mockCuda.join(' ')\")"],
      "cflags_c": ["-std=gnu11", "-fvisibility=hidden", "-Wall", "-Wextra"],
      "libraries": ["-lpthread"]
    }
  ]
}
