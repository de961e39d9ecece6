/*
 * Preloaded after libasan and libubsan by scripts/hardening/check-native-memory.sh, only in the sanitizer
 * test run (built by CMakeLists.txt with GPU_LAYERS_SANITIZE=ON; never part of the addon). It makes
 * UBSan honour the log_path of UBSAN_OPTIONS.
 *
 * Why: with GCC, ASan and UBSan are two runtimes (libasan.so, libubsan.so), each with its own copy
 * of sanitizer_common. At start-up libubsan applies its log_path by calling the exported
 * __sanitizer_set_report_path, and since libasan is first in the lookup order (it must be), the
 * call lands in libasan's copy: UBSan's own reports still go to stderr, where a child process's
 * report can be swallowed by the test that spawned it. Looking the function up in libubsan itself
 * (dlsym on its handle) reaches libubsan's own copy.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdlib.h>
#include <string.h>

__attribute__((constructor)) static void gpu_layers_ubsan_log_path(void) {
  const char* options = getenv("UBSAN_OPTIONS");
  if (options == NULL) return;
  /* The last log_path= wins, as in the sanitizers' own parser; values end at ':' or a space. */
  const char* value = NULL;
  for (const char* p = strstr(options, "log_path="); p != NULL; p = strstr(p + 1, "log_path=")) {
    if (p == options || p[-1] == ':' || p[-1] == ' ') value = p + strlen("log_path=");
  }
  if (value == NULL) return;
  char path[4096];
  size_t length = strcspn(value, ": ");
  if (length == 0 || length >= sizeof(path)) return;
  memcpy(path, value, length);
  path[length] = '\0';
  void* ubsan = dlopen("libubsan.so.1", RTLD_NOW | RTLD_NOLOAD);
  if (ubsan == NULL) return;
  void (*set_report_path)(const char*) = (void (*)(const char*))dlsym(ubsan, "__sanitizer_set_report_path");
  if (set_report_path != NULL) set_report_path(path);
}
