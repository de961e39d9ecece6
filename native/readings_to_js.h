/*
 * Converts readings into plain JavaScript values, field for field, in NVML's own units. The only
 * conversions made: NVML's all-ones "not available" sentinel becomes null (NaN inside row arrays),
 * every call's return code goes into an `rc` object beside the values, and process rows cross as
 * one Float64Array per device (creating hundreds of small objects through Node-API costs more
 * than the whole NVML sample; JavaScript builds the objects far faster).
 */
#ifndef GPU_LAYERS_READINGS_TO_JS_H_
#define GPU_LAYERS_READINGS_TO_JS_H_

#include <napi.h>

#include "readings.h"

namespace gpu_layers {

Napi::Object OpenReadingToJs(Napi::Env env, const OpenReading& reading);
Napi::Object SampleReadingToJs(Napi::Env env, const SampleReading& reading);

}  // namespace gpu_layers

#endif  // GPU_LAYERS_READINGS_TO_JS_H_
