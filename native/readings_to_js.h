/*
 * Converts readings into JavaScript values in NVML's own units. The open reading (once per probe)
 * becomes plain objects, every call's return code in an `rc` object beside the values. A sample
 * becomes typed-array records in the layout of sample_layout.h, with NVML's all-ones "not
 * available" sentinel as NaN. No other conversion is made.
 */
#ifndef GPU_LAYERS_READINGS_TO_JS_H_
#define GPU_LAYERS_READINGS_TO_JS_H_

#include <napi.h>

#include "readings.h"

namespace gpu_layers {

Napi::Object OpenReadingToJs(Napi::Env env, const OpenReading& reading);
Napi::Object SampleReadingToJs(Napi::Env env, const SampleReading& reading);
// The field names of the sample layout, for JavaScript to look offsets up by name.
Napi::Object SampleLayoutToJs(Napi::Env env);

}  // namespace gpu_layers

#endif  // GPU_LAYERS_READINGS_TO_JS_H_
