/*
 * Scenario file parsing and the shared, locked state of a mock library (see scenario.h and
 * native/mock/README.md for the format).
 */
#define _GNU_SOURCE
#include "scenario.h"

#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>
#include <time.h>

#define MOCK_MAGIC "gpu-layers-mock-scenario"

static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;
static mock_scenario* g_current = NULL;
static struct stat g_file_stat;
static int g_loaded = 0;
static FILE* g_trace = NULL;
static int g_trace_checked = 0;
static mock_context* g_contexts = NULL;
static size_t g_context_count = 0;
static struct stat g_contexts_stat;

/* What the mock reports when no scenario file is named: one idle 80 GB GPU. */
static const char* kDefaultScenario =
    MOCK_MAGIC " 1\n"
    "driver_version 550.54.15\n"
    "nvml_version 12.550.54.15\n"
    "cuda_driver_version 12040\n"
    "device\n"
    "name Mock NVIDIA H100 80GB HBM3\n"
    "uuid GPU-00000000-0000-4000-8000-000000000000\n"
    "pci 0 24 0 0x233010de 0x16c110de\n"
    "memory 85520809984 547880960 0 84972929024\n"
    "bar1 137438953472 2097152 137436856320\n"
    "utilization 0 0\n";

/* ---------- small helpers ---------- */

static void* grow_array(void* data, size_t count, size_t size) {
  /* Grows to count + 1 elements; the mock is a test library, so running out of memory aborts. */
  void* out = realloc(data, (count + 1) * size);
  if (out == NULL) abort();
  memset((char*)out + count * size, 0, size);
  return out;
}

static void free_device(mock_device* d) {
  for (size_t i = 0; i < d->mig_count; ++i) free_device(&d->migs[i]);
  free(d->migs);
  free(d->processes);
}

static void free_scenario(mock_scenario* s) {
  if (s == NULL) return;
  for (size_t i = 0; i < s->device_count; ++i) free_device(&s->devices[i]);
  free(s->devices);
  free(s->overrides);
  free(s->delays);
  free(s->counts);
  free(s->hidden);
  free(s->unterminated);
  free(s->cuda_order);
  free(s);
}

static void copy_text(char* out, size_t size, const char* in) {
  snprintf(out, size, "%s", in);
}

/* Parses a decimal or 0x-hex unsigned number, or "na" for NVML_VALUE_NOT_AVAILABLE. */
static int parse_u64(const char* token, unsigned long long* out) {
  if (token == NULL) return -1;
  if (strcmp(token, "na") == 0) {
    *out = MOCK_NA;
    return 0;
  }
  char* end = NULL;
  errno = 0;
  unsigned long long value = strtoull(token, &end, 0);
  if (errno != 0 || end == token || *end != '\0' || token[0] == '-') return -1;
  *out = value;
  return 0;
}

static int parse_u32(const char* token, unsigned* out) {
  unsigned long long value = 0;
  if (parse_u64(token, &value) != 0) return -1;
  if (value == MOCK_NA) value = 0xFFFFFFFFULL;
  if (value > 0xFFFFFFFFULL) return -1;
  *out = (unsigned)value;
  return 0;
}

static int parse_int(const char* token, long long* out) {
  if (token == NULL) return -1;
  char* end = NULL;
  errno = 0;
  long long value = strtoll(token, &end, 0);
  if (errno != 0 || end == token || *end != '\0') return -1;
  *out = value;
  return 0;
}

/* "3" -> device 3, whole GPU; "3/1" -> MIG slot 1 of device 3; NULL -> every device. */
static int parse_target(const char* token, int* device, int* slot) {
  *device = -1;
  *slot = -1;
  if (token == NULL) return 0;
  unsigned d = 0, m = 0;
  char extra = 0;
  if (sscanf(token, "%u/%u%c", &d, &m, &extra) == 2) {
    *device = (int)d;
    *slot = (int)m;
    return 0;
  }
  if (sscanf(token, "%u%c", &d, &extra) == 1) {
    *device = (int)d;
    return 0;
  }
  return -1;
}

static void default_device(mock_device* d, size_t index) {
  snprintf(d->name, sizeof(d->name), "Mock GPU %zu", index);
  snprintf(d->uuid, sizeof(d->uuid), "GPU-00000000-0000-4000-8000-%012zx", index);
  d->pci_bus = (unsigned)(index + 1);
  d->pci_device_id = 0x233010de;
  d->mem_total = 85520809984ULL;
  d->mem_reserved = 547880960ULL;
  d->mem_used = 0;
  d->mem_free = d->mem_total - d->mem_reserved;
  d->bar1_total = 137438953472ULL;
  d->bar1_free = d->bar1_total;
  d->mig_pending = 0;
}

