"""Starts the gpu-layers companion in every Python process whose PYTHONPATH holds this folder
(vLLM's spawned workers inherit the variable). Then runs the sitecustomize this one shadows, if
the interpreter has one further along sys.path (Debian ships one), so nothing else changes."""
import importlib.machinery
import importlib.util
import os
import sys

try:
    import gpu_layers_companion  # noqa: F401  (starts itself when GPU_LAYERS_STATS_DIR is set)
except Exception:
    pass

try:
    _here = os.path.dirname(os.path.abspath(__file__))
    _rest = [p for p in sys.path if os.path.abspath(p or ".") != _here]
    _spec = importlib.machinery.PathFinder.find_spec("sitecustomize", _rest)
    if _spec is not None and _spec.origin != os.path.abspath(__file__) and _spec.loader is not None:
        _module = importlib.util.module_from_spec(_spec)
        _spec.loader.exec_module(_module)
except Exception:
    pass
