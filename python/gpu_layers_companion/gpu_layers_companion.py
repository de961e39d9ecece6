"""gpu-layers companion: reports PyTorch's caching allocator from inside the workload.

While CUDA is initialised in this process, a daemon thread writes
$GPU_LAYERS_STATS_DIR/<pid>.json every $GPU_LAYERS_STATS_INTERVAL seconds (default 2): the pid, the
process start time (to tell a reused pid apart), a timestamp, and per visible device its UUID and
the torch.cuda.memory_stats() figures gpu-layers joins with NVML's per-process figure, plus the
bytes reserved by private pools (CUDA graphs) where this torch version reports them.

Each file also has a "host" part: the process's host allocators, read in-process. "malloc" is
glibc's mallinfo2() (every arena, the main one and the threads', plus the mmapped chunks: in use,
free, releasable, mmapped bytes, and the arena count); it is null, with "mallocUnknownBecause"
saying why, where there is no mallinfo2 (glibc older than 2.33, musl), where malloc is not glibc's
(jemalloc or tcmalloc preloaded), or on a write where the read is skipped because the last one was
slow (both walk the allocator's free lists: see HOST_READ_BUDGET_SECONDS). "python" is pymalloc's
block count (sys.getallocatedblocks(), null when skipped the same way) and the bytes tracemalloc
traces, only when the program itself started tracemalloc (the companion never starts it).
pymalloc's own arenas are mmapped directly, so they are not in the malloc figures.

It needs only the standard library and torch, never imports torch itself, never initialises
CUDA, and never raises into the host program: a failure goes into the file's "errors".

Shared hosts: the folder is trusted only when this process's user or root owns it and no other
user can write it, or it has the sticky bit (a root-made 1777 folder shared by many users);
otherwise the companion says so once on stderr and writes nothing. A folder it has to create is
made 0700, its user's alone (readers: that user and root). Files are written through a fresh
O_EXCL|O_NOFOLLOW temporary with a random name, renamed over <pid>.json inside the folder opened
once, so no link anyone planted there redirects a write.
Enable it without touching the workload: pip install its wheel (gpu-layers companion --wheel
prints the path of the one shipped in the npm package), whose gpu_layers_companion.pth starts it in
every Python process where GPU_LAYERS_STATS_DIR is set, spawned workers too; or put this folder on
PYTHONPATH (its sitecustomize.py starts it); or `import gpu_layers_companion`.
`python -m gpu_layers_companion --check` says what it sees (exit 0 when it can write, 1 if not).

CUDA out-of-memory: once CUDA is initialised, the companion registers PyTorch's out-of-memory
observer (a private API, used where torch has it). When the caching allocator is about to raise
OutOfMemoryError, the file is written at once, on the allocating thread, with the allocator's
figures of that moment and an "oom" object (the count of OOMs seen, the last one's time, device,
request and the device's total and free bytes), kept in every later file. Files that carry a new
OOM are written at most once a second (an OOM storm is coalesced; the count stays exact). With
GPU_LAYERS_OOM_SNAPSHOT=1 it also writes <pid>.oom-<count>.pickle beside the file: the allocator's
memory snapshot without stack traces, at most OOM_SNAPSHOT_MAX_FILES per process and
OOM_SNAPSHOT_MAX_BYTES each; "snapshot" names the newest one written (its name carries the count
of the OOM it was taken at) and "snapshotError" why the last OOM has none of its own.
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
_state = {"thread": None, "stop": None, "wake": None, "path": None, "said": False, "refused": None,
          "directory": None, "start_ticks": None, "interval": None}

# CUDA out-of-memory (see the module's docstring). Files that carry a new OOM are written at most
# once in this many seconds: the first OOM of a storm at once, the rest by the writer thread.
OOM_MIN_WRITE_SECONDS = 1.0
# With GPU_LAYERS_OOM_SNAPSHOT=1: at most this many snapshot tries per process (written or not),
# each refused above this many bytes (a snapshot without stack traces is about 100 bytes a block:
# 512 MiB would be millions of blocks). The stats folder is often tmpfs, which is memory.
OOM_SNAPSHOT_MAX_FILES = 3
OOM_SNAPSHOT_MAX_BYTES = 512 << 20
# gpu-layers takes reasons of at most 300 characters (MAX_COMPANION_REASON_CHARS).
REASON_CHARS = 300
# How long the observer waits for a write in progress on the writer thread before leaving its
# own write to that thread (a write takes well under a millisecond; this only bounds a stall).
OOM_WRITE_LOCK_SECONDS = 0.5
# _oom_lock guards _oom; _write_lock makes each file's document and rename one step, so a tick
# built before an OOM never renames over the OOM's file.
_oom_lock = threading.Lock()
_write_lock = threading.Lock()
# attached: the observer was registered (or could not be) in this process; count: OOMs seen;
# record: the last one's "oom" object; written: the highest count a written file carried;
# lastWrite: monotonic time of the last write that carried a new OOM; snapshots: tries so far;
# lastSnapshot: the newest snapshot file written.
_oom = {"attached": False, "count": 0, "record": None, "written": 0, "lastWrite": None, "snapshots": 0,
        "lastSnapshot": None}

# mallinfo2()'s ten size_t fields, in glibc's order.
MALLINFO2_FIELDS = ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks",
                    "fordblks", "keepcost")
# What each host reading may cost per write, on average. mallinfo2() and malloc_info() walk every
# free chunk of every arena under that arena's lock, and sys.getallocatedblocks() every pymalloc
# pool under the GIL, so their cost follows the heap, not the companion. Measured on a 2-core VM
# (glibc 2.36, Python 3.11): mallinfo2() 1-5 us with a few hundred free chunks, but 6.4 ms with
# 40,000 and 26 ms with 158,000 (4 and 16 threads freeing every other one of 20,000 small blocks
# each); sys.getallocatedblocks() 1 us at start, 1.2 ms with 30 million blocks (10 million tuples).
# A read that took longer than this is skipped for as many writes as it overran, so it stays within
# the budget averaged over those writes; meanwhile "malloc" is null with the reason, "python" null.
HOST_READ_BUDGET_SECONDS = 0.00025
# malloc_info() (the arena count) walks the same free chunks again and prints XML, about 12-35 us
# on top where mallinfo2() took 1-5 us (2 to 16 arenas): it is read only after a mallinfo2() faster
# than this, so a large walk is never done twice in one write.
ARENA_COUNT_AFTER_SECONDS = 0.0001
# Resolved once per process (the writer thread's first write; a fork keeps it: same libc).
_malloc = {"resolved": False, "read": None, "count_arenas": None, "unknown": None}
_pace = {}


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


def _arena_counter(ctypes, libc):
    """A function that counts malloc's arenas (the <heap> elements of malloc_info()'s XML, written
    into memory through open_memstream), or None where the C library lacks one of them."""
    try:
        open_memstream, malloc_info, fclose, free = libc.open_memstream, libc.malloc_info, libc.fclose, libc.free
    except AttributeError:
        return None
    open_memstream.argtypes = (ctypes.POINTER(ctypes.c_void_p), ctypes.POINTER(ctypes.c_size_t))
    open_memstream.restype = ctypes.c_void_p
    malloc_info.argtypes = (ctypes.c_int, ctypes.c_void_p)
    malloc_info.restype = ctypes.c_int
    fclose.argtypes = (ctypes.c_void_p,)
    fclose.restype = ctypes.c_int
    free.argtypes = (ctypes.c_void_p,)
    free.restype = None

    def count_arenas():
        text, size = ctypes.c_void_p(), ctypes.c_size_t()
        stream = open_memstream(ctypes.byref(text), ctypes.byref(size))
        if not stream:
            return None
        status = malloc_info(0, stream)
        closed = fclose(stream)  # the text and its size are final only now
        try:
            if status != 0 or closed != 0 or not text.value:
                return None
            return ctypes.string_at(text.value, size.value).count(b"<heap nr=")
        finally:
            if text.value:
                free(text.value)
    return count_arenas


def _resolve_malloc():
    """(mallinfo2, the arena counter or None, None), or (None, None, why there are no figures)."""
    import ctypes  # here, not at import: sitecustomize loads the companion into every Python process

    libc = ctypes.CDLL(None)
    if not hasattr(libc, "mallinfo2"):
        if hasattr(libc, "mallinfo"):
            return None, None, ("glibc older than 2.33 has only mallinfo(), whose int fields wrap past 2 GiB, "
                                "so its figures are not reported")
        return None, None, "no glibc malloc statistics in this C library (musl?)"

    class Mallinfo2(ctypes.Structure):
        _fields_ = [(name, ctypes.c_size_t) for name in MALLINFO2_FIELDS]

    mallinfo2 = libc.mallinfo2
    mallinfo2.argtypes = ()
    mallinfo2.restype = Mallinfo2
    if not _glibc_serves_malloc(ctypes, libc, mallinfo2):
        return None, None, ("malloc in this process is not glibc's (jemalloc or tcmalloc preloaded?), so glibc's "
                            "statistics would not describe it")
    return mallinfo2, _arena_counter(ctypes, libc), None


def _glibc_serves_malloc(ctypes, libc, mallinfo2):
    """Whether the process's malloc is glibc's: a block it returns must show in mallinfo2().

    With jemalloc or tcmalloc in LD_PRELOAD, glibc's heap sits idle and its figures would describe
    nothing. Comparing malloc's address with libc.so.6's does not tell: in a non-PIE python
    (Debian's), the address of malloc is the executable's PLT entry. Checked with Debian's
    libjemalloc2 preloaded: the block did not show. Once per process, under 0.1 ms.
    """
    malloc, free = libc.malloc, libc.free
    malloc.argtypes, malloc.restype = (ctypes.c_size_t,), ctypes.c_void_p
    free.argtypes, free.restype = (ctypes.c_void_p,), None
    # Above 32 MiB, the most glibc's dynamic mmap threshold reaches: an mmapped chunk (address space
    # only, never touched) whose free() leaves the threshold as it was. Freeing a 4 MiB one would
    # raise the workload's threshold to 4 MiB (checked: a 2 MiB block afterwards came from the arena).
    size = 64 << 20
    for _ in range(3):  # another thread may free as much in between: one rise settles it
        before = mallinfo2()
        block = malloc(size)
        if not block:
            return True  # no answer: keep the figures
        after = mallinfo2()
        free(block)
        if (after.uordblks + after.hblkhd) - (before.uordblks + before.hblkhd) >= size:
            return True
    return False


def _read_malloc():
    # Why mallinfo2() alone is enough: on glibc 2.36 it sums every arena, not only the main one
    # (older mallinfo(3) pages say main arena only). Checked here with 4 threads each keeping 400
    # 64 KiB blocks (100 MiB, below the mmap threshold, so in their threads' arenas): malloc_info()
    # showed 5 heaps, main 1,937,408 bytes and four of 26,247,168, total 106,926,080, and mallinfo2()
    # gave arena = 106,926,080 and uordblks = 106,676,016 (before: 1,937,408 and 1,757,088).
    started = time.perf_counter()
    info = _malloc["read"]()
    arenas = None
    if _malloc["count_arenas"] is not None and time.perf_counter() - started < ARENA_COUNT_AFTER_SECONDS:
        arenas = _malloc["count_arenas"]()
    return {
        "source": "mallinfo2",
        "arenaBytes": info.arena,
        "inUseBytes": info.uordblks + info.hblkhd,
        "freeBytes": info.fordblks,
        "mmappedBytes": info.hblkhd,
        "mmappedChunks": info.hblks,
        "releasableBytes": info.keepcost,
        "arenaCount": arenas,
    }


def _read_python():
    # Never imported nor started here: tracing costs the workload on every allocation, and
    # whether to pay that is the program's choice.
    tracemalloc = sys.modules.get("tracemalloc")
    traced = tracemalloc.get_traced_memory()[0] if tracemalloc is not None and tracemalloc.is_tracing() else None
    return {"allocatedBlocks": sys.getallocatedblocks(), "tracedBytes": traced}


def _paced_read(name, what, why_slow, read):
    """(read(), None), or (None, why) on a write skipped because the last read overran the budget."""
    pace = _pace.setdefault(name, {"skip": 0, "why": None})
    if pace["skip"] > 0:
        pace["skip"] -= 1
        return None, pace["why"]
    started = time.perf_counter()
    value = read()
    took = time.perf_counter() - started
    budget = HOST_READ_BUDGET_SECONDS
    pace["skip"] = int(took / budget) if took > budget else 0
    pace["why"] = ("%s took %.2f ms at the last read (%s): to stay within %.2f ms per write, it is read once in %d writes"
                   % (what, took * 1000, why_slow, budget * 1000, pace["skip"] + 1))
    return value, None


def _host(errors):
    """The host part: never raises; a failure goes into `errors` and leaves its figures null."""
    host = {"malloc": None, "mallocUnknownBecause": None, "python": None}
    try:
        if not _malloc["resolved"]:
            _malloc["resolved"] = True  # once per process, even when it fails
            try:
                _malloc["read"], _malloc["count_arenas"], _malloc["unknown"] = _resolve_malloc()
            except Exception as error:
                _malloc["unknown"] = "mallinfo2() could not be looked up in this process: %s" % (str(error)[:160],)
                raise
        if _malloc["read"] is None:
            host["mallocUnknownBecause"] = _malloc["unknown"]
        else:
            host["malloc"], host["mallocUnknownBecause"] = _paced_read(
                "malloc", "mallinfo2()", "it walks every free chunk of every arena", _read_malloc)
    except Exception as error:
        errors.append("host malloc: %r" % (error,))
        host["malloc"] = None
        host["mallocUnknownBecause"] = (_malloc["unknown"] if _malloc["read"] is None
                                        else "reading glibc's malloc statistics failed (see the errors)")
    try:
        host["python"] = _paced_read("python", "sys.getallocatedblocks()", "it walks every pymalloc pool", _read_python)[0]
    except Exception as error:
        errors.append("host python: %r" % (error,))
    return host


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
        "host": _host(errors),
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


def _replace_in_folder(directory, final, kind, fill):
    """Writes `final` inside `directory` atomically: readers see the old file or the new one, never
    half of one. fill(f) writes the content into a fresh temporary.

    The temporary gets an unpredictable name and O_EXCL|O_NOFOLLOW, so a link or file planted at
    any name is never opened; the rename replaces a planted link at `final` itself, never its
    target. 0644: the reader may be root or a monitoring user (nothing written holds secrets).
    """
    dir_fd = _open_folder(directory)
    try:
        for _ in range(16):
            temporary = ".%d.%s.%s.tmp" % (os.getpid(), os.urandom(8).hex(), kind)
            try:
                fd = os.open(temporary, _TEMPORARY_FLAGS, 0o644, dir_fd=dir_fd)
                break
            except FileExistsError:
                continue
        else:
            raise FileExistsError("no free temporary name in %s" % directory)
        try:
            with os.fdopen(fd, "wb") as f:
                fill(f)
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


def _write(directory, document):
    """<pid>.json, atomically (see _replace_in_folder)."""
    text = json.dumps(document, separators=(",", ":")).encode()  # one write(): json.dump() makes dozens
    return _replace_in_folder(directory, "%d.json" % document["pid"], "json", lambda f: f.write(text))


class _TooLarge(Exception):
    pass


class _BoundedWriter:
    """A file for pickle that refuses to grow past `limit` bytes (the temporary is then removed)."""

    def __init__(self, f, limit):
        self.f, self.limit, self.size = f, limit, 0

    def write(self, data):
        self.size += len(data)
        if self.size > self.limit:
            raise _TooLarge()
        return self.f.write(data)


def _reason(text):
    return text if len(text) <= REASON_CHARS else text[:REASON_CHARS - 3] + "..."


def _empty_frames(snapshot):
    """Empties, in place, every stack the snapshot holds: the "frames" of segments, blocks and
    trace entries, and those of the per-block "history" of torch 2.0 and older. With memory
    history off these lists are empty already, so this only costs a walk."""
    segments = snapshot.get("segments") if isinstance(snapshot, dict) else snapshot
    for segment in segments or ():
        if not isinstance(segment, dict):
            continue
        if "frames" in segment:
            segment["frames"] = []
        for block in segment.get("blocks") or ():
            if isinstance(block, dict):
                if "frames" in block:
                    block["frames"] = []
                for entry in block.get("history") or ():
                    if isinstance(entry, dict) and "frames" in entry:
                        entry["frames"] = []
    if isinstance(snapshot, dict):
        for trace in snapshot.get("device_traces") or ():
            for entry in trace or ():
                if isinstance(entry, dict) and "frames" in entry:
                    entry["frames"] = []


def _oom_snapshot(torch, directory, count):
    """With GPU_LAYERS_OOM_SNAPSHOT=1: writes <pid>.oom-<count>.pickle, the allocator's memory
    snapshot, and returns (its file name, None), or (None, why not). Never raises.

    Without stack traces: torch.cuda.memory._snapshot() holds stacks (the "frames" of segments,
    blocks and trace entries, and the trace ring buffer "device_traces") only while the program
    records memory history (torch.cuda.memory._record_memory_history(), which the companion never
    turns on); otherwise those lists are empty and the snapshot is the segments and blocks alone.
    While history is recorded, taking it would symbolise every stack on this allocating thread
    (seconds on a real GPU), so where torch says so (torch._C._cuda_isHistoryEnabled) no snapshot
    is taken: that program can dump its own. Where torch cannot say (older builds), any frames are
    emptied before the snapshot is written. `memory_snapshot(include_traces=False)` of newer torch
    would not do: it leaves out the trace entries but not the blocks' frames.
    Pickled with protocol 4, as PyTorch's viewer (pytorch.org/memory_viz) reads only 2 to 4.
    """
    try:
        history = getattr(getattr(torch, "_C", None), "_cuda_isHistoryEnabled", None)
        if history is not None and history():
            return None, ("not taken: this program records memory history (torch.cuda.memory._record_memory_history), "
                          "so the snapshot would carry stack traces and take long to symbolise on the allocating thread; "
                          "torch.cuda.memory._dump_snapshot() in the program writes its own")
        with _oom_lock:
            if _oom["snapshots"] >= OOM_SNAPSHOT_MAX_FILES:
                return None, ("not taken: this process already tried %d snapshots, the most it writes"
                              % OOM_SNAPSHOT_MAX_FILES)
            _oom["snapshots"] += 1
        import pickle  # here, not at import: sitecustomize loads the companion into every Python process

        snapshot = torch.cuda.memory._snapshot()
        _empty_frames(snapshot)
        name = "%d.oom-%d.pickle" % (os.getpid(), count)

        def fill(f):
            pickle.Pickler(_BoundedWriter(f, OOM_SNAPSHOT_MAX_BYTES), protocol=4).dump(snapshot)

        _replace_in_folder(directory, name, "pickle", fill)
        return name, None
    except _TooLarge:
        return None, ("not written: the snapshot is larger than %d bytes, the most the companion writes"
                      % OOM_SNAPSHOT_MAX_BYTES)
    except FolderRefused as refusal:
        return None, _reason("not written: %s" % (refusal,))
    except Exception as error:
        return None, _reason("not taken: %r" % (error,))


def _on_oom(device, alloc, device_total, device_free):
    """PyTorch's out-of-memory observer: called on the allocating thread, with the GIL, when the
    caching allocator is about to raise OutOfMemoryError (it has released its own lock by then, so
    memory_stats() and memory._snapshot() are safe). torch passes the device, the request's bytes
    (rounded as the allocator rounds it), the device's total bytes (or the cap that
    set_per_process_memory_fraction() set; torch's own name for it, device_allocated, misleads) and
    the free bytes cudaMemGetInfo() reported. Never raises: torch would throw the exception from
    the allocator in place of the workload's OutOfMemoryError.
    """
    try:
        _observe_oom(device, alloc, device_total, device_free)
    except Exception:
        pass


def _observe_oom(device, alloc, device_total, device_free):
    at, now = time.time(), time.monotonic()
    with _oom_lock:
        _oom["count"] += 1
        count = _oom["count"]
        last = _oom["lastWrite"]
        write_now = last is None or now - last >= OOM_MIN_WRITE_SECONDS
        if write_now:
            _oom["lastWrite"] = now  # taken now, so two threads' OOMs in one instant write once
    record = {"count": count, "at": at, "device": int(device), "requestedBytes": int(alloc),
              "deviceTotalBytes": int(device_total), "deviceFreeBytes": int(device_free),
              "snapshot": None, "snapshotError": None}
    directory, torch = _state.get("directory"), sys.modules.get("torch")
    if os.environ.get("GPU_LAYERS_OOM_SNAPSHOT") == "1":
        if write_now and directory and torch is not None:
            record["snapshot"], record["snapshotError"] = _oom_snapshot(torch, directory, count)
        else:
            record["snapshotError"] = ("not taken: within %g s of the last OOM written (an OOM storm: at most one "
                                       "write a second)" % OOM_MIN_WRITE_SECONDS)
    with _oom_lock:
        if record["snapshot"] is not None:
            _oom["lastSnapshot"] = record["snapshot"]
        else:
            # The newest snapshot written stays named (its name carries the count it was taken at).
            record["snapshot"] = _oom["lastSnapshot"]
        if _oom["record"] is None or _oom["record"]["count"] < count:
            _oom["record"] = record
    if write_now and directory:
        write_once(directory, _state.get("start_ticks"), _state.get("interval"), OOM_WRITE_LOCK_SECONDS)
    wake = _state.get("wake")
    if wake is not None:
        wake.set()  # the writer thread writes what is left (a coalesced OOM) when it is due


def _oom_write_due():
    """The monotonic time at which the writer thread should write an OOM no file has carried yet,
    or None when every OOM is in a file."""
    with _oom_lock:
        if _oom["count"] <= _oom["written"]:
            return None
        last = _oom["lastWrite"]
        return time.monotonic() if last is None else last + OOM_MIN_WRITE_SECONDS


def _attach_oom_observer(torch, errors):
    """Registers _on_oom once per process, only once CUDA is initialised: attaching initialises
    CUDA itself (at::globalContext().lazyInitCUDA() in torch's binding)."""
    if _oom["attached"]:
        return
    _oom["attached"] = True  # once, even when it fails
    attach = getattr(getattr(torch, "_C", None), "_cuda_attach_out_of_memory_observer", None)
    if attach is None:
        return  # a torch without it (a private API): nothing to watch, nothing to say
    try:
        attach(_on_oom)
    except Exception as error:
        errors.append(_reason("out-of-memory observer: %r" % (error,)))


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


def write_once(directory, start_ticks, interval, lock_timeout=-1):
    """One write: the file if torch is loaded and CUDA initialised. Never raises.

    lock_timeout: how long to wait for a write in progress (-1: as long as it takes); None is
    returned, nothing written, when it does not end in time."""
    try:
        torch = sys.modules.get("torch")
        if torch is None or not hasattr(torch, "cuda"):
            return None
        if not _write_lock.acquire(timeout=lock_timeout):
            return None
        try:
            with _oom_lock:
                oom = _oom["record"]
                if oom is not None and oom["count"] > _oom["written"]:
                    # A try, written or failed, counts against the one write a second.
                    _oom["lastWrite"] = time.monotonic()
            try:
                document = snapshot(torch, start_ticks, interval)
            except Exception as error:
                errors = ["memory stats: %r" % (error,)]
                document = {"format": FORMAT, "version": VERSION, "pid": os.getpid(), "startTimeTicks": start_ticks,
                            "writtenAt": time.time(), "intervalSeconds": interval,
                            "torchVersion": getattr(torch, "__version__", None), "devices": [],
                            "host": _host(errors), "errors": errors}
            if document is None:
                return None
            _attach_oom_observer(torch, document["errors"])
            document["oom"] = None if oom is None else dict(oom)
            path = _write(directory, document)
        finally:
            _write_lock.release()
        _state["path"] = path
        if oom is not None:
            with _oom_lock:
                _oom["written"] = max(_oom["written"], oom["count"])
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


def _run(directory, interval, stop, wake):
    try:
        _make_folder(directory)
        start_ticks = _start_time_ticks()
    except FolderRefused as refusal:
        _say_once(str(refusal))
        return
    except Exception as error:
        _say_once("%s: %s" % (directory, error))
        return
    _state.update(directory=directory, start_ticks=start_ticks, interval=interval)
    next_tick = time.monotonic() + interval
    while not stop.is_set():
        now = time.monotonic()
        due = _oom_write_due()
        if now >= next_tick or (due is not None and now >= due):
            write_once(directory, start_ticks, interval)
            if now >= next_tick:
                next_tick = time.monotonic() + interval
            if _state.get("refused"):  # the folder changed hands after the start
                _say_once(_state["refused"])
                return
            continue
        # Woken early by stop() or by an OOM the observer left to this thread.
        wake.wait(min(next_tick, due if due is not None else next_tick) - now)
        wake.clear()


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
            stop, wake = threading.Event(), threading.Event()
            thread = threading.Thread(target=_run, args=(directory, interval, stop, wake),
                                      name="gpu-layers-companion", daemon=True)
            _state.update(thread=thread, stop=stop, wake=wake, path=None)
            thread.start()
        return True
    except Exception:
        return False


def stop():
    """Stops the writer thread and removes this process's file."""
    for name in ("stop", "wake"):
        event = _state.get(name)
        if event is not None:
            event.set()
    _remove_own_file()


def _after_fork_in_child():
    # The writer thread does not survive fork(); the child gets its own, writing its own pid. The
    # observer does survive (torch's list of observers is copied with the process), so it stays
    # attached (attaching again would count each OOM twice); the child's file counts its own OOMs.
    # A lock another thread held at the fork would stay held in the child: new ones.
    global _oom_lock, _write_lock
    _oom_lock, _write_lock = threading.Lock(), threading.Lock()
    _oom.update(count=0, record=None, written=0, lastWrite=None, snapshots=0, lastSnapshot=None)
    _state.update(thread=None, stop=None, wake=None, path=None, said=False, refused=None,
                  directory=None, start_ticks=None, interval=None)
    start()


def _check_lines():
    """(lines, problems) for --check: what this interpreter shows the companion, read without
    initialising CUDA, starting the companion or creating the stats folder."""
    import platform
    import site

    lines, problems = [], []

    def say(label, text, problem=None):
        lines.append("%-13s %s" % (label + ":", text))
        if problem:
            problems.append(problem)

    say("companion", "%s (%s)" % (os.path.abspath(__file__), "gpu-layers-companion format %d" % VERSION))
    say("python", "%s %s" % (platform.python_implementation(), platform.python_version()),
        None if sys.version_info >= (3, 8) else "Python older than 3.8")
    try:
        libc = os.confstr("CS_GNU_LIBC_VERSION")
    except (AttributeError, ValueError, OSError):
        libc = None
    say("glibc", libc.split(" ", 1)[-1] if libc else "not glibc (musl?): no malloc statistics")
    try:
        _, _, unknown = _resolve_malloc()
    except Exception as error:
        unknown = "mallinfo2() could not be looked up: %s" % (str(error)[:160],)
    say("mallinfo2", "available (host malloc figures)" if unknown is None else "unavailable: %s" % unknown)

    try:
        import torch  # importing torch does not initialise CUDA; nothing below does either
    except Exception as error:
        say("torch", "not importable: %s" % (str(error)[:160] or type(error).__name__),
            "torch is not importable here: the companion has nothing to report")
    else:
        try:
            cuda_state = "initialised" if torch.cuda.is_initialized() else "not initialised"
        except Exception as error:
            cuda_state = "unknown (%s)" % (str(error)[:80] or type(error).__name__)
        cuda_version = getattr(getattr(torch, "version", None), "cuda", None)
        say("torch", "%s%s, CUDA %s in this process (the check never initialises it)"
            % (getattr(torch, "__version__", "version unknown"),
               " (built for CUDA %s)" % cuda_version if cuda_version else "", cuda_state))

    directory = os.environ.get("GPU_LAYERS_STATS_DIR")
    if not directory:
        say("stats folder", "GPU_LAYERS_STATS_DIR is not set: the companion does not start",
            "GPU_LAYERS_STATS_DIR is not set")
    else:
        try:
            folder_stat = os.stat(directory)
        except FileNotFoundError:
            folder_stat = None
        except OSError as error:
            folder_stat = error
        if folder_stat is None:
            say("stats folder", "%s does not exist yet: the companion makes it 0700 (this user's alone)" % directory)
        elif isinstance(folder_stat, OSError):
            say("stats folder", "%s: %s" % (directory, folder_stat.strerror), "the stats folder cannot be read")
        else:
            refusal = folder_refusal(directory, folder_stat)
            if refusal is None:
                say("stats folder", "%s: trusted (owner uid %d, mode %04o)"
                    % (directory, folder_stat.st_uid, stat_module.S_IMODE(folder_stat.st_mode)))
            else:
                say("stats folder", "refused: %s" % refusal, "the stats folder is refused")

    hook = _pth_hook(site)
    if hook is None:
        say(".pth hook", "not installed (no gpu_layers_companion.pth in this environment's site-packages)")
    else:
        if sys.flags.no_site:
            state = "inactive: python runs with -S, so site does not read .pth files"
        elif getattr(sys.modules.get("gpu_layers_companion_hook"), "for_check", False):
            state = "active: starts the companion in every process where GPU_LAYERS_STATS_DIR is set (not in this check)"
        elif "gpu_layers_companion_hook" in sys.modules:
            state = "active: it started the companion in this process"
        elif directory:
            state = "installed, but it did not run in this process"
        else:
            state = "active: starts the companion in every process once GPU_LAYERS_STATS_DIR is set"
        say(".pth hook", "%s (%s)" % (state, hook))
    shadow = sys.modules.get("sitecustomize")
    here = os.path.dirname(os.path.abspath(__file__))
    through_path = shadow is not None and os.path.dirname(os.path.abspath(getattr(shadow, "__file__", "") or "")) == here
    if through_path:
        say("PYTHONPATH", "the companion's sitecustomize.py runs from %s" % here)
    if hook is None and not through_path:
        problems.append("nothing starts the companion automatically: pip install its wheel, "
                        "or put its folder on PYTHONPATH")
    return lines, problems


def _pth_hook(site):
    """The installed gpu_layers_companion.pth that site reads at start-up, or None."""
    folders = []
    try:
        folders.extend(site.getsitepackages())
    except Exception:
        pass
    if getattr(site, "ENABLE_USER_SITE", False):
        try:
            folders.append(site.getusersitepackages())
        except Exception:
            pass
    for folder in folders:
        candidate = os.path.join(folder, "gpu_layers_companion.pth")
        if os.path.isfile(candidate):
            return candidate
    return None


def main(argv):
    """python -m gpu_layers_companion --check: exit 0 when the companion can write here, 1 otherwise."""
    if argv != ["--check"]:
        sys.stderr.write("usage: python -m gpu_layers_companion --check\n"
                         "  says what the companion sees in this environment; exit 0 when it can write, 1 if not\n")
        return 0 if argv in (["-h"], ["--help"]) else 2
    lines, problems = _check_lines()
    for line in lines:
        sys.stdout.write(line + "\n")
    for problem in problems:
        sys.stdout.write("problem:      %s\n" % problem)
    sys.stdout.write("ok\n" if not problems else "not ok: %d problem%s\n" % (len(problems), "" if len(problems) == 1 else "s"))
    return 0 if not problems else 1


if __name__ == "__main__":
    # `python -m gpu_layers_companion`: this copy of the module only checks and exits before the
    # lines below, so it never starts a second companion (nor makes the stats folder).
    sys.exit(main(sys.argv[1:]))

atexit.register(_remove_own_file)
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
start()
