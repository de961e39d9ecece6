# The gpu-layers exporter image that deploy/kubernetes runs: `docker build -t gpu-layers .` from
# the repository root (the build context: npm ci needs the sources, and .dockerignore is read from
# the context's root). deploy/README.md ("Kubernetes") says how to build, run and push it.
#
# The base images are arguments so that a registry mirror, or a local stand-in, can replace them
# (scripts/build/image-check.sh builds this file with buildah on bases made with debootstrap).
# Both must be the same Debian release: the addon built in the first runs in the second.
ARG BUILD_IMAGE=node:20-bookworm
ARG RUNTIME_IMAGE=node:20-bookworm-slim

# Compilers, Python and npm: builds the addon and dist/, packs the package as npm would publish it
# (prebuilds included), and installs that tarball into /app without its devDependencies.
FROM ${BUILD_IMAGE} AS build
# node-gyp takes Node's headers from the image (the official images keep them under
# /usr/local/include/node) instead of downloading them from nodejs.org.
ENV npm_config_nodedir=/usr/local \
    npm_config_update_notifier=false \
    npm_config_fund=false \
    npm_config_audit=false
WORKDIR /src
# Everything that is not in .dockerignore: the sources, not the build outputs of the checkout.
COPY . .
# npm ci compiles the addon (the install script: node-gyp, as there is no .git here) and builds
# dist/ (prepare). prebuilds.js copies that build where node-gyp-build looks, so the pack needs
# no second compile (--ignore-scripts: prepack would rebuild the same addon).
RUN npm ci \
 && node scripts/build/prebuilds.js \
 && mkdir -p /pack /app \
 && npm pack --ignore-scripts --pack-destination /pack \
 && cd /app \
 && npm install --omit=dev --no-package-lock /pack/gpu-layers-*.tgz \
 && node node_modules/.bin/gpu-layers --version

# Node and the installed package only: no compilers, no sources.
FROM ${RUNTIME_IMAGE}
COPY --from=build /app /app
WORKDIR /app
# The NVIDIA container runtime mounts every GPU and NVML (libnvidia-ml.so.1, nvidia-smi) into a
# container that asks with these; "utility" brings no compute libraries (the exporter creates no
# CUDA context).
ENV NODE_ENV=production \
    NVIDIA_VISIBLE_DEVICES=all \
    NVIDIA_DRIVER_CAPABILITIES=utility \
    GPU_LAYERS_CACHE_DIR=/var/cache/gpu-layers
# Why a uid of its own and not root: NVML's figures need no privilege. Reading another user's
# /proc/<pid>/smaps (the host split) needs ptrace read access: the same uid, or CAP_SYS_PTRACE,
# which a non-root process does not get from `--cap-add` (no ambient capabilities). The DaemonSet
# runs this image as uid 0 with every capability dropped but SYS_PTRACE (deploy/README.md). Not
# 1000 (the node user) nor 65534 (nobody): a uid that GPU workloads or other daemons may run as
# would give this one ptrace read access to them.
RUN mkdir -p /var/cache/gpu-layers && chown 65532:65532 /var/cache/gpu-layers
USER 65532:65532
ENTRYPOINT ["node", "node_modules/.bin/gpu-layers"]
# One probe and exit: serving metrics is a decision (`serve --host ...`), as it is outside one.
CMD ["probe"]
