/*
 * Mock libcuda.so.1: the context-free enumeration calls gpu-layers makes, answering from the same
 * scenario file as the mock NVML. Devices are listed in the scenario's cuda_order (CUDA's own
 * order need not match NVML's), or PCI order under CUDA_DEVICE_ORDER=PCI_BUS_ID, as MIG devices
 * when their GPU is in MIG mode, and filtered by CUDA_VISIBLE_DEVICES like the real driver.
 *
 * It also exports the calls that create or need a context, and records every call in
 * $GPU_LAYERS_MOCK_TRACE, so a test can prove the probe never makes one.
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../cuda_abi.h"
#include "mock_export.h"
#include "scenario.h"

#define MAX_CUDA_DEVICES 256

typedef struct {
  int index; /* NVML index of the GPU */
  int slot;  /* MIG slot, or -1 for the GPU itself */
} cuda_entry;

static cuda_entry g_devices[MAX_CUDA_DEVICES];
static int g_device_count = 0;
static int g_initialized = 0;

static const mock_device* entry_device(mock_scenario* s, const cuda_entry* e) {
  mock_device* gpu = mock_device_at(s, (unsigned)e->index);
  if (gpu == NULL || e->slot < 0) return gpu;
  for (size_t i = 0; i < gpu->mig_count; ++i) {
    if ((int)gpu->migs[i].mig_slot == e->slot) return &gpu->migs[i];
  }
  return NULL;
}

static int compare_pci(const void* a, const void* b, void* scenario) {
  const mock_device* x = mock_device_at(scenario, (unsigned)*(const int*)a);
  const mock_device* y = mock_device_at(scenario, (unsigned)*(const int*)b);
  if (x->pci_domain != y->pci_domain) return x->pci_domain < y->pci_domain ? -1 : 1;
  if (x->pci_bus != y->pci_bus) return x->pci_bus < y->pci_bus ? -1 : 1;
  if (x->pci_device != y->pci_device) return x->pci_device < y->pci_device ? -1 : 1;
  return 0;
}

static int find_visible(mock_scenario* s, const cuda_entry* all, int count, const char* token) {
  int digits = *token != '\0';
  for (const char* p = token; *p != '\0'; ++p) digits = digits && isdigit((unsigned char)*p);
  if (digits) {
    int ordinal = atoi(token);
    return ordinal < count ? ordinal : -1;
  }
  for (int i = 0; i < count; ++i) {
    const mock_device* d = entry_device(s, &all[i]);
    if (d != NULL && strncmp(d->uuid, token, strlen(token)) == 0) return i;
  }
  return -1;
}

/* The device list cuInit fixes for the life of the process. */
static void enumerate(mock_scenario* s) {
  int order[MAX_CUDA_DEVICES];
  int gpus = 0;
  if (s->cuda_order_count > 0) {
    for (size_t i = 0; i < s->cuda_order_count && gpus < MAX_CUDA_DEVICES; ++i) {
      if (s->cuda_order[i] >= 0 && (size_t)s->cuda_order[i] < s->device_count) order[gpus++] = s->cuda_order[i];
    }
  } else {
    for (size_t i = 0; i < s->device_count && gpus < MAX_CUDA_DEVICES; ++i) order[gpus++] = (int)i;
  }
  const char* device_order = getenv("CUDA_DEVICE_ORDER");
  if (device_order != NULL && strcmp(device_order, "PCI_BUS_ID") == 0) {
    qsort_r(order, (size_t)gpus, sizeof(int), compare_pci, s);
  }
  cuda_entry all[MAX_CUDA_DEVICES];
  int count = 0;
  for (int g = 0; g < gpus; ++g) {
    mock_device* gpu = mock_device_at(s, (unsigned)order[g]);
    if (gpu->mig_current == 1) {
      for (size_t m = 0; m < gpu->mig_count && count < MAX_CUDA_DEVICES; ++m) {
        all[count++] = (cuda_entry){order[g], (int)gpu->migs[m].mig_slot};
      }
    } else if (count < MAX_CUDA_DEVICES) {
      all[count++] = (cuda_entry){order[g], -1};
    }
  }
  const char* visible = getenv("CUDA_VISIBLE_DEVICES");
  g_device_count = 0;
  if (visible == NULL) {
    memcpy(g_devices, all, sizeof(cuda_entry) * (size_t)count);
    g_device_count = count;
    return;
  }
  /* Entries are ordinals, GPU-/MIG- UUID prefixes; an invalid entry hides everything after it. */
  char copy[1024];
  snprintf(copy, sizeof(copy), "%s", visible);
  char* save = NULL;
  for (char* token = strtok_r(copy, ",", &save); token != NULL; token = strtok_r(NULL, ",", &save)) {
    while (isspace((unsigned char)*token)) token++;
    int found = find_visible(s, all, count, token);
    if (found < 0 || g_device_count >= MAX_CUDA_DEVICES) break;
    g_devices[g_device_count++] = all[found];
  }
}

