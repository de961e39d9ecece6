/*
 * Mock libnvidia-ml.so.1: exports, under NVML's real names and ABI, every symbol gpu-layers
 * resolves (plus nvmlInitWithFlags, which pynvml calls), answering from the scenario file named
 * by GPU_LAYERS_MOCK_SCENARIO. Fault injection per scenario: return codes and delays per
 * function and device, hidden symbols, a process list that grows between calls, 32-byte _v3
 * rows, strings without a terminating NUL. A test and product feature: agents built on
 * gpu-layers run their own CI against it.
 */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../nvml_abi.h"
#include "mock_export.h"
#include "scenario.h"

/* Handles encode (index, MIG slot) instead of pointing into the scenario, so a handle stays
 * meaningful after the scenario file is re-read. */
#define HANDLE(index, slot) ((nvmlDevice_t)(uintptr_t)((((uintptr_t)(index) + 1) << 8) | (uintptr_t)((slot) + 1)))

static int g_init_count = 0;

/* The most synthetic rows "grow" adds to one list: their pids (3000000 + kind * 100000 + n) stay
 * unique and below PID_MAX_LIMIT, and a huge "grow" cannot make a call loop for seconds. */
#define MOCK_GROW_LIMIT 100000u

typedef struct {
  const char* symbol;
  mock_scenario* s;
  mock_device* gpu;    /* the full GPU the handle belongs to */
  mock_device* device; /* the GPU itself or one of its MIG devices */
  int index;
  int slot; /* -1 for a full GPU */
  int skip; /* "rc <symbol> 0": return success without doing the work (no output written) */
} call;

static mock_device* find_mig(mock_device* gpu, int slot) {
  for (size_t i = 0; i < gpu->mig_count; ++i) {
    if ((int)gpu->migs[i].mig_slot == slot) return &gpu->migs[i];
  }
  return NULL;
}

static int decode_handle(call* c, nvmlDevice_t handle) {
  uintptr_t raw = (uintptr_t)handle;
  c->gpu = NULL;
  c->device = NULL;
  if (raw < 0x100) return -1;
  c->index = (int)((raw >> 8) - 1);
  c->slot = (int)(raw & 0xff) - 1;
  c->gpu = mock_device_at(c->s, (unsigned)c->index);
  if (c->gpu == NULL) return -1;
  c->device = c->slot < 0 ? c->gpu : find_mig(c->gpu, c->slot);
  return c->device == NULL ? -1 : 0;
}

/* The rc directive for (device, slot), if any: its code, or for 0 a non-success code that makes
 * the caller skip the work while end() still returns NVML_SUCCESS. NVML_SUCCESS when none. */
static nvmlReturn_t injected_rc(call* c, int device, int slot) {
  int rc = 0;
  if (!mock_find_rc(c->s, c->symbol, device, slot, &rc)) return NVML_SUCCESS;
  if (rc != NVML_SUCCESS) return rc;
  c->skip = 1;
  return NVML_ERROR_UNKNOWN;
}

/* Takes the lock, applies the scenario's delay and injected code, checks init and, for a device
 * call, the handle (a null or unknown handle is NVML_ERROR_INVALID_ARGUMENT, as with the real
 * library). (device, slot) is the target of a system call that takes an index, else -1.
 * Returns NVML_SUCCESS when the caller should do the real work. */
static nvmlReturn_t begin_call(call* c, const char* symbol, int refresh, int device_call, nvmlDevice_t handle,
                               int device, int needs_init) {
  memset(c, 0, sizeof(*c));
  c->symbol = symbol;
  c->index = device;
  c->slot = -1;
  c->s = mock_acquire(refresh);
  if (device_call) decode_handle(c, handle);
  long long delay = mock_injected_delay(c->s, symbol, c->index, c->slot);
  if (delay > 0) {
    mock_release();
    mock_sleep_ms(delay);
    c->s = mock_acquire(0);
    if (device_call) decode_handle(c, handle);
  }
  if (c->s->broken) return NVML_ERROR_UNKNOWN;
  nvmlReturn_t injected = injected_rc(c, c->index, c->slot);
  if (injected != NVML_SUCCESS) return injected;
  if (needs_init && g_init_count == 0) return NVML_ERROR_UNINITIALIZED;
  if (device_call && c->device == NULL) return NVML_ERROR_INVALID_ARGUMENT;
  return NVML_SUCCESS;
}