/* ---------- parsing ---------- */

typedef struct {
  mock_scenario* s;
  mock_device* device; /* the section field lines apply to */
  mock_device* gpu;    /* the current full GPU */
  int line;
} parser;

static int fail(parser* p, const char* message, const char* detail) {
  snprintf(p->s->error, sizeof(p->s->error), "line %d: %s%s%s", p->line, message, detail ? ": " : "",
           detail ? detail : "");
  /* The detail is the file's own text, which may be any bytes: print it readable. */
  for (char* c = p->s->error; *c != '\0'; ++c) {
    if ((unsigned char)*c < 0x20 || (unsigned char)*c >= 0x7f) *c = '?';
  }
  return -1;
}

static int need_device(parser* p, const char* key) {
  if (p->device == NULL) return fail(p, "this line belongs after a 'device' line", key);
  return 0;
}

static int add_override(parser* p, mock_override** list, size_t* count, char** tokens, int n) {
  if (n < 3 || n > 4) return fail(p, "expected: <directive> <symbol> <value> [<device>[/<slot>]]", tokens[0]);
  mock_override o;
  memset(&o, 0, sizeof(o));
  copy_text(o.symbol, sizeof(o.symbol), tokens[1]);
  if (parse_int(tokens[2], &o.value) != 0) return fail(p, "not a number", tokens[2]);
  if (parse_target(n == 4 ? tokens[3] : NULL, &o.device, &o.slot) != 0) return fail(p, "bad target", tokens[3]);
  *list = grow_array(*list, *count, sizeof(o));
  (*list)[(*count)++] = o;
  return 0;
}

static int add_name(char (**list)[MOCK_SYMBOL], size_t* count, const char* symbol) {
  *list = grow_array(*list, *count, sizeof(**list));
  copy_text((*list)[(*count)++], MOCK_SYMBOL, symbol);
  return 0;
}

static int parse_process(parser* p, char** tokens, int n) {
  if (need_device(p, tokens[0]) != 0) return -1;
  if (n != 4 && n != 6) return fail(p, "expected: process <compute|graphics|mps> <pid> <bytes|na> [<gi> <ci>]", NULL);
  mock_process proc;
  memset(&proc, 0, sizeof(proc));
  if (strcmp(tokens[1], "compute") == 0) proc.kind = MOCK_COMPUTE;
  else if (strcmp(tokens[1], "graphics") == 0) proc.kind = MOCK_GRAPHICS;
  else if (strcmp(tokens[1], "mps") == 0) proc.kind = MOCK_MPS;
  else return fail(p, "unknown process kind", tokens[1]);
  if (parse_u32(tokens[2], &proc.pid) != 0) return fail(p, "bad pid", tokens[2]);
  if (parse_u64(tokens[3], &proc.used) != 0) return fail(p, "bad byte count", tokens[3]);
  proc.gpu_instance_id = 0xFFFFFFFFu;
  proc.compute_instance_id = 0xFFFFFFFFu;
  if (p->device != p->gpu) {
    proc.gpu_instance_id = p->device->gpu_instance_id;
    proc.compute_instance_id = p->device->compute_instance_id;
  }
  if (n == 6 && (parse_u32(tokens[4], &proc.gpu_instance_id) != 0 ||
                 parse_u32(tokens[5], &proc.compute_instance_id) != 0)) {
    return fail(p, "bad instance ids", NULL);
  }
  mock_device* d = p->device;
  d->processes = grow_array(d->processes, d->process_count, sizeof(proc));
  d->processes[d->process_count++] = proc;
  return 0;
}

static int parse_numbers(parser* p, char** tokens, int n, int expected, unsigned long long** fields) {
  if (need_device(p, tokens[0]) != 0) return -1;
  if (n != expected + 1) return fail(p, "wrong number of values", tokens[0]);
  for (int i = 0; i < expected; ++i) {
    if (parse_u64(tokens[i + 1], fields[i]) != 0) return fail(p, "bad number", tokens[i + 1]);
  }
  return 0;
}

