/*
 * How the mock libraries export a function so that a scenario can hide it at run time.
 *
 * Each exported name is a GNU indirect function (IFUNC): when a client looks the symbol up
 * (dlsym, or ctypes in pynvml), the dynamic linker runs its resolver, which returns the real
 * implementation, or NULL when the current scenario says "hide <symbol>". dlsym then yields NULL,
 * exactly what a client sees on an older driver that never exported the name, without building a
 * separate library per driver generation.
 */
#ifndef GPU_LAYERS_MOCK_EXPORT_H_
#define GPU_LAYERS_MOCK_EXPORT_H_

#include "scenario.h"

static inline void* mock_resolve_unless_hidden(const char* symbol, void* implementation) {
  mock_scenario* s = mock_acquire(1);
  int hidden = mock_is_hidden(s, symbol);
  mock_release();
  return hidden ? (void*)0 : implementation;
}

#define MOCK_EXPORT(ret, name, params)                                                       \
  static ret name##_impl params;                                                             \
  static __typeof__(&name##_impl) name##_resolver(void) {                                    \
    return (__typeof__(&name##_impl))mock_resolve_unless_hidden(#name, (void*)name##_impl); \
  }                                                                                          \
  __attribute__((visibility("default"), ifunc(#name "_resolver"))) ret name params;        \
  static ret name##_impl params

#endif /* GPU_LAYERS_MOCK_EXPORT_H_ */