static nvmlReturn_t begin(call* c, const char* symbol, int refresh, nvmlDevice_t handle, int needs_init) {
  return begin_call(c, symbol, refresh, 1, handle, -1, needs_init);
}

static nvmlReturn_t begin_system(call* c, const char* symbol, int refresh, int needs_init) {
  return begin_call(c, symbol, refresh, 0, NULL, -1, needs_init);
}

static nvmlReturn_t end(call* c, nvmlReturn_t rc) {
  if (c->skip) rc = NVML_SUCCESS;
  mock_trace(c->symbol, rc);
  mock_release();
  return rc;
}

static nvmlReturn_t copy_string(const call* c, const char* value, char* out, unsigned length) {
  if (out == NULL) return NVML_ERROR_INVALID_ARGUMENT;
  if (mock_is_unterminated(c->s, c->symbol)) {
    /* Fault: fill the whole buffer, no terminating NUL. */
    size_t n = strlen(value);
    for (unsigned i = 0; i < length; ++i) out[i] = n > 0 ? value[i % n] : 'X';
    return NVML_SUCCESS;
  }
  if (strlen(value) + 1 > length) return NVML_ERROR_INSUFFICIENT_SIZE;
  memcpy(out, value, strlen(value) + 1);
  return NVML_SUCCESS;
}

/* ---------- init, errors, system ---------- */

/* A client starts a pass with nvmlInit, a system query (gpu-layers and nvidia-smi read the driver
 * version first) or the device count: those calls re-read the scenario file if it changed. */

static nvmlReturn_t do_init(const char* symbol) {
  call c;
  nvmlReturn_t rc = begin_system(&c, symbol, 1, 0);
  if (rc == NVML_SUCCESS && c.s->nvml_init_rc != 0) rc = c.s->nvml_init_rc;
  if (rc == NVML_SUCCESS) g_init_count++;
  return end(&c, rc);
}

MOCK_EXPORT(nvmlReturn_t, nvmlInit_v2, (void)) { return do_init("nvmlInit_v2"); }
MOCK_EXPORT(nvmlReturn_t, nvmlInit, (void)) { return do_init("nvmlInit"); }
MOCK_EXPORT(nvmlReturn_t, nvmlInitWithFlags, (unsigned int flags)) {
  (void)flags;
  return do_init("nvmlInitWithFlags");
}

MOCK_EXPORT(nvmlReturn_t, nvmlShutdown, (void)) {
  call c;
  nvmlReturn_t rc = begin_system(&c, "nvmlShutdown", 0, 1);
  if (rc == NVML_SUCCESS) g_init_count--;
  return end(&c, rc);
}

static const char* error_text(nvmlReturn_t result) {
  switch (result) {
    case 0: return "Success";
    case 1: return "Uninitialized";
    case 2: return "Invalid Argument";
    case 3: return "Not Supported";
    case 4: return "Insufficient Permissions";
    case 6: return "Not Found";
    case 7: return "Insufficient Size";
    case 9: return "Driver Not Loaded";
    case 10: return "Timeout";
    case 12: return "NVML Shared Library Not Found";
    case 13: return "Function Not Found";
    case 15: return "GPU is lost";
    case 18: return "RM has detected an NVML/RM version mismatch.";
    default: return "Unknown Error";
  }
}

/* A static table in the real library: works before init and with a broken scenario. It has no
 * return code of its own, so any rc directive for it makes it return NULL (no text). */
MOCK_EXPORT(const char*, nvmlErrorString, (nvmlReturn_t result)) {
  call c;
  memset(&c, 0, sizeof(c));
  c.symbol = "nvmlErrorString";
  c.s = mock_acquire(0);
  long long delay = mock_injected_delay(c.s, c.symbol, -1, -1);
  if (delay > 0) {
    mock_release();
    mock_sleep_ms(delay);
    c.s = mock_acquire(0);
  }
  int rc = 0;
  const char* text = mock_find_rc(c.s, c.symbol, -1, -1, &rc) ? NULL : error_text(result);
  mock_trace(c.symbol, rc);
  mock_release();
  return text;
}

MOCK_EXPORT(nvmlReturn_t, nvmlSystemGetDriverVersion, (char* version, unsigned int length)) {
  call c;
  nvmlReturn_t rc = begin_system(&c, "nvmlSystemGetDriverVersion", 1, 1);
  if (rc == NVML_SUCCESS) rc = copy_string(&c, c.s->driver_version, version, length);
  return end(&c, rc);
}