typedef struct {
  const char* symbol;
  mock_scenario* s;
  int skip; /* "rc <symbol> 0": return success without doing the work (no output written) */
} ccall;

static CUresult begin(ccall* c, const char* symbol, int refresh, int needs_init) {
  c->symbol = symbol;
  c->skip = 0;
  c->s = mock_acquire(refresh);
  long long delay = mock_injected_delay(c->s, symbol, -1, -1);
  if (delay > 0) {
    mock_release();
    mock_sleep_ms(delay);
    c->s = mock_acquire(0);
  }
  if (c->s->broken) return 999;
  int injected = 0;
  if (mock_find_rc(c->s, symbol, -1, -1, &injected)) {
    if (injected != CUDA_SUCCESS) return injected;
    c->skip = 1;
    return 999;
  }
  if (needs_init && !g_initialized) return CUDA_ERROR_NOT_INITIALIZED;
  return CUDA_SUCCESS;
}

static CUresult end(ccall* c, CUresult rc) {
  if (c->skip) rc = CUDA_SUCCESS;
  mock_trace(c->symbol, rc);
  mock_release();
  return rc;
}

static const mock_device* device_of(ccall* c, CUdevice device) {
  if (device < 0 || device >= g_device_count) return NULL;
  return entry_device(c->s, &g_devices[device]);
}

MOCK_EXPORT(CUresult, cuInit, (unsigned int flags)) {
  ccall c;
  CUresult rc = begin(&c, "cuInit", 1, 0);
  if (rc == CUDA_SUCCESS && flags != 0) rc = CUDA_ERROR_INVALID_VALUE;
  if (rc == CUDA_SUCCESS && c.s->cuda_init_rc != 0) rc = c.s->cuda_init_rc;
  if (rc == CUDA_SUCCESS && !g_initialized) {
    enumerate(c.s);
    if (g_device_count == 0) rc = CUDA_ERROR_NO_DEVICE;
    else g_initialized = 1;
  }
  return end(&c, rc);
}

/* Needs no cuInit, as with the real driver: it reports the driver's CUDA version. */
MOCK_EXPORT(CUresult, cuDriverGetVersion, (int* version)) {
  ccall c;
  CUresult rc = begin(&c, "cuDriverGetVersion", 0, 0);
  if (rc == CUDA_SUCCESS && version == NULL) rc = CUDA_ERROR_INVALID_VALUE;
  if (rc == CUDA_SUCCESS) *version = c.s->cuda_driver_version;
  return end(&c, rc);
}

MOCK_EXPORT(CUresult, cuDeviceGetCount, (int* count)) {
  ccall c;
  CUresult rc = begin(&c, "cuDeviceGetCount", 1, 1);
  if (rc == CUDA_SUCCESS && count == NULL) rc = CUDA_ERROR_INVALID_VALUE;
  if (rc == CUDA_SUCCESS) {
    unsigned long long claimed = (unsigned long long)g_device_count;
    mock_find_count(c.s, c.symbol, -1, -1, &claimed); /* an int: above 2^31-1 it turns negative */
    *count = (int)(unsigned)claimed;
  }
  return end(&c, rc);
}

MOCK_EXPORT(CUresult, cuDeviceGet, (CUdevice * device, int ordinal)) {
  ccall c;
  CUresult rc = begin(&c, "cuDeviceGet", 0, 1);
  if (rc == CUDA_SUCCESS && device == NULL) rc = CUDA_ERROR_INVALID_VALUE;
  if (rc == CUDA_SUCCESS && (ordinal < 0 || ordinal >= g_device_count)) rc = CUDA_ERROR_INVALID_DEVICE;
  if (rc == CUDA_SUCCESS) *device = ordinal;
  return end(&c, rc);
}

