#!/bin/sh
# Runs a native build command (node-gyp, cmake-js) against the headers of the Node.js that runs
# it, when that Node.js has them beside it (<prefix>/include/node, as Debian's nodejs and the
# official tarballs ship them) and npm names no headers folder of its own (npm_config_nodedir).
# Why: without one, node-gyp and cmake-js download the headers from nodejs.org, which a machine
# without that network cannot reach; npm on such machines is often set to use the local headers
# for one user only (a ~/.npmrc), so another user's `npm ci` would fail there.
#
#   sh scripts/build/with-node-headers.sh COMMAND [ARG...]
set -eu
if [ -z "${npm_config_nodedir:-}" ]; then
  prefix=$(node -p 'require("path").resolve(process.execPath, "..", "..")')
  if [ -f "$prefix/include/node/node.h" ] && [ -f "$prefix/include/node/common.gypi" ]; then
    npm_config_nodedir=$prefix
    export npm_config_nodedir
  fi
fi
exec "$@"