/* Works before nvmlInit, as the real library does. */
MOCK_EXPORT(nvmlReturn_t, nvmlSystemGetNVMLVersion, (char* version, unsigned int length)) {
  call c;
  nvmlReturn_t rc = begin_system(&c, "nvmlSystemGetNVMLVersion", 1, 0);
  if (rc == NVML_SUCCESS) rc = copy_string(&c, c.s->nvml_version, version, length);
  return end(&c, rc);
}

static nvmlReturn_t cuda_version(const char* symbol, int* out) {
  call c;
  nvmlReturn_t rc = begin_system(&c, symbol, 1, 1);
  if (rc == NVML_SUCCESS) {
    if (out == NULL) rc = NVML_ERROR_INVALID_ARGUMENT;
    else *out = c.s->cuda_driver_version;
  }
  return end(&c, rc);
}

MOCK_EXPORT(nvmlReturn_t, nvmlSystemGetCudaDriverVersion, (int* version)) {
  return cuda_version("nvmlSystemGetCudaDriverVersion", version);
}
MOCK_EXPORT(nvmlReturn_t, nvmlSystemGetCudaDriverVersion_v2, (int* version)) {
  return cuda_version("nvmlSystemGetCudaDriverVersion_v2", version);
}

/* ---------- devices ---------- */

/* A client starting a pass over the devices: the scenario is re-read here if the file changed. */
static nvmlReturn_t device_count(const char* symbol, unsigned int* count) {
  call c;
  nvmlReturn_t rc = begin_system(&c, symbol, 1, 1);
  if (rc == NVML_SUCCESS) {
    unsigned long long claimed = c.s->device_count;
    mock_find_count(c.s, symbol, -1, -1, &claimed); /* "count": a driver claiming more */
    if (count == NULL) rc = NVML_ERROR_INVALID_ARGUMENT;
    else *count = (unsigned)claimed;
  }
  return end(&c, rc);
}

MOCK_EXPORT(nvmlReturn_t, nvmlDeviceGetCount_v2, (unsigned int* count)) {
  return device_count("nvmlDeviceGetCount_v2", count);
}
MOCK_EXPORT(nvmlReturn_t, nvmlDeviceGetCount, (unsigned int* count)) {
  return device_count("nvmlDeviceGetCount", count);
}

static nvmlReturn_t handle_by_index(const char* symbol, unsigned int index, nvmlDevice_t* device) {
  call c;
  /* Injected codes and delays target the device the index names. */
  nvmlReturn_t rc = begin_call(&c, symbol, 0, 0, NULL, index > 0x7fffffffu ? -2 : (int)index, 1);
  if (rc == NVML_SUCCESS) {
    if (device == NULL || index >= c.s->device_count) rc = NVML_ERROR_INVALID_ARGUMENT;
    else *device = HANDLE(index, -1);
  }
  return end(&c, rc);
}

MOCK_EXPORT(nvmlReturn_t, nvmlDeviceGetHandleByIndex_v2, (unsigned int index, nvmlDevice_t* device)) {
  return handle_by_index("nvmlDeviceGetHandleByIndex_v2", index, device);
}
MOCK_EXPORT(nvmlReturn_t, nvmlDeviceGetHandleByIndex, (unsigned int index, nvmlDevice_t* device)) {
  return handle_by_index("nvmlDeviceGetHandleByIndex", index, device);
}

MOCK_EXPORT(nvmlReturn_t, nvmlDeviceGetName, (nvmlDevice_t device, char* name, unsigned int length)) {
  call c;
  nvmlReturn_t rc = begin(&c, "nvmlDeviceGetName", 0, device, 1);
  if (rc == NVML_SUCCESS) rc = copy_string(&c, c.device->name, name, length);
  return end(&c, rc);
}

MOCK_EXPORT(nvmlReturn_t, nvmlDeviceGetUUID, (nvmlDevice_t device, char* uuid, unsigned int length)) {
  call c;
  nvmlReturn_t rc = begin(&c, "nvmlDeviceGetUUID", 0, device, 1);
  if (rc == NVML_SUCCESS) rc = copy_string(&c, c.device->uuid, uuid, length);
  return end(&c, rc);
}

