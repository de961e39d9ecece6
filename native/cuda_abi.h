/*
 * The context-free subset of the CUDA driver API (libcuda.so.1) that gpu-layers uses, declared by
 * hand from shared/reference/nvml-abi.md section 6. Only enumeration calls: none of these creates a
 * CUDA context, so the probe never adds itself to NVML's process list. Shared by the addon and the
 * mock CUDA library.
 */
#ifndef GPU_LAYERS_CUDA_ABI_H_
#define GPU_LAYERS_CUDA_ABI_H_

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef int CUresult;
typedef int CUdevice;
typedef struct {
  char bytes[16];
} CUuuid;

enum {
  CUDA_SUCCESS = 0,
  CUDA_ERROR_INVALID_VALUE = 1,
  CUDA_ERROR_NOT_INITIALIZED = 3,
  CUDA_ERROR_NO_DEVICE = 100,
  CUDA_ERROR_INVALID_DEVICE = 101,
  CUDA_ERROR_NOT_FOUND = 500
};

/* cuDeviceGetAttribute ids (nvml-abi.md 6.1, compiled check against cuda.h 13.0). */
enum {
  GPU_LAYERS_CU_ATTR_PCI_BUS_ID = 33,
  GPU_LAYERS_CU_ATTR_PCI_DEVICE_ID = 34,
  GPU_LAYERS_CU_ATTR_PCI_DOMAIN_ID = 50
};

typedef CUresult (*cuInitFn)(unsigned int flags);
typedef CUresult (*cuIntOutFn)(int* value);
typedef CUresult (*cuDeviceGetFn)(CUdevice* device, int ordinal);
typedef CUresult (*cuDeviceGetNameFn)(char* name, int length, CUdevice device);
typedef CUresult (*cuDeviceGetUuidFn)(CUuuid* uuid, CUdevice device);
/* cuDeviceTotalMem_v2 takes size_t*; the plain symbol is the 32-bit CUDA 2.0 ABI. */
typedef CUresult (*cuDeviceTotalMemFn)(size_t* bytes, CUdevice device);
typedef CUresult (*cuDeviceGetAttributeFn)(int* value, int attribute, CUdevice device);
typedef CUresult (*cuGetErrorNameFn)(CUresult error, const char** name);

#ifdef __cplusplus
}
#endif

#endif /* GPU_LAYERS_CUDA_ABI_H_ */
