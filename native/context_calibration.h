// retainPrimaryContexts(), for the calibration child process only; see context_calibration.cc.
#ifndef GPU_LAYERS_CONTEXT_CALIBRATION_H_
#define GPU_LAYERS_CONTEXT_CALIBRATION_H_

#include <napi.h>

namespace gpu_layers {

Napi::Value RetainPrimaryContexts(const Napi::CallbackInfo& info);

}  // namespace gpu_layers

#endif  // GPU_LAYERS_CONTEXT_CALIBRATION_H_