/* _v3 fills all 68 bytes; _v2 and the plain name only the 36-byte prefix they share with it. */
static nvmlReturn_t pci_info(const char* symbol, nvmlDevice_t device, nvmlPciInfo_t* pci, int full) {
  call c;
  nvmlReturn_t rc = begin(&c, symbol, 0, device, 1);
  if (rc == NVML_SUCCESS && pci == NULL) rc = NVML_ERROR_INVALID_ARGUMENT;
  if (rc == NVML_SUCCESS) {
    const mock_device* d = c.gpu;
    memset(pci, 0, full ? sizeof(*pci) : 36);
    snprintf(pci->busIdLegacy, sizeof(pci->busIdLegacy), "%04X:%02X:%02X.0", d->pci_domain & 0xffff, d->pci_bus,
             d->pci_device);
    pci->domain = d->pci_domain;
    pci->bus = d->pci_bus;
    pci->device = d->pci_device;
    pci->pciDeviceId = d->pci_device_id;
    pci->pciSubSystemId = d->pci_subsystem_id;
    if (full) snprintf(pci->busId, sizeof(pci->busId), "%08X:%02X:%02X.0", d->pci_domain, d->pci_bus, d->pci_device);
  }
  return end(&c, rc);
}

MOCK_EXPORT(nvmlReturn_t, nvmlDeviceGetPciInfo_v3, (nvmlDevice_t device, nvmlPciInfo_t* pci)) {
  return pci_info("nvmlDeviceGetPciInfo_v3", device, pci, 1);
}
MOCK_EXPORT(nvmlReturn_t, nvmlDeviceGetPciInfo_v2, (nvmlDevice_t device, nvmlPciInfo_t* pci)) {
  return pci_info("nvmlDeviceGetPciInfo_v2", device, pci, 0);
}
MOCK_EXPORT(nvmlReturn_t, nvmlDeviceGetPciInfo, (nvmlDevice_t device, nvmlPciInfo_t* pci)) {
  return pci_info("nvmlDeviceGetPciInfo", device, pci, 0);
}

MOCK_EXPORT(nvmlReturn_t, nvmlDeviceGetMemoryInfo_v2, (nvmlDevice_t device, nvmlMemory_v2_t* memory)) {
  call c;
  nvmlReturn_t rc = begin(&c, "nvmlDeviceGetMemoryInfo_v2", 0, device, 1);
  if (rc == NVML_SUCCESS && memory == NULL) rc = NVML_ERROR_INVALID_ARGUMENT;
  /* A bare "2" instead of sizeof | 2 << 24 is the classic mistake (nvml-abi.md 2.2). */
  if (rc == NVML_SUCCESS && memory->version != GPU_LAYERS_NVML_MEMORY_V2_VERSION) rc = 25;
  if (rc == NVML_SUCCESS) {
    memory->total = c.device->mem_total;
    memory->reserved = c.device->mem_reserved;
    memory->free = c.device->mem_free;
    memory->used = c.device->mem_used;
  }
  return end(&c, rc);
}

/* v1: used is reserved + allocated (drivers >= 510, nvml-abi.md 4.7). */
MOCK_EXPORT(nvmlReturn_t, nvmlDeviceGetMemoryInfo, (nvmlDevice_t device, nvmlMemory_v1_t* memory)) {
  call c;
  nvmlReturn_t rc = begin(&c, "nvmlDeviceGetMemoryInfo", 0, device, 1);
  if (rc == NVML_SUCCESS && memory == NULL) rc = NVML_ERROR_INVALID_ARGUMENT;
  if (rc == NVML_SUCCESS) {
    const mock_device* d = c.device;
    memory->total = d->mem_total;
    memory->free = d->mem_free;
    memory->used = (d->mem_used == MOCK_NA || d->mem_reserved == MOCK_NA) ? MOCK_NA : d->mem_used + d->mem_reserved;
  }
  return end(&c, rc);
}

MOCK_EXPORT(nvmlReturn_t, nvmlDeviceGetBAR1MemoryInfo, (nvmlDevice_t device, nvmlBAR1Memory_t* bar1)) {
  call c;
  nvmlReturn_t rc = begin(&c, "nvmlDeviceGetBAR1MemoryInfo", 0, device, 1);
  if (rc == NVML_SUCCESS && bar1 == NULL) rc = NVML_ERROR_INVALID_ARGUMENT;
  if (rc == NVML_SUCCESS) {
    bar1->bar1Total = c.device->bar1_total;
    bar1->bar1Free = c.device->bar1_free;
    bar1->bar1Used = c.device->bar1_used;
  }
  return end(&c, rc);
}

