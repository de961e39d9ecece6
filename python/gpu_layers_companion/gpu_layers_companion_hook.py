"""Starts the gpu-layers companion at interpreter start-up, from the wheel's gpu_layers_companion.pth.

site.py runs the .pth file's one line in every Python process of the environment the wheel is
installed in (vLLM's spawned workers included). That line imports this module only when
GPU_LAYERS_STATS_DIR is set, so every other process pays for one dictionary look-up and imports
nothing; this module checks again (it may be imported by hand) and imports the companion, which
starts its writer thread. Nothing here may raise: an exception in a .pth line is printed at every
start-up of every Python process of that environment.
"""
import os
import sys

started = False
# `python -m gpu_layers_companion --check` reports what it sees: it must not be the companion that
# makes the stats folder it looks at (sys.orig_argv: Python 3.10+; older ones start it as usual).
for_check = getattr(sys, "orig_argv", [])[1:3] == ["-m", "gpu_layers_companion"]
if os.environ.get("GPU_LAYERS_STATS_DIR") and not for_check:
    try:
        import gpu_layers_companion

        started = bool(gpu_layers_companion.start())
    except Exception:
        pass
