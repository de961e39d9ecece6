#!/usr/bin/env bash
# Memory checks of the native code (the addon and the mock NVML/CUDA libraries), two ways:
#  1. asan:     the native test suites against an ASan + UBSan build (build-sanitize/), with the
#               sanitizer runtime preloaded into Node; any report fails the run.
#  2. valgrind: the real node-gyp build under valgrind memcheck, sampling the mocks through many
#               fault scenarios (scripts/hardening/valgrind-samples.js); any error or definite leak with a
#               frame in a gpu-layers binary fails the run (scripts/hardening/valgrind-summary.js).
# Two tools because each sees what the other cannot: ASan sees overflows of stack and global
# buffers but needs an instrumented build; valgrind checks the very binary that ships, and leaks.
#
#   scripts/hardening/check-native-memory.sh [asan|valgrind]...   (default: both)
#
# Environment: GPU_LAYERS_MEMCHECK_OUT (reports; default test-artifacts/native-memory),
# GPU_LAYERS_MEMCHECK_SAMPLES (default 1000). Needs g++, cmake, Debian's valgrind as
# `npm run fixtures` fetches it into .cache/debian-tools (no install, no root), and a built checkout
# (npm ci: build/Release and dist/). Exits non-zero on any finding.
set -uo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$root"
out=${GPU_LAYERS_MEMCHECK_OUT:-$root/test-artifacts/native-memory}
samples=${GPU_LAYERS_MEMCHECK_SAMPLES:-1000}
parts=("$@")
[ ${#parts[@]} -eq 0 ] && parts=(asan valgrind)

rm -rf "$out"
mkdir -p "$out"
summary=()
failed=0
fail() {
  summary+=("FAIL $1")
  failed=1
}
seconds_since() { echo "$(( ($(date +%s%N) - $1) / 1000000000 ))"; }
# The test run's process group (run_asan), ended on any exit, an interrupt included: it is not the
# terminal's foreground group, so Ctrl-C would not reach it.
test_group=
trap '[ -z "$test_group" ] || kill -- -"$test_group" 2>/dev/null' EXIT
trap 'exit 130' INT TERM

run_asan() {
  local started reports build_log test_log
  started=$(date +%s%N)
  build_log=$out/build-sanitize.log
  # npx, not the bin directly: npm's config (nodedir, as `npm run build:cmake` gets it) must apply,
  # or else the headers of the Node.js that runs it (with-node-headers.sh).
  # Incremental: after the first build only changed sources recompile.
  if ! sh scripts/build/with-node-headers.sh npx cmake-js build --out build-sanitize --CDGPU_LAYERS_SANITIZE=ON --parallel 2 >"$build_log" 2>&1; then
    tail -40 "$build_log"
    fail "asan: build-sanitize did not build (log: $build_log)"
    return
  fi
  local addon=$root/build-sanitize/Release/gpu_layers.node
  # The exact runtimes the build links, so the preloaded ones are never from another compiler.
  local asan_lib ubsan_lib
  asan_lib=$(ldd "$addon" | awk '/libasan\.so/ { print $3 }')
  ubsan_lib=$(ldd "$addon" | awk '/libubsan\.so/ { print $3 }')
  if [ -z "$asan_lib" ] || [ -z "$ubsan_lib" ]; then
    fail "asan: $addon does not link libasan and libubsan: not a sanitizer build"
    return
  fi
  local ubsan_log_path=$root/build-sanitize/Release/libubsan_log_path.so
  reports=$out/sanitizer-reports
  mkdir -p "$reports"
  local load_log=$out/native-loads.log
  : >"$load_log"
  # The suites that drive the addon and the mocks through their calls. Not cmake-build.test.ts: it
  # checks the uninstrumented build-cmake/ on purpose, while node-gyp-build.test.ts runs the same
  # contract on build-sanitize/ here (test/helpers/paths.ts, GPU_LAYERS_TEST_BUILD_DIR); nor
  # addon-load-failure.test.ts, which loads damaged copies and no addon at all. A new suite that
  # calls into the addon belongs in this list.
  local files=(test/probe/*.test.ts test/binding/node-gyp-build.test.ts test/calibration/*.test.ts
    test/monitor/watch.test.ts test/layers/layers-end-to-end.test.ts test/mock-host/fake-host.test.ts)
  test_log=$out/asan-tests.log
  # LD_PRELOAD: Node is not instrumented, so ASan's runtime must be in the process before anything
  # else (libasan alone would load; libubsan is named so libubsan_log_path.so, which makes UBSan
  # write to its log_path, finds it loaded). Every child inherits it, so CLI children and the
  # python ctypes client run the sanitized mocks too.
  # --retry=1: a few suites assert wall-clock bounds (deadline.test.ts: "fails at once", < 50 ms)
  # that ASan's slower malloc on a busy machine can miss. A retry cannot hide a finding: reports
  # are judged from the log_path files below, not from the test results.
  # detect_leaks=0: LeakSanitizer would report Node's own exit-time memory; leaks are valgrind's
  # part. log_path: a report from any process, parent or child, leaves a file here, so one that
  # a test swallowed (a child's stderr) still fails the run.
  local vitest_rc=0 vitest_pid
  # Job control on: vitest gets its own process group (see the kill below).
  set -m
  env LD_PRELOAD="$asan_lib $ubsan_lib $ubsan_log_path" \
    ASAN_OPTIONS="detect_leaks=0:halt_on_error=1:detect_stack_use_after_return=1:check_initialization_order=1:log_path=$reports/asan" \
    UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:log_path=$reports/ubsan" \
    GPU_LAYERS_TEST_BUILD_DIR=build-sanitize \
    GPU_LAYERS_ADDON="$addon" \
    NODE_OPTIONS="${NODE_OPTIONS:+$NODE_OPTIONS }--require $root/scripts/hardening/native-load-log.cjs" \
    GPU_LAYERS_LOAD_LOG="$load_log" \
    NO_COLOR=1 \
    node node_modules/vitest/vitest.mjs run "${files[@]}" --maxWorkers=2 --retry=1 </dev/null >"$test_log" 2>&1 &
  vitest_pid=$!
  test_group=$vitest_pid
  set +m
  wait "$vitest_pid" || vitest_rc=$?
  # When the sanitizer aborts a test worker, vitest exits ("Channel closed") and leaves its other
  # workers orphaned, still running (and spinning); they and any child they spawned are in
  # vitest's process group, so end that group.
  kill -- -"$vitest_pid" 2>/dev/null || true
  test_group=
  local report_count
  report_count=$(find "$reports" -type f | wc -l)
  for report in $(find "$reports" -type f | sort); do
    echo "---- $report"
    head -60 "$report"
  done
  local passed
  # CI runners set CI (or FORCE_COLOR), and vitest then colours its summary even into a file:
  # NO_COLOR above asks it not to, and the escapes are stripped here in case a version ignores it.
  passed=$(sed 's/\x1b\[[0-9;]*m//g' "$test_log" | grep -E '^ +Tests +' | tail -1 | sed 's/^ *//')
  if [ "$vitest_rc" -ne 0 ]; then
    tail -60 "$test_log"
    fail "asan: the test run failed (exit $vitest_rc, log: $test_log)"
  elif [ -z "$passed" ]; then
    # vitest exits 0 when a SIGTERM stops it early: no summary line means the run did not finish.
    tail -20 "$test_log"
    fail "asan: the test run printed no summary (log: $test_log)"
  fi
  [ "$report_count" -eq 0 ] || fail "asan: $report_count sanitizer report(s) in $reports"

  # The proof the instrumented code ran: which addon each Node process loaded.
  local sanitized foreign cli mocks_foreign
  sanitized=$(awk -v a="$addon" '$1 == "addon" && $NF == a { print $2 }' "$load_log" | sort -u | wc -l)
  cli=$(awk -v a="$addon" '$1 == "addon" && $NF == a && $3 ~ /gpu-layers\.cjs$/ { print $2 }' "$load_log" | sort -u | wc -l)
  foreign=$(awk -v a="$addon" '$1 == "addon" && $NF ~ /gpu_layers\.node$/ && $NF != a' "$load_log" | sort -u)
  mocks_foreign=$(awk -v d="$root/build-sanitize/mock/" '$1 == "mapped" && $NF ~ /lib(nvidia-ml|cuda)\.so/ && index($NF, d) != 1' "$load_log" | sort -u)
  [ "$sanitized" -gt 0 ] || fail "asan: no process loaded $addon (log: $load_log)"
  [ -z "$foreign" ] || fail "asan: an uninstrumented addon was loaded: $foreign"
  [ -z "$mocks_foreign" ] || fail "asan: an uninstrumented NVML/CUDA library was mapped: $mocks_foreign"
  summary+=("asan:     ${passed:-no test count}; sanitized addon loaded by $sanitized Node processes ($cli of them CLI children); $report_count ASan/UBSan reports; $(seconds_since "$started") s")
}

run_valgrind() {
  local started
  started=$(date +%s%N)
  # The fetched copy's launcher, not the system's valgrind: every run, root or not, checks with the
  # same one (scripts/fixtures/fetch-test-tools.sh).
  local valgrind=$root/.cache/debian-tools/bin/valgrind
  if [ ! -x "$valgrind" ]; then
    fail "valgrind: missing $valgrind (npm run fixtures fetches it; npm test does it first)"
    return
  fi
  local addon=$root/build/Release/gpu_layers.node
  for file in "$addon" build/Release/mock/libnvidia-ml.so.1 build/Release/mock/libcuda.so.1 dist/index.js dist/mock.js; do
    if [ ! -f "$file" ]; then
      fail "valgrind: missing $file (npm ci builds it)"
      return
    fi
  done
  local xml=$out/memcheck.xml counts=$out/valgrind-samples.json
  # --jitless: no generated code for valgrind to retranslate (faster here, and no self-modifying
  # code to get wrong). Only "possible" leaks and worse are listed: "still reachable" is what a
  # library keeps on purpose until exit (the mocks' scenario). The workload's own exit status
  # (all samples taken) comes through valgrind.
  local rc=0
  env -u LD_PRELOAD -u NODE_OPTIONS -u GPU_LAYERS_ADDON -u GPU_LAYERS_NVML_LIB -u GPU_LAYERS_CUDA_LIB \
    "$valgrind" --tool=memcheck --leak-check=full --show-leak-kinds=definite,indirect,possible \
    --num-callers=40 --error-limit=no --suppressions="$root/scripts/hardening/valgrind-node.supp" \
    --xml=yes --xml-file="$xml" --log-file="$out/memcheck.log" \
    node --jitless scripts/hardening/valgrind-samples.js --samples "$samples" >"$counts" 2>"$out/valgrind-samples.stderr" || rc=$?
  if [ "$rc" -ne 0 ]; then
    tail -20 "$out/valgrind-samples.stderr" "$out/memcheck.log"
    fail "valgrind: the sampling workload failed (exit $rc)"
  fi
  local verdict=0
  node scripts/hardening/valgrind-summary.js "$xml" | tee "$out/memcheck-summary.txt" || verdict=${PIPESTATUS[0]}
  [ "$verdict" -eq 0 ] || fail "valgrind: errors attributable to gpu-layers binaries ($out/memcheck-summary.txt)"
  local taken
  taken=$(node -e 'try { const c = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8")); console.log(`${c.samples} samples (${c.opens} probes opened, ${c.failedOpens} opens refused)`); } catch { console.log("no sample counts"); }' "$counts")
  summary+=("valgrind: $taken; $(head -2 "$out/memcheck-summary.txt" | tail -1 | sed 's/^valgrind: //'); $(seconds_since "$started") s")
}

for part in "${parts[@]}"; do
  case $part in
    asan) run_asan ;;
    valgrind) run_valgrind ;;
    *)
      echo "usage: $0 [asan|valgrind]..." >&2
      exit 2
      ;;
  esac
done

echo
echo "native memory check (reports in $out):"
printf '  %s\n' "${summary[@]}"
exit "$failed"