/* Not supported on MIG devices nor on a GPU in MIG mode (nvml-abi.md 4.4). */
MOCK_EXPORT(nvmlReturn_t, nvmlDeviceGetUtilizationRates, (nvmlDevice_t device, nvmlUtilization_t* utilization)) {
  call c;
  nvmlReturn_t rc = begin(&c, "nvmlDeviceGetUtilizationRates", 0, device, 1);
  if (rc == NVML_SUCCESS && utilization == NULL) rc = NVML_ERROR_INVALID_ARGUMENT;
  if (rc == NVML_SUCCESS && (c.slot >= 0 || c.gpu->mig_current == 1)) rc = NVML_ERROR_NOT_SUPPORTED;
  if (rc == NVML_SUCCESS) {
    utilization->gpu = c.device->util_gpu == MOCK_NA ? 0xFFFFFFFFu : (unsigned)c.device->util_gpu;
    utilization->memory = c.device->util_memory == MOCK_NA ? 0xFFFFFFFFu : (unsigned)c.device->util_memory;
  }
  return end(&c, rc);
}

/* ---------- MIG ---------- */

MOCK_EXPORT(nvmlReturn_t, nvmlDeviceGetMigMode, (nvmlDevice_t device, unsigned int* current, unsigned int* pending)) {
  call c;
  nvmlReturn_t rc = begin(&c, "nvmlDeviceGetMigMode", 0, device, 1);
  if (rc == NVML_SUCCESS && (current == NULL || pending == NULL)) rc = NVML_ERROR_INVALID_ARGUMENT;
  if (rc == NVML_SUCCESS && c.slot >= 0) rc = NVML_ERROR_NOT_SUPPORTED;
  if (rc == NVML_SUCCESS) {
    *current = c.gpu->mig_current;
    *pending = c.gpu->mig_pending;
  }
  return end(&c, rc);
}

MOCK_EXPORT(nvmlReturn_t, nvmlDeviceGetMaxMigDeviceCount, (nvmlDevice_t device, unsigned int* count)) {
  call c;
  nvmlReturn_t rc = begin(&c, "nvmlDeviceGetMaxMigDeviceCount", 0, device, 1);
  if (rc == NVML_SUCCESS && count == NULL) rc = NVML_ERROR_INVALID_ARGUMENT;
  if (rc == NVML_SUCCESS) {
    unsigned long long max = 0;
    if (c.slot < 0 && c.gpu->mig_current == 1) {
      max = 7; /* an H100 holds at most seven instances */
      for (size_t i = 0; i < c.gpu->mig_count; ++i) {
        if ((unsigned long long)c.gpu->migs[i].mig_slot + 1 > max) max = (unsigned long long)c.gpu->migs[i].mig_slot + 1;
      }
    }
    mock_find_count(c.s, c.symbol, c.index, c.slot, &max);
    *count = (unsigned)max;
  }
  return end(&c, rc);
}

MOCK_EXPORT(nvmlReturn_t, nvmlDeviceGetMigDeviceHandleByIndex,
            (nvmlDevice_t device, unsigned int index, nvmlDevice_t* mig)) {
  call c;
  nvmlReturn_t rc = begin(&c, "nvmlDeviceGetMigDeviceHandleByIndex", 0, device, 1);
  if (rc == NVML_SUCCESS && (mig == NULL || c.slot >= 0)) rc = NVML_ERROR_INVALID_ARGUMENT;
  /* A directive aimed at the MIG slot itself ("<device>/<slot>"). */
  if (rc == NVML_SUCCESS) rc = injected_rc(&c, c.index, index > 254 ? -2 : (int)index);
  if (rc == NVML_SUCCESS) {
    if (c.gpu->mig_current != 1 || index > 254 || find_mig(c.gpu, (int)index) == NULL) rc = NVML_ERROR_NOT_FOUND;
    else *mig = HANDLE(c.index, (int)index);
  }
  return end(&c, rc);
}

static nvmlReturn_t instance_id(const char* symbol, nvmlDevice_t device, unsigned int* id, int compute) {
  call c;
  nvmlReturn_t rc = begin(&c, symbol, 0, device, 1);
  if (rc == NVML_SUCCESS && (id == NULL || c.slot < 0)) rc = NVML_ERROR_INVALID_ARGUMENT;
  if (rc == NVML_SUCCESS) *id = compute ? c.device->compute_instance_id : c.device->gpu_instance_id;
  return end(&c, rc);
}