/* `rest` is the text after the keyword, for lines whose value may contain spaces. */
static int parse_line(parser* p, char** tokens, int n, const char* rest) {
  mock_scenario* s = p->s;
  const char* key = tokens[0];
  if (strcmp(key, "driver_version") == 0) {
    copy_text(s->driver_version, sizeof(s->driver_version), rest);
  } else if (strcmp(key, "nvml_version") == 0) {
    copy_text(s->nvml_version, sizeof(s->nvml_version), rest);
  } else if (strcmp(key, "cuda_driver_version") == 0 || strcmp(key, "nvml_init_rc") == 0 ||
             strcmp(key, "cuda_init_rc") == 0 || strcmp(key, "process_row_bytes") == 0) {
    long long value = 0;
    /* cuda_driver_version may be "na": NVML_VALUE_NOT_AVAILABLE in an int is -1. */
    int na = n == 2 && strcmp(key, "cuda_driver_version") == 0 && strcmp(tokens[1], "na") == 0;
    if (na) value = -1;
    else if (n != 2 || parse_int(tokens[1], &value) != 0) return fail(p, "expected one number", key);
    if (strcmp(key, "cuda_driver_version") == 0) {
      s->cuda_driver_version = (int)value;
    } else if (strcmp(key, "nvml_init_rc") == 0) {
      s->nvml_init_rc = (int)value;
    } else if (strcmp(key, "cuda_init_rc") == 0) {
      s->cuda_init_rc = (int)value;
    } else if (value == 16 || value == 24 || value == 32) {
      s->process_row_bytes = (unsigned)value;
    } else {
      return fail(p, "process_row_bytes must be 16, 24 or 32", tokens[1]);
    }
  } else if (strcmp(key, "hide") == 0) {
    if (n != 2) return fail(p, "expected: hide <symbol>", NULL);
    add_name(&s->hidden, &s->hidden_count, tokens[1]);
  } else if (strcmp(key, "unterminated") == 0) {
    if (n != 2) return fail(p, "expected: unterminated <symbol>", NULL);
    add_name(&s->unterminated, &s->unterminated_count, tokens[1]);
  } else if (strcmp(key, "rc") == 0) {
    return add_override(p, &s->overrides, &s->override_count, tokens, n);
  } else if (strcmp(key, "delay") == 0) {
    if (add_override(p, &s->delays, &s->delay_count, tokens, n) != 0) return -1;
    if (s->delays[s->delay_count - 1].value < 0) return fail(p, "a delay cannot be negative", tokens[2]);
  } else if (strcmp(key, "count") == 0) {
    if (add_override(p, &s->counts, &s->count_count, tokens, n) != 0) return -1;
    long long value = s->counts[s->count_count - 1].value;
    if (value < 0 || value > 0xFFFFFFFFLL) return fail(p, "a count is 0 to 4294967295", tokens[2]);
  } else if (strcmp(key, "grow") == 0) {
    long long count = 0, calls = 1;
    if (n < 2 || n > 3 || parse_int(tokens[1], &count) != 0 || count < 0 || (n == 3 && parse_int(tokens[2], &calls) != 0)) {
      return fail(p, "expected: grow <processes> [<calls>|-1]", NULL);
    }
    s->grow_count = (unsigned)count;
    s->grow_calls = (int)calls;
  } else if (strcmp(key, "cuda_order") == 0) {
    for (int i = 1; i < n; ++i) {
      long long index = 0;
      if (parse_int(tokens[i], &index) != 0 || index < 0) return fail(p, "bad device index", tokens[i]);
      s->cuda_order = grow_array(s->cuda_order, s->cuda_order_count, sizeof(int));
      s->cuda_order[s->cuda_order_count++] = (int)index;
    }
  } else if (strcmp(key, "device") == 0) {
    if (n != 1) return fail(p, "'device' takes no value", NULL);
    s->devices = grow_array(s->devices, s->device_count, sizeof(mock_device));
    /* grow_array may move the array: the section pointers are taken afresh. */
    p->gpu = p->device = &s->devices[s->device_count];
    default_device(p->gpu, s->device_count);
    s->device_count++;
  } else if (strcmp(key, "mig") == 0) {
    if (p->gpu == NULL) return fail(p, "'mig' belongs after a 'device' line", NULL);
    mock_device mig;
    memset(&mig, 0, sizeof(mig));
    if (n != 4 || parse_u32(tokens[1], &mig.mig_slot) != 0 || parse_u32(tokens[2], &mig.gpu_instance_id) != 0 ||
        parse_u32(tokens[3], &mig.compute_instance_id) != 0) {
      return fail(p, "expected: mig <slot> <gpu-instance-id> <compute-instance-id>", NULL);
    }
    /* Device handles carry the slot in 8 bits (mock_nvml.c). */
    if (mig.mig_slot > 254) return fail(p, "a MIG slot is 0 to 254", tokens[1]);
    snprintf(mig.name, sizeof(mig.name), "%.100s MIG", p->gpu->name);
    snprintf(mig.uuid, sizeof(mig.uuid), "MIG-00000000-0000-4000-8000-%06zx%06u", (size_t)(p->gpu - s->devices),
             mig.mig_slot);
    p->gpu->migs = grow_array(p->gpu->migs, p->gpu->mig_count, sizeof(mig));
    p->gpu->migs[p->gpu->mig_count] = mig;
    p->device = &p->gpu->migs[p->gpu->mig_count++];
  } else if (strcmp(key, "name") == 0) {
    if (need_device(p, key) != 0) return -1;
    copy_text(p->device->name, sizeof(p->device->name), rest);
  } else if (strcmp(key, "uuid") == 0) {
    if (need_device(p, key) != 0 || n != 2) return fail(p, "expected: uuid <uuid>", NULL);
    copy_text(p->device->uuid, sizeof(p->device->uuid), tokens[1]);
  } else if (strcmp(key, "pci") == 0) {
    mock_device* d = p->device;
    if (need_device(p, key) != 0) return -1;
    unsigned* fields[5] = {&d->pci_domain, &d->pci_bus, &d->pci_device, &d->pci_device_id, &d->pci_subsystem_id};
    if (n != 6) return fail(p, "expected: pci <domain> <bus> <device> <pci-device-id> <subsystem-id>", NULL);
    for (int i = 0; i < 5; ++i) {
      if (parse_u32(tokens[i + 1], fields[i]) != 0) return fail(p, "bad number", tokens[i + 1]);
    }
  } else if (strcmp(key, "memory") == 0) {
    mock_device* d = p->device;
    if (d == NULL) return need_device(p, key);
    unsigned long long* fields[4] = {&d->mem_total, &d->mem_reserved, &d->mem_used, &d->mem_free};
    return parse_numbers(p, tokens, n, 4, fields);
  } else if (strcmp(key, "bar1") == 0) {
    mock_device* d = p->device;
    if (d == NULL) return need_device(p, key);
    unsigned long long* fields[3] = {&d->bar1_total, &d->bar1_used, &d->bar1_free};
    return parse_numbers(p, tokens, n, 3, fields);
  } else if (strcmp(key, "utilization") == 0) {
    mock_device* d = p->device;
    if (d == NULL) return need_device(p, key);
    unsigned long long* fields[2] = {&d->util_gpu, &d->util_memory};
    return parse_numbers(p, tokens, n, 2, fields);
  } else if (strcmp(key, "context_bytes") == 0) {
    mock_device* d = p->device;
    if (d == NULL) return need_device(p, key);
    unsigned long long* fields[1] = {&d->context_bytes};
    return parse_numbers(p, tokens, n, 1, fields);
  } else if (strcmp(key, "mig_mode") == 0) {
    if (p->gpu == NULL || p->device != p->gpu) return fail(p, "'mig_mode' belongs to a full GPU", NULL);
    if (n != 3 || parse_u32(tokens[1], &p->gpu->mig_current) != 0 || parse_u32(tokens[2], &p->gpu->mig_pending) != 0) {
      return fail(p, "expected: mig_mode <current> <pending>", NULL);
    }
  } else if (strcmp(key, "process") == 0) {
    return parse_process(p, tokens, n);
  } else {
    return fail(p, "unknown directive", key);
  }
  return 0;
}

