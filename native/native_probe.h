// The NativeProbe class exported to JavaScript; see native_probe.cc.
#ifndef GPU_LAYERS_NATIVE_PROBE_H_
#define GPU_LAYERS_NATIVE_PROBE_H_

#include <napi.h>

namespace gpu_layers {

Napi::Function DefineNativeProbe(Napi::Env env);

}  // namespace gpu_layers

#endif  // GPU_LAYERS_NATIVE_PROBE_H_
