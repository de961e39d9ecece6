"""gpu-layers companion: reports PyTorch's caching allocator from inside the workload.

While CUDA is initialised in this process, a daemon thread writes
$GPU_LAYERS_STATS_DIR/<pid>.json every $GPU_LAYERS_STATS_INTERVAL seconds (default 2): the pid, the
process start time (to tell a reused pid apart), a timestamp, and per visible device its UUID and
the torch.cuda.memory_stats() figures gpu-layers joins with NVML's per-process figure, plus the
bytes reserved by private pools (CUDA graphs) where this torch version reports them.

It needs only the standard library and torch, never imports torch itself, never initialises
CUDA, and never raises into the host program: a failure goes into the file's "errors".
Enable it without touching the workload: put this folder on PYTHONPATH (its sitecustomize.py
starts it, in spawned workers too), or `import gpu_layers_companion`.
"""
import atexit
import json
import os
import sys
import threading
import time

FORMAT = "gpu-layers-companion"
VERSION = 1
DEFAULT_INTERVAL = 2.0

# The memory_stats() keys gpu-layers reads (torch.cuda.memory_stats, flattened names).
STAT_KEYS = (
    "reserved_bytes.all.current",
    "allocated_bytes.all.current",
    "active_bytes.all.current",
    "inactive_split_bytes.all.current",
    "requested_bytes.all.current",
    "reserved_bytes.all.peak",
    "allocated_bytes.all.peak",
    "num_alloc_retries",
    "num_ooms",
)
PRIVATE_POOL_PREFIX = "reserved_bytes_by_private_pools."
PRIVATE_POOL_SUFFIX = ".all.current"

_lock = threading.Lock()
_state = {"thread": None, "stop": None, "path": None}


def _start_time_ticks():
    """Field 22 of /proc/self/stat: clock ticks since boot when this process started."""
    with open("/proc/self/stat", "rb") as f:
        text = f.read().decode("ascii", "replace")
    return int(text[text.rindex(")") + 2:].split(" ")[22 - 3])


def _interval():
    try:
        value = float(os.environ.get("GPU_LAYERS_STATS_INTERVAL", DEFAULT_INTERVAL))
        return value if value > 0 else DEFAULT_INTERVAL
    except ValueError:
        return DEFAULT_INTERVAL


def _segments(torch):
    """The allocator's segments, or None unless GPU_LAYERS_STATS_SEGMENTS=1.

    memory_snapshot() walks every segment and block, which costs far more than memory_stats();
    it answers whether the next large request fits without growing the pool (what fragmentation
    takes away) and, where memory_stats() has no per-pool keys, what private pools hold. The
    request trace is left out where torch allows it: with _record_memory_history() on, it would
    be symbolised on every write (seconds, on a real GPU).
    """
    if os.environ.get("GPU_LAYERS_STATS_SEGMENTS") != "1":
        return None
    try:
        return torch.cuda.memory_snapshot(include_traces=False)
    except TypeError:
        return torch.cuda.memory_snapshot()


def _segment_figures(segments):
    """Per device: the largest free block, and the bytes private pools reserve and hold allocated."""
    figures = {}
    for segment in segments:
        device = figures.setdefault(segment.get("device"), {"largestFree": 0, "privatePools": 0, "privatePoolsAllocated": 0})
        private = tuple(segment.get("segment_pool_id") or (0, 0)) != (0, 0)
        if private:
            device["privatePools"] += int(segment.get("total_size", 0))
        for block in segment.get("blocks", ()):
            if block.get("state") == "inactive":
                device["largestFree"] = max(device["largestFree"], int(block.get("size", 0)))
            elif private and block.get("state") == "active_allocated":
                device["privatePoolsAllocated"] += int(block.get("size", 0))
    return figures