MOCK_EXPORT(CUresult, cuDeviceGetName, (char* name, int length, CUdevice device)) {
  ccall c;
  CUresult rc = begin(&c, "cuDeviceGetName", 0, 1);
  const mock_device* d = rc == CUDA_SUCCESS ? device_of(&c, device) : NULL;
  if (rc == CUDA_SUCCESS && d == NULL) rc = CUDA_ERROR_INVALID_DEVICE;
  if (rc == CUDA_SUCCESS && (name == NULL || length <= 0)) rc = CUDA_ERROR_INVALID_VALUE;
  if (rc == CUDA_SUCCESS && mock_is_unterminated(c.s, c.symbol)) {
    /* Fault: fill all `length` bytes, no terminating NUL. */
    size_t n = strlen(d->name);
    for (int i = 0; i < length; ++i) name[i] = n > 0 ? d->name[(size_t)i % n] : 'X';
  } else if (rc == CUDA_SUCCESS) {
    snprintf(name, (size_t)length, "%s", d->name); /* truncates, like CUDA */
  }
  return end(&c, rc);
}

static CUresult device_uuid(const char* symbol, CUuuid* uuid, CUdevice device) {
  ccall c;
  CUresult rc = begin(&c, symbol, 0, 1);
  const mock_device* d = rc == CUDA_SUCCESS ? device_of(&c, device) : NULL;
  if (rc == CUDA_SUCCESS && d == NULL) rc = CUDA_ERROR_INVALID_DEVICE;
  if (rc == CUDA_SUCCESS && uuid == NULL) rc = CUDA_ERROR_INVALID_VALUE;
  if (rc == CUDA_SUCCESS) mock_uuid_bytes(d->uuid, (unsigned char*)uuid->bytes);
  return end(&c, rc);
}

MOCK_EXPORT(CUresult, cuDeviceGetUuid_v2, (CUuuid * uuid, CUdevice device)) {
  return device_uuid("cuDeviceGetUuid_v2", uuid, device);
}
MOCK_EXPORT(CUresult, cuDeviceGetUuid, (CUuuid * uuid, CUdevice device)) {
  return device_uuid("cuDeviceGetUuid", uuid, device);
}

MOCK_EXPORT(CUresult, cuDeviceTotalMem_v2, (size_t * bytes, CUdevice device)) {
  ccall c;
  CUresult rc = begin(&c, "cuDeviceTotalMem_v2", 0, 1);
  const mock_device* d = rc == CUDA_SUCCESS ? device_of(&c, device) : NULL;
  if (rc == CUDA_SUCCESS && d == NULL) rc = CUDA_ERROR_INVALID_DEVICE;
  if (rc == CUDA_SUCCESS && bytes == NULL) rc = CUDA_ERROR_INVALID_VALUE;
  if (rc == CUDA_SUCCESS) *bytes = (size_t)d->mem_total;
  return end(&c, rc);
}

/* The CUDA 2.0 ABI: a 32-bit output that truncates above 4 GiB. Exported so a client that
 * resolves the plain name by mistake gets what it would get from the real driver. */
MOCK_EXPORT(CUresult, cuDeviceTotalMem, (unsigned int* bytes, CUdevice device)) {
  ccall c;
  CUresult rc = begin(&c, "cuDeviceTotalMem", 0, 1);
  const mock_device* d = rc == CUDA_SUCCESS ? device_of(&c, device) : NULL;
  if (rc == CUDA_SUCCESS && d == NULL) rc = CUDA_ERROR_INVALID_DEVICE;
  if (rc == CUDA_SUCCESS && bytes == NULL) rc = CUDA_ERROR_INVALID_VALUE;
  if (rc == CUDA_SUCCESS) *bytes = (unsigned int)d->mem_total;
  return end(&c, rc);
}

