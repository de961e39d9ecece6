/*
 * The subset of the NVML C ABI that gpu-layers uses, declared by hand from the facts collected in
 * shared/reference/nvml-abi.md (struct layouts of x86-64 Linux, return codes, versioned symbols).
 * NVIDIA's nvml.h is deliberately not copied into the project. Shared by the addon (C++) and the
 * mock library (C), so a layout mistake shows up as a disagreement with pynvml in the tests.
 */
#ifndef GPU_LAYERS_NVML_ABI_H_
#define GPU_LAYERS_NVML_ABI_H_

#ifdef __cplusplus
extern "C" {
#endif

typedef int nvmlReturn_t; /* a C enum: 4 bytes on x86-64 (nvml-abi.md 2.12) */
typedef struct nvmlDevice_st* nvmlDevice_t;

enum {
  NVML_SUCCESS = 0,
  NVML_ERROR_UNINITIALIZED = 1,
  NVML_ERROR_INVALID_ARGUMENT = 2,
  NVML_ERROR_NOT_SUPPORTED = 3,
  NVML_ERROR_NO_PERMISSION = 4,
  NVML_ERROR_NOT_FOUND = 6,
  NVML_ERROR_INSUFFICIENT_SIZE = 7,
  NVML_ERROR_DRIVER_NOT_LOADED = 9,
  NVML_ERROR_TIMEOUT = 10,
  NVML_ERROR_LIBRARY_NOT_FOUND = 12,
  NVML_ERROR_FUNCTION_NOT_FOUND = 13,
  NVML_ERROR_GPU_IS_LOST = 15,
  NVML_ERROR_UNKNOWN = 999
};

/* NVML_VALUE_NOT_AVAILABLE is (-1): all ones in u64 and u32 fields (nvml-abi.md 3.2). */
#define GPU_LAYERS_NVML_U64_NOT_AVAILABLE 0xFFFFFFFFFFFFFFFFULL
#define GPU_LAYERS_NVML_U32_NOT_AVAILABLE 0xFFFFFFFFU

/* Buffer sizes: the V2 sizes are the largest NVML documents for name and UUID (96). */
#define GPU_LAYERS_NVML_NAME_BUFFER 96
#define GPU_LAYERS_NVML_UUID_BUFFER 96
#define GPU_LAYERS_NVML_VERSION_BUFFER 80
#define GPU_LAYERS_NVML_BUS_ID_BUFFER 32

/* nvmlMemory_t (v1): 24 bytes. used = reserved + allocated on drivers >= 510. */
typedef struct {
  unsigned long long total;
  unsigned long long free;
  unsigned long long used;
} nvmlMemory_v1_t;

/* nvmlMemory_v2_t: 40 bytes; version must be sizeof | 2 << 24 = 0x02000028 (nvml-abi.md 2.2). */
typedef struct {
  unsigned int version;
  unsigned long long total;
  unsigned long long reserved;
  unsigned long long free;
  unsigned long long used;
} nvmlMemory_v2_t;
#define GPU_LAYERS_NVML_MEMORY_V2_VERSION 0x02000028U

/* nvmlBAR1Memory_t: 24 bytes. */
typedef struct {
  unsigned long long bar1Total;
  unsigned long long bar1Free;
  unsigned long long bar1Used;
} nvmlBAR1Memory_t;

/* nvmlProcessInfo_v1_t: 16 bytes (pid, 4 bytes padding, usedGpuMemory). */
typedef struct {
  unsigned int pid;
  unsigned long long usedGpuMemory;
} nvmlProcessInfo_v1_t;

/* nvmlProcessInfo_v2_t: 24 bytes; what _v2 and (outside 535.43-535.86) _v3 write. */
typedef struct {
  unsigned int pid;
  unsigned long long usedGpuMemory;
  unsigned int gpuInstanceId;
  unsigned int computeInstanceId;
} nvmlProcessInfo_v2_t;

/* The 32-byte row _v3 writes on drivers 535.43.02 to 535.86.x (nvml-abi.md 1.2). */
typedef struct {
  unsigned int pid;
  unsigned long long usedGpuMemory;
  unsigned int gpuInstanceId;
  unsigned int computeInstanceId;
  unsigned long long usedGpuCcProtectedMemory;
} nvmlProcessInfo_535_t;

/* nvmlPciInfo_t as nvmlDeviceGetPciInfo_v3 fills it: 68 bytes, align 4 (nvml-abi.md 2.9). */
typedef struct {
  char busIdLegacy[16];
  unsigned int domain;
  unsigned int bus;
  unsigned int device;
  unsigned int pciDeviceId;
  unsigned int pciSubSystemId;
  char busId[GPU_LAYERS_NVML_BUS_ID_BUFFER];
} nvmlPciInfo_t;

/* nvmlUtilization_t: 8 bytes, percent of time busy (memory = controller time, not capacity). */
typedef struct {
  unsigned int gpu;
  unsigned int memory;
} nvmlUtilization_t;

/* The layouts nvml-abi.md section 2 gives for x86-64 Linux (LP64). */
#ifdef __cplusplus
#define GPU_LAYERS_STATIC_ASSERT(cond, msg) static_assert(cond, msg)
#else
#define GPU_LAYERS_STATIC_ASSERT(cond, msg) _Static_assert(cond, msg)
#endif
GPU_LAYERS_STATIC_ASSERT(sizeof(nvmlMemory_v1_t) == 24, "nvmlMemory_t is 24 bytes");
GPU_LAYERS_STATIC_ASSERT(sizeof(nvmlMemory_v2_t) == 40, "nvmlMemory_v2_t is 40 bytes");
GPU_LAYERS_STATIC_ASSERT(sizeof(nvmlBAR1Memory_t) == 24, "nvmlBAR1Memory_t is 24 bytes");
GPU_LAYERS_STATIC_ASSERT(sizeof(nvmlProcessInfo_v1_t) == 16, "process row v1 is 16 bytes");
GPU_LAYERS_STATIC_ASSERT(sizeof(nvmlProcessInfo_v2_t) == 24, "process row v2 is 24 bytes");
GPU_LAYERS_STATIC_ASSERT(sizeof(nvmlProcessInfo_535_t) == 32, "535.43-535.86 _v3 row is 32 bytes");
GPU_LAYERS_STATIC_ASSERT(sizeof(nvmlPciInfo_t) == 68, "nvmlPciInfo_t (v3) is 68 bytes");
GPU_LAYERS_STATIC_ASSERT(sizeof(nvmlUtilization_t) == 8, "nvmlUtilization_t is 8 bytes");

/* Function pointer types, one per signature shape the addon calls. */
typedef nvmlReturn_t (*nvmlVoidFn)(void);
typedef nvmlReturn_t (*nvmlStringFn)(char* buffer, unsigned int length);
typedef nvmlReturn_t (*nvmlIntOutFn)(int* value);
typedef nvmlReturn_t (*nvmlUintOutFn)(unsigned int* value);
typedef const char* (*nvmlErrorStringFn)(nvmlReturn_t result);
typedef nvmlReturn_t (*nvmlHandleByIndexFn)(unsigned int index, nvmlDevice_t* device);
typedef nvmlReturn_t (*nvmlDeviceStringFn)(nvmlDevice_t device, char* buffer, unsigned int length);
typedef nvmlReturn_t (*nvmlDeviceUintFn)(nvmlDevice_t device, unsigned int* value);
typedef nvmlReturn_t (*nvmlDeviceUint2Fn)(nvmlDevice_t device, unsigned int* current, unsigned int* pending);
typedef nvmlReturn_t (*nvmlDevicePciFn)(nvmlDevice_t device, nvmlPciInfo_t* pci);
typedef nvmlReturn_t (*nvmlDeviceMemoryV1Fn)(nvmlDevice_t device, nvmlMemory_v1_t* memory);
typedef nvmlReturn_t (*nvmlDeviceMemoryV2Fn)(nvmlDevice_t device, nvmlMemory_v2_t* memory);
typedef nvmlReturn_t (*nvmlDeviceBar1Fn)(nvmlDevice_t device, nvmlBAR1Memory_t* bar1);
typedef nvmlReturn_t (*nvmlDeviceUtilizationFn)(nvmlDevice_t device, nvmlUtilization_t* utilization);
/* All three process-list generations share this shape; only the row size differs. */
typedef nvmlReturn_t (*nvmlDeviceProcessesFn)(nvmlDevice_t device, unsigned int* count, void* rows);
typedef nvmlReturn_t (*nvmlMigHandleFn)(nvmlDevice_t device, unsigned int index, nvmlDevice_t* mig);

#ifdef __cplusplus
}
#endif

#endif /* GPU_LAYERS_NVML_ABI_H_ */
