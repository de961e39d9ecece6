#!/usr/bin/env bash
# Builds the repository's Dockerfile with buildah and runs the image: `gpu-layers --version`, and
# `gpu-layers probe --json` on the mock NVML that ships in the package, reading an H200 scenario.
# For CI and for anyone changing the Dockerfile; needs root (buildah's storage, debootstrap).
#
# No container registry is reachable from the project's machines, so the two base images the
# Dockerfile names (node:20-bookworm, node:20-bookworm-slim) cannot be pulled. The build uses
# stand-ins with the same layout instead, passed as its BUILD_IMAGE and RUNTIME_IMAGE arguments:
# Debian 12 made with debootstrap (the build one with g++, make, python3, binutils), and this
# machine's Node 20 copied to /usr/local as the official images have it (node, npm, the headers
# node-gyp builds against). They are kept as localhost/gpu-layers-base/* and reused; --rebuild
# makes them anew. Everything after FROM is the Dockerfile as users build it.
#
#   bash scripts/build/image-check.sh [--rebuild] [--keep]   (--keep: leave the image, print its name)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."

rebuild=0 keep=0
for arg in "$@"; do
  case "$arg" in
    --rebuild) rebuild=1 ;;
    --keep) keep=1 ;;
    *) echo "image-check: unknown argument $arg" >&2; exit 2 ;;
  esac
done

if [ "$(id -u)" != 0 ]; then
  echo "image-check: needs root (buildah's image store, debootstrap)" >&2
  exit 2
fi
missing=()
command -v buildah >/dev/null || missing+=(buildah)
command -v debootstrap >/dev/null || missing+=(debootstrap)
if [ "${#missing[@]}" -gt 0 ]; then
  echo "image-check: installing ${missing[*]} from Debian"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

node_bin=$(node -p 'process.execPath')
node_prefix=$(dirname "$(dirname "$node_bin")")
npm_dir=$(npm root -g)/npm
if [ "$(node -p 'process.versions.node.split(".")[0]')" != 20 ] || [ ! -d "$node_prefix/include/node" ] || [ ! -d "$npm_dir" ]; then
  echo "image-check: the stand-in bases need this machine's Node 20 with its headers ($node_prefix/include/node) and npm ($npm_dir)" >&2
  exit 2
fi