static mock_scenario* parse_text(char* text) {
  mock_scenario* s = calloc(1, sizeof(mock_scenario));
  if (s == NULL) abort();
  copy_text(s->driver_version, sizeof(s->driver_version), "550.54.15");
  copy_text(s->nvml_version, sizeof(s->nvml_version), "12.550.54.15");
  s->cuda_driver_version = 12040;
  s->process_row_bytes = 24;
  s->grow_calls = 1;
  parser p = {s, NULL, NULL, 0};
  int seen_magic = 0;
  char* save = NULL;
  for (char* line = strtok_r(text, "\n", &save); line != NULL; line = strtok_r(NULL, "\n", &save)) {
    p.line++;
    char* hash = strchr(line, '#');
    if (hash != NULL) *hash = '\0';
    size_t len = strlen(line);
    while (len > 0 && isspace((unsigned char)line[len - 1])) line[--len] = '\0';
    while (isspace((unsigned char)*line)) line++;
    if (*line == '\0') continue;
    if (!seen_magic) {
      if (strncmp(line, MOCK_MAGIC " 1", sizeof(MOCK_MAGIC) + 1) != 0 || line[sizeof(MOCK_MAGIC) + 1] != '\0') {
        fail(&p, "the first line must be '" MOCK_MAGIC " 1'", line);
        s->broken = 1;
        return s;
      }
      seen_magic = 1;
      continue;
    }
    /* The text after the keyword, kept whole for values with spaces (device names). */
    const char* rest = line;
    while (*rest != '\0' && !isspace((unsigned char)*rest)) rest++;
    while (isspace((unsigned char)*rest)) rest++;
    char copy[1024];
    copy_text(copy, sizeof(copy), line);
    char* tokens[16];
    int n = 0;
    char* token_save = NULL;
    for (char* t = strtok_r(copy, " \t", &token_save); t != NULL && n < 16; t = strtok_r(NULL, " \t", &token_save)) {
      tokens[n++] = t;
    }
    char rest_copy[MOCK_TEXT];
    copy_text(rest_copy, sizeof(rest_copy), rest);
    if (parse_line(&p, tokens, n, rest_copy) != 0) {
      s->broken = 1;
      return s;
    }
  }
  if (!seen_magic) {
    fail(&p, "empty scenario", NULL);
    s->broken = 1;
  }
  return s;
}