MOCK_EXPORT(CUresult, cuDeviceGetAttribute, (int* value, int attribute, CUdevice device)) {
  ccall c;
  CUresult rc = begin(&c, "cuDeviceGetAttribute", 0, 1);
  const mock_device* d = NULL;
  if (rc == CUDA_SUCCESS && (device < 0 || device >= g_device_count)) rc = CUDA_ERROR_INVALID_DEVICE;
  if (rc == CUDA_SUCCESS) d = mock_device_at(c.s, (unsigned)g_devices[device].index); /* PCI of the GPU */
  if (rc == CUDA_SUCCESS && (value == NULL || d == NULL)) rc = CUDA_ERROR_INVALID_VALUE;
  if (rc == CUDA_SUCCESS) {
    switch (attribute) {
      case GPU_LAYERS_CU_ATTR_PCI_BUS_ID: *value = (int)d->pci_bus; break;
      case GPU_LAYERS_CU_ATTR_PCI_DEVICE_ID: *value = (int)d->pci_device; break;
      case GPU_LAYERS_CU_ATTR_PCI_DOMAIN_ID: *value = (int)d->pci_domain; break;
      default: rc = CUDA_ERROR_INVALID_VALUE;
    }
  }
  return end(&c, rc);
}

static const char* error_name(CUresult error) {
  switch (error) {
    case 0: return "CUDA_SUCCESS";
    case 1: return "CUDA_ERROR_INVALID_VALUE";
    case 3: return "CUDA_ERROR_NOT_INITIALIZED";
    case 100: return "CUDA_ERROR_NO_DEVICE";
    case 101: return "CUDA_ERROR_INVALID_DEVICE";
    case 500: return "CUDA_ERROR_NOT_FOUND";
    default: return NULL;
  }
}

static CUresult error_text(const char* symbol, CUresult error, const char** out) {
  ccall c;
  CUresult rc = begin(&c, symbol, 0, 0);
  if (rc == CUDA_SUCCESS && out == NULL) rc = CUDA_ERROR_INVALID_VALUE;
  if (rc == CUDA_SUCCESS) {
    *out = error_name(error);
    if (*out == NULL) rc = CUDA_ERROR_INVALID_VALUE;
  }
  return end(&c, rc);
}

MOCK_EXPORT(CUresult, cuGetErrorName, (CUresult error, const char** name)) {
  return error_text("cuGetErrorName", error, name);
}

MOCK_EXPORT(CUresult, cuGetErrorString, (CUresult error, const char** text)) {
  return error_text("cuGetErrorString", error, text);
}

/* ---------- calls that create or need a context: recorded, never made by the probe ---------- */

static CUresult context_call(const char* symbol) {
  ccall c;
  CUresult rc = begin(&c, symbol, 0, 1);
  return end(&c, rc);
}

typedef struct CUctx_st* CUcontext;
static struct CUctx_st {
  int unused;
} g_context;

MOCK_EXPORT(CUresult, cuDevicePrimaryCtxRetain, (CUcontext * context, CUdevice device)) {
  ccall c;
  CUresult rc = begin(&c, "cuDevicePrimaryCtxRetain", 0, 1);
  const mock_device* d = rc == CUDA_SUCCESS ? device_of(&c, device) : NULL;
  if (rc == CUDA_SUCCESS && d == NULL) rc = CUDA_ERROR_INVALID_DEVICE;
  if (rc == CUDA_SUCCESS && context == NULL) rc = CUDA_ERROR_INVALID_VALUE;
  if (rc == CUDA_SUCCESS) {
    *context = &g_context;
    /* The mock NVML (in any process) now lists this pid on the device, with its context_bytes. */
    mock_register_context(d->uuid);
  }
  return end(&c, rc);
}
MOCK_EXPORT(CUresult, cuDevicePrimaryCtxRelease_v2, (CUdevice device)) {
  (void)device;
  return context_call("cuDevicePrimaryCtxRelease_v2");
}
MOCK_EXPORT(CUresult, cuCtxCreate_v2, (CUcontext * context, unsigned int flags, CUdevice device)) {
  (void)flags;
  (void)device;
  CUresult rc = context_call("cuCtxCreate_v2");
  if (rc == CUDA_SUCCESS && context != NULL) *context = &g_context;
  return rc;
}
MOCK_EXPORT(CUresult, cuCtxSetCurrent, (CUcontext context)) {
  (void)context;
  return context_call("cuCtxSetCurrent");
}
MOCK_EXPORT(CUresult, cuMemGetInfo_v2, (size_t * free_bytes, size_t* total_bytes)) {
  CUresult rc = context_call("cuMemGetInfo_v2");
  if (rc == CUDA_SUCCESS && free_bytes != NULL) *free_bytes = 0;
  if (rc == CUDA_SUCCESS && total_bytes != NULL) *total_bytes = 0;
  return rc;
}
