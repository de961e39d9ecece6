#!/usr/bin/env bash
# Packs what the GPU machine lacks into .gpu-check/ (git-ignored) for scripts/gpu-check.sh: this
# machine's node binary, gzipped, and the built package (dist/, build/Release/ and the runtime
# node_modules the library and CLI load). Run after `npm ci`; the folder travels with the working
# tree (under the 64 MiB a device run may carry).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
rm -rf .gpu-check && mkdir .gpu-check
gzip -9 -c "$(command -v node)" > .gpu-check/node.gz
modules=(zod prom-client tdigest bintrees @opentelemetry/api parse-prometheus-text-format node-gyp-build)
tar -czf .gpu-check/package.tar.gz dist build/Release "${modules[@]/#/node_modules/}"
du -sh .gpu-check/*