static mock_scenario* load_file(const char* path) {
  FILE* f = fopen(path, "rb");
  if (f == NULL) {
    mock_scenario* s = calloc(1, sizeof(mock_scenario));
    if (s == NULL) abort();
    snprintf(s->error, sizeof(s->error), "cannot open %s: %s", path, strerror(errno));
    s->broken = 1;
    return s;
  }
  size_t size = 0, cap = 65536;
  char* text = malloc(cap + 1);
  if (text == NULL) abort();
  size_t got;
  while ((got = fread(text + size, 1, cap - size, f)) > 0) {
    size += got;
    if (size == cap) {
      cap *= 2;
      text = realloc(text, cap + 1);
      if (text == NULL) abort();
    }
  }
  fclose(f);
  text[size] = '\0';
  mock_scenario* s = parse_text(text);
  free(text);
  return s;
}

static int same_file(const struct stat* a, const struct stat* b) {
  return a->st_dev == b->st_dev && a->st_ino == b->st_ino && a->st_size == b->st_size &&
         a->st_mtim.tv_sec == b->st_mtim.tv_sec && a->st_mtim.tv_nsec == b->st_mtim.tv_nsec;
}

static void contexts_path(char* out, size_t size) {
  const char* path = getenv("GPU_LAYERS_MOCK_SCENARIO");
  snprintf(out, size, "%s.contexts", path != NULL && *path != '\0' ? path : "");
}

/* Re-reads the context registry when it changed; keeps the entries of live processes. */
static void refresh_contexts_locked(void) {
  char path[4096];
  contexts_path(path, sizeof(path));
  struct stat st;
  if (path[0] == '.' || stat(path, &st) != 0) {
    g_context_count = 0;
    return;
  }
  if (same_file(&st, &g_contexts_stat) && g_contexts != NULL) return;
  g_contexts_stat = st;
  g_context_count = 0;
  FILE* f = fopen(path, "r");
  if (f == NULL) return;
  char line[512];
  while (fgets(line, sizeof(line), f) != NULL) {
    mock_context c;
    memset(&c, 0, sizeof(c));
    if (sscanf(line, "%u %127s", &c.pid, c.uuid) != 2) continue;
    g_contexts = grow_array(g_contexts, g_context_count, sizeof(c));
    g_contexts[g_context_count++] = c;
  }
  fclose(f);
}

static void refresh_locked(void) {
  refresh_contexts_locked();
  const char* path = getenv("GPU_LAYERS_MOCK_SCENARIO");
  if (path == NULL || *path == '\0') {
    if (g_current == NULL) {
      char* text = strdup(kDefaultScenario);
      if (text == NULL) abort();
      g_current = parse_text(text);
      free(text);
    }
    return;
  }
  struct stat st;
  int stat_ok = stat(path, &st) == 0;
  if (g_current != NULL && g_loaded && stat_ok && same_file(&st, &g_file_stat)) return;
  mock_scenario* next = load_file(path);
  if (next->broken) fprintf(stderr, "gpu-layers mock: %s: %s\n", path, next->error);
  free_scenario(g_current);
  g_current = next;
  g_loaded = stat_ok;
  if (stat_ok) g_file_stat = st;
}

