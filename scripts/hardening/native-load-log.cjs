/*
 * Preloaded (NODE_OPTIONS=--require) into every Node process of the sanitizer test run by
 * scripts/hardening/check-native-memory.sh: appends to $GPU_LAYERS_LOAD_LOG each native addon the process
 * loads, and at exit the NVML/CUDA libraries it had mapped. The script reads the log to prove that
 * the tests (and the CLI children they spawn) ran the ASan build, not build/Release: an
 * uninstrumented addon would pass silently. CommonJS, because --require loads it before any ESM.
 */
'use strict';

const fs = require('node:fs');

const logFile = process.env.GPU_LAYERS_LOAD_LOG;
if (logFile) {
  const who = `${process.pid} ${process.argv[1] ?? '-'}`;
  const append = (line) => {
    try {
      fs.appendFileSync(logFile, `${line}\n`);
    } catch {
      // a log that cannot be written shows up as "no addon loaded" in the check, never as a crash here
    }
  };
  const dlopen = process.dlopen;
  process.dlopen = function loggedDlopen(module, filename, ...rest) {
    append(`addon ${who} ${filename}`);
    return dlopen.call(this, module, filename, ...rest);
  };
  process.on('exit', () => {
    let maps = '';
    try {
      maps = fs.readFileSync('/proc/self/maps', 'utf8');
    } catch {
      return;
    }
    const mapped = new Set();
    for (const line of maps.split('\n')) {
      const file = line.split(/\s+/)[5];
      if (file && /(gpu_layers\.node|libnvidia-ml\.so|libcuda\.so|libasan\.so)/.test(file)) mapped.add(file);
    }
    for (const file of mapped) append(`mapped ${who} ${file}`);
  });
}