# The Debian archive this machine's apt is set to (debootstrap's own default may not be
# reachable from it); no host name is written here.
mirror=$(bash scripts/fixtures/debian-archive-suites.sh bookworm /etc/apt/sources.list /etc/apt/sources.list.d/* 2>/dev/null | awk '$2 == "bookworm" { print $1; exit }')

work=$(mktemp -d /var/tmp/gpu-layers-image.XXXXXX)
containers=()
cleanup() {
  for c in "${containers[@]}"; do buildah rm "$c" >/dev/null 2>&1 || true; done
  rm -rf "$work"
}
trap cleanup EXIT

# base NAME [PACKAGE...]: a Debian 12 image with this machine's Node in /usr/local.
base() {
  local name=$1 image=localhost/gpu-layers-base/$1:bookworm root=$work/$1
  shift
  if [ "$rebuild" = 0 ] && buildah inspect --type image "$image" >/dev/null 2>&1; then return; fi
  echo "image-check: making $image (debootstrap, a few minutes)"
  local include=()
  [ "$#" -gt 0 ] && include=("--include=$(IFS=,; echo "$*")")
  debootstrap --variant=minbase "${include[@]}" bookworm "$root" ${mirror:+"$mirror"} >"$work/debootstrap-$name.log" 2>&1 \
    || { tail -20 "$work/debootstrap-$name.log" >&2; exit 1; }
  install -D -m 0755 "$node_bin" "$root/usr/local/bin/node"
  mkdir -p "$root/usr/local/include" "$root/usr/local/lib/node_modules"
  cp -a "$node_prefix/include/node" "$root/usr/local/include/"
  cp -a "$npm_dir" "$root/usr/local/lib/node_modules/"
  ln -sf ../lib/node_modules/npm/bin/npm-cli.js "$root/usr/local/bin/npm"
  ln -sf ../lib/node_modules/npm/bin/npx-cli.js "$root/usr/local/bin/npx"
  local ctr mnt
  ctr=$(buildah from scratch)
  containers+=("$ctr")
  mnt=$(buildah mount "$ctr")
  cp -a "$root/." "$mnt/"
  buildah umount "$ctr" >/dev/null
  buildah config --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin "$ctr"
  if [ "$name" = build ]; then
    # Why the machine's CA bundle: the registry is reached through a proxy that re-signs TLS with
    # a CA that only this machine's trust store has; node's built-in CAs would refuse it.
    install -m 0644 /etc/ssl/certs/ca-certificates.crt "$mnt/etc/ssl/certs/ca-certificates.crt" 2>/dev/null \
      || buildah copy "$ctr" /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt >/dev/null
    buildah config --env NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt "$ctr"
  fi
  buildah rmi "$image" >/dev/null 2>&1 || true
  buildah commit -q "$ctr" "$image" >/dev/null
  buildah rm "$ctr" >/dev/null
}
base runtime
base build g++ make python3 binutils ca-certificates

image=localhost/gpu-layers:image-check
buildah rmi "$image" >/dev/null 2>&1 || true
echo "image-check: buildah bud (the Dockerfile, on the stand-in bases)"
buildah bud --isolation chroot --layers=false \
  --build-arg BUILD_IMAGE=localhost/gpu-layers-base/build:bookworm \
  --build-arg RUNTIME_IMAGE=localhost/gpu-layers-base/runtime:bookworm \
  -t "$image" -f Dockerfile . >"$work/bud.log" 2>&1 || { grep -v '^npm warn' "$work/bud.log" | tail -40 >&2; exit 1; }

ctr=$(buildah from "$image")
containers+=("$ctr")
run() { buildah run --isolation chroot "$@"; }
fail() { echo "image-check: FAIL: $*" >&2; exit 1; }

# What the image runs: its ENTRYPOINT as the DaemonSet's command, as a uid of its own.
buildah inspect --type image "$image" >"$work/inspect.json"
node -e '
  const c = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8")).OCIv1.config;
  const want = { User: "65532:65532", WorkingDir: "/app", Entrypoint: ["node", "node_modules/.bin/gpu-layers"], Cmd: ["probe"] };
  for (const [k, v] of Object.entries(want)) if (JSON.stringify(c[k]) !== JSON.stringify(v)) { console.error(`${k}: ${JSON.stringify(c[k])}, not ${JSON.stringify(v)}`); process.exit(1); }
'  "$work/inspect.json" || fail "image config"
[ "$(run "$ctr" -- id -u)" = 65532 ] || fail "the image does not run as uid 65532"

version=$(run "$ctr" -- node node_modules/.bin/gpu-layers --version)
want=$(node -p 'require("./package.json").version')
[ "$version" = "$want" ] || fail "gpu-layers --version said '$version', package.json has $want"

# The compilers stayed in the build stage.
if run "$ctr" -- sh -c 'command -v g++ || command -v make' >/dev/null 2>&1; then fail "a compiler in the runtime image"; fi

# probe on the mock NVML of the installed package: the scenario's device and process come back.
scenario=test/fixtures/real/h200.scenario
mock=/app/node_modules/gpu-layers/prebuilds/linux-x64/mock
run -v "$PWD/$scenario:/tmp/scenario:ro" --env GPU_LAYERS_MOCK_SCENARIO=/tmp/scenario \
  --env GPU_LAYERS_NVML_LIB=$mock/libnvidia-ml.so.1 --env GPU_LAYERS_CUDA_LIB=$mock/libcuda.so.1 \
  "$ctr" -- node node_modules/.bin/gpu-layers probe --json >"$work/probe.json" || fail "gpu-layers probe --json exited $?"
node -e '
  const fs = require("fs");
  const sample = JSON.parse(fs.readFileSync(process.argv[1], "utf8"));
  const scenario = fs.readFileSync(process.argv[2], "utf8");
  const name = scenario.match(/^name (.+)$/m)[1];
  const [, pid, bytes] = scenario.match(/^process compute (\d+) (\d+)$/m);
  const device = sample.devices[0];
  const process0 = device.processes.find((p) => p.pid === Number(pid));
  if (device.name !== name || process0?.usedBytes !== Number(bytes)) {
    console.error(`probe read ${device.name} with ${JSON.stringify(device.processes.map((p) => [p.pid, p.usedBytes]))}; the scenario has ${name} with pid ${pid} at ${bytes} bytes`);
    process.exit(1);
  }
  console.log(`image-check: probe --json in the image read ${name}, pid ${pid}: ${bytes} bytes`);
' "$work/probe.json" "$scenario" || fail "probe --json"

echo "image-check: ok: $image"
buildah rm "$ctr" >/dev/null
containers=()
if [ "$keep" = 0 ]; then buildah rmi "$image" >/dev/null; fi
