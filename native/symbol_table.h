/*
 * Versioned symbol resolution shared by the NVML and CUDA tables: every logical call lists the
 * exported names to try, newest ABI first, and resolves to the first one the library exports.
 * A call none of whose names exists stays null; callers turn that into a per-field status.
 */
#ifndef GPU_LAYERS_SYMBOL_TABLE_H_
#define GPU_LAYERS_SYMBOL_TABLE_H_

#include <array>

#include "dynamic_library.h"

namespace gpu_layers {

struct SymbolSpec {
  const char* key;            // the logical name reported to JavaScript
  const char* candidates[4];  // exported names, newest ABI first, null-terminated
};

template <typename Call, int N>
class SymbolTable {
 public:
  explicit SymbolTable(const std::array<SymbolSpec, N>& specs) : specs_(specs) {
    functions_.fill(nullptr);
    generation_.fill(-1);
  }

  void Resolve(const DynamicLibrary& library) {
    for (int call = 0; call < N; ++call) {
      functions_[call] = nullptr;
      generation_[call] = -1;
      for (int g = 0; specs_[call].candidates[g] != nullptr; ++g) {
        if (void* fn = library.Symbol(specs_[call].candidates[g])) {
          functions_[call] = fn;
          generation_[call] = g;
          break;
        }
      }
    }
  }

  template <typename Fn>
  Fn Get(Call call) const {
    return reinterpret_cast<Fn>(functions_[static_cast<int>(call)]);
  }
  // Calls the resolved function, or returns missing_rc when the library exports none of its names.
  template <typename Fn, typename... Args>
  int CallOr(int missing_rc, Call call, Args... args) const {
    Fn fn = Get<Fn>(call);
    return fn != nullptr ? fn(args...) : missing_rc;
  }
  bool Has(Call call) const { return functions_[static_cast<int>(call)] != nullptr; }
  // 0 for the newest candidate, 1 for the next, ...; -1 when none is exported.
  int Generation(Call call) const { return generation_[static_cast<int>(call)]; }
  const char* ResolvedName(int call) const {
    return generation_[call] < 0 ? nullptr : specs_[call].candidates[generation_[call]];
  }
  const char* Key(int call) const { return specs_[call].key; }
  static constexpr int size() { return N; }

 private:
  const std::array<SymbolSpec, N>& specs_;
  std::array<void*, N> functions_;
  std::array<int, N> generation_;
};

}  // namespace gpu_layers

#endif  // GPU_LAYERS_SYMBOL_TABLE_H_
