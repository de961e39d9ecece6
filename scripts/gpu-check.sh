#!/usr/bin/env bash
# The real-GPU check (issue 4) in one command: gpu-check.sh OUTDIR [--simulate].
# On the GPU machine (no Node.js, no network) it unpacks what scripts/gpu-check/prepare-gpu-check.sh put in
# .gpu-check/ (a gzipped node binary; the built package: dist/, build/Release/ and the runtime
# node_modules) and runs scripts/gpu-check/gpu_check.py, which writes everything under OUTDIR.
# --simulate runs it here against the mock NVML instead (the workload under the companion tests'
# fake torch, with the real companion, glibc and cgroup). The H200 run took 25 s; the host checks
# of issue 16 (malloc_stats(), the cgroup: docs/validation/README.md) add under a second, and the
# CUDA out-of-memory of issue 17 (the workload's last phase, `gpu-layers record --flight-dir`
# across the run, the companion's dump and the flight) a few seconds.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
out=${1:?usage: gpu-check.sh OUTDIR [--simulate]}
mkdir -p "$out"
# Without Node.js here (the GPU machine), everything comes from .gpu-check/, unpacked over what an
# earlier run on the same machine left (a warm machine keeps ignored folders such as dist/).
if [[ -f .gpu-check/node.gz ]] && ! command -v node >/dev/null 2>&1; then
  gunzip -c .gpu-check/node.gz > /tmp/gpu-check-node && chmod +x /tmp/gpu-check-node
  export GPU_CHECK_NODE=/tmp/gpu-check-node
  rm -rf dist build/Release
  tar -xzf .gpu-check/package.tar.gz
fi
exec python3 scripts/gpu-check/gpu_check.py "$out" "${@:2}"