def _device(torch, index, errors, segments):
    """One device's entry; the figures are copied as torch reports them."""
    entry = {"index": index, "uuid": None, "name": None, "stats": {}, "privatePoolBytes": None}
    if segments is not None:
        entry["largestFreeBlockBytes"] = segments.get(index, {}).get("largestFree", 0)
        entry["privatePoolAllocatedBytes"] = segments.get(index, {}).get("privatePoolsAllocated", 0)
    try:
        props = torch.cuda.get_device_properties(index)
        entry["name"] = getattr(props, "name", None)
        uuid = getattr(props, "uuid", None)
        entry["uuid"] = None if uuid is None else str(uuid)
    except Exception as error:  # a device we may not query: keep the others
        errors.append("device %d properties: %r" % (index, error))
    stats = torch.cuda.memory_stats(index)
    entry["stats"] = {key: stats[key] for key in STAT_KEYS if key in stats}
    pools = [value for key, value in stats.items()
             if key.startswith(PRIVATE_POOL_PREFIX) and key.endswith(PRIVATE_POOL_SUFFIX)]
    # Only newer torch builds break reserved bytes down by private pool (torch 2.11 does not);
    # otherwise the segments tell, when they were read; absent means unknown.
    if pools or any(key.startswith(PRIVATE_POOL_PREFIX) for key in stats):
        entry["privatePoolBytes"] = int(sum(pools))
    elif segments is not None:
        entry["privatePoolBytes"] = segments.get(index, {}).get("privatePools", 0)
    return entry


def snapshot(torch, start_ticks, interval):
    """The document for one write, or None while CUDA is not initialised in this process."""
    if not torch.cuda.is_initialized():
        return None
    errors = []
    devices = []
    try:
        segments = _segments(torch)
        segments = None if segments is None else _segment_figures(segments)
    except Exception as error:
        segments = None
        errors.append("memory_snapshot: %r" % (error,))
    for index in range(torch.cuda.device_count()):
        try:
            devices.append(_device(torch, index, errors, segments))
        except Exception as error:
            errors.append("device %d: %r" % (index, error))
    return {
        "format": FORMAT,
        "version": VERSION,
        "pid": os.getpid(),
        "startTimeTicks": start_ticks,
        "writtenAt": time.time(),
        "intervalSeconds": interval,
        "torchVersion": getattr(torch, "__version__", None),
        "devices": devices,
        "errors": errors,
    }


def _write(directory, document):
    """Atomically: readers see the old file or the new one, never half of one."""
    final = os.path.join(directory, "%d.json" % document["pid"])
    temporary = os.path.join(directory, ".%d.json.tmp" % document["pid"])
    text = json.dumps(document, separators=(",", ":"))  # one write(): json.dump() makes dozens
    with open(temporary, "w") as f:
        f.write(text)
    os.replace(temporary, final)
    return final


def write_once(directory, start_ticks, interval):
    """One tick: write the file if torch is loaded and CUDA initialised. Never raises."""
    try:
        torch = sys.modules.get("torch")
        if torch is None or not hasattr(torch, "cuda"):
            return None
        try:
            document = snapshot(torch, start_ticks, interval)
        except Exception as error:
            document = {"format": FORMAT, "version": VERSION, "pid": os.getpid(), "startTimeTicks": start_ticks,
                        "writtenAt": time.time(), "intervalSeconds": interval,
                        "torchVersion": getattr(torch, "__version__", None), "devices": [],
                        "errors": ["memory stats: %r" % (error,)]}
        if document is None:
            return None
        path = _write(directory, document)
        _state["path"] = path
        return path
    except Exception:
        return None  # the host program must never see the companion fail


def _run(directory, interval, stop):
    try:
        os.makedirs(directory, exist_ok=True)
        start_ticks = _start_time_ticks()
    except Exception:
        return
    while not stop.wait(interval):
        write_once(directory, start_ticks, interval)


def _remove_own_file():
    path = _state.get("path")
    if path:
        try:
            os.unlink(path)
        except OSError:
            pass


def start(directory=None, interval=None):
    """Starts the writer thread (once per process). Returns False when it is not enabled."""
    try:
        directory = directory or os.environ.get("GPU_LAYERS_STATS_DIR")
        if not directory:
            return False
        interval = interval or _interval()
        with _lock:
            thread = _state["thread"]
            if thread is not None and thread.is_alive():
                return True
            stop = threading.Event()
            thread = threading.Thread(target=_run, args=(directory, interval, stop),
                                      name="gpu-layers-companion", daemon=True)
            _state.update(thread=thread, stop=stop, path=None)
            thread.start()
        return True
    except Exception:
        return False


def stop():
    """Stops the writer thread and removes this process's file."""
    event = _state.get("stop")
    if event is not None:
        event.set()
    _remove_own_file()


def _after_fork_in_child():
    # The writer thread does not survive fork(); the child gets its own, writing its own pid.
    _state.update(thread=None, stop=None, path=None)
    start()


atexit.register(_remove_own_file)
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
start()