/* ---------- public ---------- */

mock_scenario* mock_acquire(int refresh) {
  pthread_mutex_lock(&g_lock);
  if (refresh || g_current == NULL) refresh_locked();
  return g_current;
}

void mock_release(void) { pthread_mutex_unlock(&g_lock); }

mock_device* mock_device_at(mock_scenario* s, unsigned index) {
  if (s == NULL || index >= s->device_count) return NULL;
  return &s->devices[index];
}

static const mock_override* find_override(const mock_override* list, size_t count, const char* symbol, int device,
                                          int slot) {
  /* The last matching line wins, so a scenario can add a more specific line after a general one. */
  const mock_override* found = NULL;
  for (size_t i = 0; i < count; ++i) {
    const mock_override* o = &list[i];
    if (strcmp(o->symbol, symbol) != 0 && strcmp(o->symbol, "*") != 0) continue;
    if (o->device != -1 && (o->device != device || o->slot != slot)) continue;
    found = o;
  }
  return found;
}

int mock_find_rc(const mock_scenario* s, const char* symbol, int device, int slot, int* rc) {
  const mock_override* o = find_override(s->overrides, s->override_count, symbol, device, slot);
  if (o != NULL) *rc = (int)o->value;
  return o != NULL;
}

int mock_find_count(const mock_scenario* s, const char* symbol, int device, int slot, unsigned long long* count) {
  const mock_override* o = find_override(s->counts, s->count_count, symbol, device, slot);
  if (o != NULL) *count = (unsigned long long)o->value;
  return o != NULL;
}

long long mock_injected_delay(const mock_scenario* s, const char* symbol, int device, int slot) {
  const mock_override* o = find_override(s->delays, s->delay_count, symbol, device, slot);
  return o != NULL ? o->value : 0;
}

static int in_list(char (*list)[MOCK_SYMBOL], size_t count, const char* symbol) {
  for (size_t i = 0; i < count; ++i) {
    if (strcmp(list[i], symbol) == 0) return 1;
  }
  return 0;
}

int mock_is_hidden(const mock_scenario* s, const char* symbol) { return in_list(s->hidden, s->hidden_count, symbol); }

int mock_is_unterminated(const mock_scenario* s, const char* symbol) {
  return in_list(s->unterminated, s->unterminated_count, symbol);
}

void mock_sleep_ms(long long ms) {
  struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
  }
}

void mock_trace(const char* symbol, int rc) {
  if (!g_trace_checked) {
    g_trace_checked = 1;
    const char* path = getenv("GPU_LAYERS_MOCK_TRACE");
    if (path != NULL && *path != '\0') g_trace = fopen(path, "a");
  }
  if (g_trace == NULL) return;
  fprintf(g_trace, "%s %d\n", symbol, rc);
  fflush(g_trace);
}

void mock_register_context(const char* uuid) {
  char path[4096];
  contexts_path(path, sizeof(path));
  if (path[0] == '.') return; /* no scenario file: nobody to tell */
  FILE* f = fopen(path, "a");
  if (f == NULL) return;
  fprintf(f, "%u %s\n", (unsigned)getpid(), uuid);
  fclose(f);
}

size_t mock_live_contexts(const mock_context** out) {
  static mock_context live[256];
  size_t n = 0;
  for (size_t i = 0; i < g_context_count && n < 256; ++i) {
    /* A process that exited takes its context with it, as with the real driver. */
    if (kill((pid_t)g_contexts[i].pid, 0) == 0 || errno == EPERM) live[n++] = g_contexts[i];
  }
  *out = live;
  return n;
}

int mock_uuid_bytes(const char* uuid, unsigned char out[16]) {
  memset(out, 0, 16);
  const char* p = strchr(uuid, '-');
  if (p == NULL) return -1;
  int nibbles = 0;
  for (p = p + 1; *p != '\0' && nibbles < 32; ++p) {
    if (*p == '-') continue;
    if (!isxdigit((unsigned char)*p)) return -1;
    int v = isdigit((unsigned char)*p) ? *p - '0' : (tolower((unsigned char)*p) - 'a' + 10);
    out[nibbles / 2] = (unsigned char)(out[nibbles / 2] | (nibbles % 2 == 0 ? v << 4 : v));
    nibbles++;
  }
  return nibbles == 32 ? 0 : -1;
}