MOCK_EXPORT(nvmlReturn_t, nvmlDeviceGetGpuInstanceId, (nvmlDevice_t device, unsigned int* id)) {
  return instance_id("nvmlDeviceGetGpuInstanceId", device, id, 0);
}
MOCK_EXPORT(nvmlReturn_t, nvmlDeviceGetComputeInstanceId, (nvmlDevice_t device, unsigned int* id)) {
  return instance_id("nvmlDeviceGetComputeInstanceId", device, id, 1);
}

/* ---------- process lists ---------- */

/* Contexts created through the mock CUDA library on this device, by processes still alive and
 * not already in the scenario's own list: NVML lists them as compute processes. */
static size_t context_rows(const call* c, unsigned kind, mock_process* out, size_t at, size_t capacity) {
  if (kind != MOCK_COMPUTE) return 0;
  const mock_context* contexts = NULL;
  size_t count = mock_live_contexts(&contexts);
  size_t n = 0;
  for (size_t i = 0; i < count; ++i) {
    if (strcmp(contexts[i].uuid, c->device->uuid) != 0) continue;
    int listed = 0;
    for (size_t p = 0; p < c->device->process_count; ++p) listed |= c->device->processes[p].pid == contexts[i].pid;
    if (listed) continue;
    if (out != NULL && at + n < capacity) {
      mock_process p = {MOCK_COMPUTE, contexts[i].pid, c->device->context_bytes,
                        c->slot >= 0 ? c->device->gpu_instance_id : 0xFFFFFFFFu,
                        c->slot >= 0 ? c->device->compute_instance_id : 0xFFFFFFFFu};
      out[at + n] = p;
    }
    n++;
  }
  return n;
}

/* The rows a list holds: a MIG device's own; a full GPU's own plus, in MIG mode, the aggregate
 * of its MIG devices (what NVML reports to a privileged caller); contexts registered by the mock
 * CUDA library; then synthetic "grown" rows. With out == NULL it only counts them. */
static size_t collect_rows(const call* c, unsigned kind, mock_process* out, size_t capacity) {
  size_t n = 0;
  const mock_device* d = c->device;
  for (size_t i = 0; i < d->process_count; ++i) {
    if (d->processes[i].kind != kind) continue;
    if (out != NULL && n < capacity) out[n] = d->processes[i];
    n++;
  }
  if (c->slot < 0 && c->gpu->mig_current == 1) {
    for (size_t m = 0; m < c->gpu->mig_count; ++m) {
      const mock_device* mig = &c->gpu->migs[m];
      for (size_t i = 0; i < mig->process_count; ++i) {
        if (mig->processes[i].kind != kind) continue;
        if (out != NULL && n < capacity) out[n] = mig->processes[i];
        n++;
      }
    }
  }
  n += context_rows(c, kind, out, n, capacity);
  if (out == NULL) return n + d->grow_extra[kind];
  /* Grown processes run in the MIG device, or on a GPU in MIG mode in its first MIG device. */
  const mock_device* instance = c->slot >= 0 ? d : (c->gpu->mig_current == 1 && c->gpu->mig_count > 0 ? &c->gpu->migs[0] : NULL);
  for (unsigned g = 0; g < d->grow_extra[kind]; ++g) {
    if (out != NULL && n < capacity) {
      mock_process p = {kind, 3000000u + kind * 100000u + g, (unsigned long long)(g + 1) << 20,
                        instance != NULL ? instance->gpu_instance_id : 0xFFFFFFFFu,
                        instance != NULL ? instance->compute_instance_id : 0xFFFFFFFFu};
      out[n] = p;
    }
    n++;
  }
  return n;
}

static void write_row(unsigned char* row, unsigned row_bytes, const mock_process* p) {
  memset(row, 0, row_bytes);
  memcpy(row + 0, &p->pid, 4);
  memcpy(row + 8, &p->used, 8);
  if (row_bytes >= 24) {
    memcpy(row + 16, &p->gpu_instance_id, 4);
    memcpy(row + 20, &p->compute_instance_id, 4);
  }
}

