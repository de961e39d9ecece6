# node-gyp build of the addon and of the two mock libraries. The source lists live in
# native/sources.json, which CMakeLists.txt reads too, so both builds compile the same files.
{
  "targets": [
    {
      "target_name": "gpu_layers",
      "sources": ["<!@(node -p \"require('./native/sources.json').addon.join(' ')\")"],
      # node_addon_api_except turns C++ exceptions on: a std::bad_alloc on the worker thread is
      # caught and reported as a rejected promise instead of aborting the host process.
      "dependencies": ["<!(node -p \"require('node-addon-api').targets\"):node_addon_api_except"],
      "defines": ["NAPI_VERSION=8", "NODE_ADDON_API_DISABLE_DEPRECATED"],
      "cflags_cc": ["-std=c++17", "-fvisibility=hidden", "-fstack-protector-strong", "-Wall", "-Wextra"],
      # Only libdl: NVML and CUDA are opened at run time, never linked, so the addon builds and
      # loads on machines without NVIDIA software.
      "libraries": ["-ldl"],
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
