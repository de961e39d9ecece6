#!/usr/bin/env bash
# Prints, for each native binary, the newest GLIBC_, GLIBCXX_ and CXXABI_ symbol versions it needs
# (its ELF version-needs section: what the dynamic loader checks before it loads the file), and exits
# 1 when one is newer than the limits below, 2 when a file cannot be read. With no arguments: the
# node-gyp build (build/Release) and the prebuilds (prebuilds/linux-x64), where present.
#
# The limits are what native/glibc_compat.h reaches with Debian 12's glibc 2.36 and gcc 12, far
# below the oldest GPU hosts Node 20 runs on (RHEL/Rocky 8: glibc 2.28, GLIBCXX_3.4.25,
# CXXABI_1.3.11; Ubuntu 20.04: glibc 2.31, GLIBCXX_3.4.28); GLIBC_2.17 is also CentOS 7's.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."

declare -A limit=([GLIBC]=2.17 [GLIBCXX]=3.4.22 [CXXABI]=1.3.9)

if ! command -v readelf >/dev/null 2>&1; then
  echo "check-glibc: readelf not found (binutils)" >&2
  exit 2
fi

files=("$@")
if ((${#files[@]} == 0)); then
  shopt -s nullglob
  files=(build/Release/gpu_layers.node build/Release/mock/*.so.1 prebuilds/linux-x64/*.node prebuilds/linux-x64/mock/*.so.1)
  shopt -u nullglob
  if ((${#files[@]} == 0)); then
    echo "check-glibc: nothing to check: no build/Release (npm ci) and no prebuilds/linux-x64" >&2
    exit 2
  fi
fi

newer() { [[ "$1" != "$2" && "$(printf '%s\n%s\n' "$1" "$2" | sort -V | tail -n 1)" == "$1" ]]; }

status=0
for file in "${files[@]}"; do
  # Only the version-needs section: a library's own definitions (libstdc++'s GLIBCXX_*) are not needs.
  if [[ ! -r "$file" ]] || ! info=$(readelf --version-info --wide "$file" 2>/dev/null); then
    echo "$file: cannot read" >&2
    status=2
    continue
  fi
  needs=$(awk '/^Version needs section/ { on = 1; next } /^Version [a-z]+ section/ { on = 0 } on' <<<"$info")
  line="$file:"
  over=()
  for family in GLIBC GLIBCXX CXXABI; do
    newest=$(grep -oE "Name: ${family}_[0-9.]+" <<<"$needs" | sed "s/^Name: ${family}_//" | sort -V | tail -n 1 || true)
    [[ -n "$newest" ]] || continue
    line+=" ${family}_${newest}"
    if newer "$newest" "${limit[$family]}"; then over+=("${family}_${newest} > ${family}_${limit[$family]}"); fi
  done
  if ((${#over[@]} > 0)); then
    echo "$line  TOO NEW: ${over[*]}"
    ((status == 2)) || status=1
  else
    echo "$line  ok"
  fi
done
exit "$status"