/* After each call, the "grow" directive adds processes the next call will see. */
static void maybe_grow(call* c, unsigned kind) {
  mock_device* d = c->device;
  if (c->s->grow_count == 0) return;
  if (c->s->grow_calls >= 0 && d->grow_calls[kind] >= c->s->grow_calls) return;
  d->grow_calls[kind]++;
  /* At most MOCK_GROW_LIMIT synthetic rows, so their pids stay unique and below PID_MAX_LIMIT. */
  unsigned long long extra = (unsigned long long)d->grow_extra[kind] + c->s->grow_count;
  d->grow_extra[kind] = extra > MOCK_GROW_LIMIT ? MOCK_GROW_LIMIT : (unsigned)extra;
}

static nvmlReturn_t processes(const char* symbol, nvmlDevice_t device, unsigned int* count, void* rows, unsigned kind,
                              int generation) {
  call c;
  nvmlReturn_t rc = begin(&c, symbol, 0, device, 1);
  if (rc == NVML_SUCCESS && count == NULL) rc = NVML_ERROR_INVALID_ARGUMENT;
  if (rc == NVML_SUCCESS) {
    unsigned row_bytes = generation == 3 ? c.s->process_row_bytes : generation == 2 ? 24 : 16;
    size_t n = collect_rows(&c, kind, NULL, 0);
    /* "count": the list claims more rows than it has (or fewer); it writes only the real ones. */
    unsigned long long claimed = n;
    mock_find_count(c.s, symbol, c.index, c.slot, &claimed);
    if (*count < claimed || (rows == NULL && claimed > 0)) {
      *count = (unsigned)claimed;
      rc = NVML_ERROR_INSUFFICIENT_SIZE;
    } else {
      if (n > *count) n = *count;
      mock_process stack_rows[256];
      mock_process* all = n <= 256 ? stack_rows : malloc(n * sizeof(mock_process));
      if (all == NULL) abort();
      collect_rows(&c, kind, all, n);
      for (size_t i = 0; i < n; ++i) write_row((unsigned char*)rows + i * row_bytes, row_bytes, &all[i]);
      if (all != stack_rows) free(all);
      *count = (unsigned)claimed;
    }
    maybe_grow(&c, kind);
  }
  return end(&c, rc);
}

#define PROCESS_EXPORTS(base, kind)                                                                        \
  MOCK_EXPORT(nvmlReturn_t, base##_v3, (nvmlDevice_t device, unsigned int* count, void* rows)) {          \
    return processes(#base "_v3", device, count, rows, kind, 3);                                          \
  }                                                                                                        \
  MOCK_EXPORT(nvmlReturn_t, base##_v2, (nvmlDevice_t device, unsigned int* count, void* rows)) {          \
    return processes(#base "_v2", device, count, rows, kind, 2);                                          \
  }                                                                                                        \
  MOCK_EXPORT(nvmlReturn_t, base, (nvmlDevice_t device, unsigned int* count, void* rows)) {               \
    return processes(#base, device, count, rows, kind, 1);                                                \
  }

PROCESS_EXPORTS(nvmlDeviceGetComputeRunningProcesses, MOCK_COMPUTE)
PROCESS_EXPORTS(nvmlDeviceGetGraphicsRunningProcesses, MOCK_GRAPHICS)
PROCESS_EXPORTS(nvmlDeviceGetMPSComputeRunningProcesses, MOCK_MPS)

/* Present on 535.43+ (confidential compute) and 535.104+ (detail list): gpu-layers only looks
 * them up to date the driver when its version string is unavailable; hide them to mimic others. */
MOCK_EXPORT(nvmlReturn_t, nvmlDeviceGetConfComputeMemSizeInfo, (nvmlDevice_t device, void* info)) {
  (void)info;
  call c;
  nvmlReturn_t rc = begin(&c, "nvmlDeviceGetConfComputeMemSizeInfo", 0, device, 1);
  return end(&c, rc == NVML_SUCCESS ? NVML_ERROR_NOT_SUPPORTED : rc);
}
MOCK_EXPORT(nvmlReturn_t, nvmlDeviceGetRunningProcessDetailList, (nvmlDevice_t device, void* list)) {
  (void)list;
  call c;
  nvmlReturn_t rc = begin(&c, "nvmlDeviceGetRunningProcessDetailList", 0, device, 1);
  return end(&c, rc == NVML_SUCCESS ? NVML_ERROR_NOT_SUPPORTED : rc);
}
