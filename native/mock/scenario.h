/*
 * The mock libraries' view of a scenario file (format: native/mock/README.md). The file named by
 * GPU_LAYERS_MOCK_SCENARIO is parsed into these structs, and parsed again whenever a client starts
 * a new pass (nvmlInit, nvmlDeviceGetCount, cuInit, cuDeviceGetCount) after the file changed, so
 * tests drive time by rewriting it. Plain C, no JSON: one directive per line.
 */
#ifndef GPU_LAYERS_MOCK_SCENARIO_H_
#define GPU_LAYERS_MOCK_SCENARIO_H_

#include <stddef.h>

#define MOCK_TEXT 128
#define MOCK_SYMBOL 96
#define MOCK_NA 0xFFFFFFFFFFFFFFFFULL

enum { MOCK_COMPUTE = 0, MOCK_GRAPHICS = 1, MOCK_MPS = 2, MOCK_KINDS = 3 };

typedef struct {
  unsigned kind;
  unsigned pid;
  unsigned long long used; /* MOCK_NA for "not available" */
  unsigned gpu_instance_id;
  unsigned compute_instance_id;
} mock_process;

typedef struct mock_device {
  char name[MOCK_TEXT];
  char uuid[MOCK_TEXT];
  unsigned pci_domain, pci_bus, pci_device, pci_device_id, pci_subsystem_id;
  unsigned long long mem_total, mem_reserved, mem_used, mem_free;
  unsigned long long bar1_total, bar1_used, bar1_free;
  unsigned long long util_gpu, util_memory;
  /* What a CUDA context costs on this device: the bytes NVML lists for a pid that retained one. */
  unsigned long long context_bytes;
  unsigned mig_current, mig_pending;
  /* MIG devices only */
  unsigned mig_slot, gpu_instance_id, compute_instance_id;
  mock_process* processes;
  size_t process_count;
  struct mock_device* migs;
  size_t mig_count;
  /* Run-time state for the "grow" directive, per process kind. */
  unsigned grow_extra[MOCK_KINDS];
  int grow_calls[MOCK_KINDS];
} mock_device;

/* An rc or delay directive; device -1 = every device, slot -1 = the full GPU itself. */
typedef struct {
  char symbol[MOCK_SYMBOL];
  int device;
  int slot;
  long long value;
} mock_override;

typedef struct {
  char driver_version[MOCK_TEXT];
  char nvml_version[MOCK_TEXT];
  int cuda_driver_version;
  int nvml_init_rc;
  int cuda_init_rc;
  unsigned process_row_bytes;
  unsigned grow_count;
  int grow_calls; /* -1: on every call */
  mock_device* devices;
  size_t device_count;
  mock_override* overrides; /* rc directives */
  size_t override_count;
  mock_override* delays;
  size_t delay_count;
  mock_override* counts; /* count directives: what a count-returning call claims */
  size_t count_count;
  char (*hidden)[MOCK_SYMBOL];
  size_t hidden_count;
  char (*unterminated)[MOCK_SYMBOL];
  size_t unterminated_count;
  int* cuda_order;
  size_t cuda_order_count;
  int broken; /* the file could not be read or parsed: every call fails */
  char error[512];
} mock_scenario;

/* Locks the shared state and returns the current scenario, re-reading the file first when
 * `refresh` is set and the file changed. Always pair with mock_release(). */
mock_scenario* mock_acquire(int refresh);
void mock_release(void);

/* Device lookup by NVML index; MIG devices by (index, slot). NULL when absent. */
mock_device* mock_device_at(mock_scenario* s, unsigned index);

/* Whether an rc directive matches `symbol` on (device, slot) (device -1 for system calls); the
 * code it gives goes to *rc. A matching 0 means "success without doing the work". */
int mock_find_rc(const mock_scenario* s, const char* symbol, int device, int slot, int* rc);
/* Whether a count directive matches; the count it claims goes to *count. */
int mock_find_count(const mock_scenario* s, const char* symbol, int device, int slot, unsigned long long* count);
/* Milliseconds to sleep before `symbol` runs on (device, slot), or 0. */
long long mock_injected_delay(const mock_scenario* s, const char* symbol, int device, int slot);
int mock_is_hidden(const mock_scenario* s, const char* symbol);
int mock_is_unterminated(const mock_scenario* s, const char* symbol);

/* Sleeps without holding the lock. */
void mock_sleep_ms(long long ms);

/* Appends "<symbol> <rc>" to $GPU_LAYERS_MOCK_TRACE when it is set. Call with the lock held. */
void mock_trace(const char* symbol, int rc);

/* A context some process created through the mock CUDA library, as the mock NVML sees it. */
typedef struct {
  unsigned pid;
  char uuid[MOCK_TEXT];
} mock_context;

/* Records that this process created a context on the device with `uuid`: one line appended to
 * "<scenario file>.contexts", which every mock library (in any process) reads, the way the real
 * driver shows every process's context to NVML. Call with the lock held. */
void mock_register_context(const char* uuid);
/* The registered contexts of processes still alive, as of the last refresh. Lock held. */
size_t mock_live_contexts(const mock_context** out);

/* Parses the hex digits of "GPU-xxxxxxxx-xxxx-..." or "MIG-..." into 16 bytes; 0 on success. */
int mock_uuid_bytes(const char* uuid, unsigned char out[16]);

#endif /* GPU_LAYERS_MOCK_SCENARIO_H_ */
