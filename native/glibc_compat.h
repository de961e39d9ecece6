/*
 * Force-included first into every native translation unit (`-include native/glibc_compat.h` in
 * binding.gyp and CMakeLists.txt) so that binaries built on a new glibc/libstdc++ (Debian 12:
 * glibc 2.36, gcc 12) load on the GPU hosts people actually run: Ubuntu 20.04 (glibc 2.31,
 * GLIBCXX_3.4.28), RHEL/Rocky 8 (glibc 2.28, GLIBCXX_3.4.25), even glibc 2.17. The linker binds
 * each undefined symbol to the newest (default) version the build machine's libraries define; the
 * directives below bind the few that moved or appeared recently to the oldest version that has the
 * same behaviour, or avoid them. scripts/build/check-glibc.sh checks the result on the built files; a
 * symbol it reports as too new gets a line here.
 */
#ifndef GPU_LAYERS_GLIBC_COMPAT_H
#define GPU_LAYERS_GLIBC_COMPAT_H

/* Only for glibc on x86-64, whose version names these are. __GLIBC__ is not defined yet (no header
 * is included before this one, and including <features.h> here would fix the feature-test macros
 * before a source file sets _GNU_SOURCE), so glibc is recognised by a header only it has. musl
 * has no symbol versions: there this file does nothing. */
#if defined(__linux__) && defined(__x86_64__) && defined(__has_include)
#if __has_include(<gnu/libc-version.h>)

/* glibc 2.34 merged libdl into libc and gave dlopen/dlsym/dlerror/dlinfo a new default version
 * (GLIBC_2.34). The old versions are still exported by libc.so.6 with the same behaviour and are
 * what libdl.so.2 defines on older glibc: GLIBC_2.2.5 is x86-64's baseline, dlinfo came in 2.3.3.
 * The addon also names libdl.so.2 as a dependency (binding.gyp, CMakeLists.txt) so that on those
 * hosts the lookup finds them there. */
__asm__(".symver dlopen,dlopen@GLIBC_2.2.5");
__asm__(".symver dlsym,dlsym@GLIBC_2.2.5");
__asm__(".symver dlerror,dlerror@GLIBC_2.2.5");
__asm__(".symver dlinfo,dlinfo@GLIBC_2.3.3");

#ifdef __cplusplus

/* libstdc++ 12's shared_ptr reads glibc 2.32's `__libc_single_threaded` (a variable: no older
 * version to bind to) to skip atomic reference counts in a process without threads. Inside Node it
 * is always false (libuv's pool and V8's platform threads exist before any addon loads), so a
 * constant false gives the same code path without the GLIBC_2.32 reference. The name is redirected
 * before <sys/single_threaded.h> declares it; the inline variable is hidden (-fvisibility=hidden)
 * and never written. */
#define __libc_single_threaded gpu_layers_libc_single_threaded
extern "C" {
inline char gpu_layers_libc_single_threaded = 0;
}

/* GCC 12 gave condition_variable::wait a second version (GLIBCXX_3.4.30) that is not noexcept, so
 * that pthread_cancel can unwind through it; GLIBCXX_3.4.11 is the same wait, noexcept. Nothing
 * here cancels threads. */
__asm__(".symver _ZNSt18condition_variable4waitERSt11unique_lockISt5mutexE,"
        "_ZNSt18condition_variable4waitERSt11unique_lockISt5mutexE@GLIBCXX_3.4.11");

/* std::allocator<T>::allocate (GCC 11+) calls std::__throw_bad_array_new_length (GLIBCXX_3.4.29)
 * for a count whose size overflows. It throws std::bad_array_new_length (CXXABI_1.3.8, GCC 4.9);
 * defining it here, inline and hidden, keeps the same exception without the GLIBCXX_3.4.29
 * reference. */
#include <new>
namespace std {
[[noreturn]] __attribute__((visibility("hidden"))) inline void __throw_bad_array_new_length() {
#if defined(__cpp_exceptions)
  throw bad_array_new_length();
#else
  __builtin_abort();
#endif
}
}  // namespace std

#else /* C */

/* glibc 2.33 made stat a real exported function (GLIBC_2.33); before it, <sys/stat.h> had stat
 * call __xstat64(_STAT_VER, ...), which libc.so.6 still exports at GLIBC_2.2.5. The first
 * declaration of stat fixes its assembler name, so every stat() call in this unit (whatever
 * <sys/stat.h> declares later, with or without _FILE_OFFSET_BITS=64: on x86-64 struct stat is
 * struct stat64) goes to the weak, hidden gpu_layers_stat, which does what the old inline did
 * (_STAT_VER_LINUX is 1 on x86-64). Different C names for the same symbols keep this compatible
 * with glibc <= 2.32's own declaration of __xstat64 and its inline stat. */
struct stat;
extern int gpu_layers_xstat64(int, const char*, struct stat*) __asm__("__xstat64");
extern int stat(const char* __restrict, struct stat* __restrict) __asm__("gpu_layers_stat");
__attribute__((weak, visibility("hidden"))) int gpu_layers_stat(const char* __restrict path, struct stat* __restrict buf)
    __asm__("gpu_layers_stat");
int gpu_layers_stat(const char* __restrict path, struct stat* __restrict buf) { return gpu_layers_xstat64(1, path, buf); }

#endif /* __cplusplus */

#endif /* glibc */
#endif /* x86-64 Linux */

#endif /* GPU_LAYERS_GLIBC_COMPAT_H */
