"""gpu-layers companion: reports PyTorch's caching allocator from inside the workload.

While CUDA is initialised in this process, a daemon thread writes
$GPU_LAYERS_STATS_DIR/<pid>.json every $GPU_LAYERS_STATS_INTERVAL seconds (default 2): the pid, the
process start time (to tell a reused pid apart), a timestamp, and per visible device its UUID and
the torch.cuda.memory_stats() figures gpu-layers joins with NVML's per-process figure, plus the
bytes reserved by private pools (CUDA graphs) where this torch version reports them.

It needs only the standard library and torch, never imports torch itself, never initialises
CUDA, and never raises into the host program: a failure goes into the file's "errors".

Shared hosts: the folder is trusted only when this process's user or root owns it and no other
user can write it, or it has the sticky bit (a root-made 1777 folder shared by many users);
otherwise the companion says so once on stderr and writes nothing. A folder it has to create is
made 0700, its user's alone (readers: that user and root). Files are written through a fresh
O_EXCL|O_NOFOLLOW temporary with a random name, renamed over <pid>.json inside the folder opened
once, so no link anyone planted there redirects a write.
Enable it without touching the workload: put this folder on PYTHONPATH (its sitecustomize.py
starts it, in spawned workers too), or `import gpu_layers_companion`.
"""
import atexit
import json
import os
import stat as stat_module
import sys
import threading
import time

FORMAT = "gpu-layers-companion"
VERSION = 1
DEFAULT_INTERVAL = 2.0
# gpu-layers refuses files that claim a longer interval (they would stay "fresh" for hours).
MAX_INTERVAL = 600.0

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
_state = {"thread": None, "stop": None, "path": None, "said": False, "refused": None}


def _start_time_ticks():
    """Field 22 of /proc/self/stat: clock ticks since boot when this process started."""
    with open("/proc/self/stat", "rb") as f:
        text = f.read().decode("ascii", "replace")
    return int(text[text.rindex(")") + 2:].split(" ")[22 - 3])


def _interval():
    try:
        value = float(os.environ.get("GPU_LAYERS_STATS_INTERVAL", DEFAULT_INTERVAL))
        return min(value, MAX_INTERVAL) if value > 0 else DEFAULT_INTERVAL
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


class FolderRefused(Exception):
    """The stats folder is not safe to write into; the message says why and what to do."""


def folder_refusal(directory, folder_stat, uid=None):
    """Why `directory` (already stat'ed) is not safe for this user's files, or None."""
    uid = os.geteuid() if uid is None else uid
    if not stat_module.S_ISDIR(folder_stat.st_mode):
        return "%s is not a folder" % directory
    if folder_stat.st_uid not in (uid, 0):
        # Its owner can delete, rename and replace anything in it, sticky bit or not.
        return ("%s belongs to uid %d, another user: use a folder of your own, or one root made "
                "with the sticky bit (install -d -m 1777)" % (directory, folder_stat.st_uid))
    if folder_stat.st_mode & 0o022 and not folder_stat.st_mode & stat_module.S_ISVTX:
        return ("%s can be written by other users and has no sticky bit, so they could replace "
                "this process's file: chmod go-w or chmod +t it" % directory)
    return None


def _open_folder(directory):
    """The folder, opened once per write and checked on the descriptor itself (no race with a
    swapped path between the check and the writes)."""
    dir_fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | getattr(os, "O_CLOEXEC", 0))
    try:
        refusal = folder_refusal(directory, os.fstat(dir_fd))
    except BaseException:
        os.close(dir_fd)
        raise
    if refusal is not None:
        os.close(dir_fd)
        raise FolderRefused(refusal)
    return dir_fd


_TEMPORARY_FLAGS = (os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
                    | getattr(os, "O_CLOEXEC", 0))


def _write(directory, document):
    """Atomically: readers see the old file or the new one, never half of one.

    The temporary gets an unpredictable name and O_EXCL|O_NOFOLLOW, so a link or file planted at
    any name is never opened; the rename replaces a planted <pid>.json link itself, never its
    target. 0644: the reader may be root or a monitoring user (the stats hold no secrets).
    """
    final = "%d.json" % document["pid"]
    text = json.dumps(document, separators=(",", ":")).encode()  # one write(): json.dump() makes dozens
    dir_fd = _open_folder(directory)
    try:
        for _ in range(16):
            temporary = ".%d.%s.json.tmp" % (document["pid"], os.urandom(8).hex())
            try:
                fd = os.open(temporary, _TEMPORARY_FLAGS, 0o644, dir_fd=dir_fd)
                break
            except FileExistsError:
                continue
        else:
            raise FileExistsError("no free temporary name in %s" % directory)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(text)
            os.replace(temporary, final, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
        except BaseException:
            try:
                os.unlink(temporary, dir_fd=dir_fd)
            except OSError:
                pass
            raise
    finally:
        os.close(dir_fd)
    return os.path.join(directory, final)


def _say_once(message):
    """One line on stderr per process: the workload's own output stays its own."""
    if _state.get("said"):
        return
    _state["said"] = True
    try:
        sys.stderr.write("gpu-layers companion: not writing allocator stats: %s\n" % message)
        sys.stderr.flush()
    except Exception:
        pass


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
    except FolderRefused as refusal:
        _state["refused"] = str(refusal)
        return None
    except Exception:
        return None  # the host program must never see the companion fail


def _make_folder(directory):
    """Creates a missing folder 0700 (its parents as umask allows), then checks it."""
    try:
        os.makedirs(directory, mode=0o700, exist_ok=True)
    except FileExistsError:
        pass  # a dangling link or a file: _open_folder says which
    os.close(_open_folder(directory))


def _run(directory, interval, stop):
    try:
        _make_folder(directory)
        start_ticks = _start_time_ticks()
    except FolderRefused as refusal:
        _say_once(str(refusal))
        return
    except Exception as error:
        _say_once("%s: %s" % (directory, error))
        return
    while not stop.wait(interval):
        write_once(directory, start_ticks, interval)
        if _state.get("refused"):  # the folder changed hands after the start
            _say_once(_state["refused"])
            return


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
    _state.update(thread=None, stop=None, path=None, said=False, refused=None)
    start()


atexit.register(_remove_own_file)
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
start()
