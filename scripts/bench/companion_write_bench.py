"""Times the companion's writes for `npm run bench`: `write_once()` of
python/gpu_layers_companion with an in-memory stand-in for torch whose memory_stats() returns a
dict shaped like real torch's (every stat x pool x current/peak/allocated/freed, plus the counters
and one private pool per device). What is timed is the companion's own work per write: picking
the figures it keeps, building the document, the JSON, the temporary file and the rename, and the
host part (glibc's mallinfo2() and malloc_info() for the arena count, sys.getallocatedblocks()),
read on every timed write (the pacing that skips slow reads is switched off). Real torch adds its
own memory_stats() time per device (checked on a GPU in the real-GPU issue).

Usage: companion_write_bench.py DEVICES WRITES [PARENT_FOLDER]. Prints JSON: the microseconds of each write, the
same for the document written to a plain file (open, one write, close: the floor any file writer
pays), the written document's size, and the microseconds of the malloc read alone (mallinfo2()
and the arena count) and of the whole host part (null, with the reason, where this C library has
no mallinfo2). This process's heap is small: the malloc read grows with the free chunks the
allocator holds (see HOST_READ_BUDGET_SECONDS in the companion)."""
import json
import os
import sys
import tempfile
import time
import types

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "python", "gpu_layers_companion"))
os.environ.pop("GPU_LAYERS_STATS_DIR", None)  # time write_once() alone: no writer thread

STATS = ("allocated_bytes", "reserved_bytes", "active_bytes", "inactive_split_bytes", "requested_bytes",
         "allocation", "segment", "active", "inactive_split")
POOLS = ("all", "large_pool", "small_pool")
KINDS = ("current", "peak", "allocated", "freed")


def stats_like_torch(index):
    stats = {}
    for n, (stat, pool, kind) in enumerate((s, p, k) for s in STATS for p in POOLS for k in KINDS):
        stats["%s.%s.%s" % (stat, pool, kind)] = (index + 1) * 1_000_003 * (n + 1)
    for counter in ("num_alloc_retries", "num_ooms", "num_sync_all_streams", "num_device_alloc", "num_device_free",
                    "max_split_size"):
        stats[counter] = index
    for kind in KINDS:
        stats["oversize_allocations.%s" % kind] = 0
        stats["oversize_segments.%s" % kind] = 0
    stats["reserved_bytes_by_private_pools.(%d, 1).all.current" % index] = 805_306_368
    return stats


def fake_torch(devices):
    # Built once: real torch builds its dict in C++ and Python, and that cost is torch's, not the
    # companion's. Each call still returns a fresh dict, as torch does.
    prebuilt = [stats_like_torch(index) for index in range(devices)]
    torch = types.ModuleType("torch")
    torch.__version__ = "2.5.1+bench"
    cuda = types.ModuleType("torch.cuda")
    cuda.is_initialized = lambda: True
    cuda.device_count = lambda: devices
    cuda.get_device_properties = lambda index: types.SimpleNamespace(
        name="NVIDIA H100 80GB HBM3", uuid="GPU-%08d-0000-4000-8000-000000000000" % index)
    cuda.memory_stats = lambda index: dict(prebuilt[index])
    torch.cuda = cuda
    return torch


def main():
    devices, writes = int(sys.argv[1]), int(sys.argv[2])
    sys.modules["torch"] = fake_torch(devices)
    import gpu_layers_companion as companion

    companion.HOST_READ_BUDGET_SECONDS = float("inf")  # every timed write reads the host part
    parent = sys.argv[3] if len(sys.argv) > 3 else None
    directory = tempfile.mkdtemp(prefix="gpu-layers-companion-bench-", dir=parent)
    try:
        ticks = companion._start_time_ticks()
        for _ in range(200):
            companion.write_once(directory, ticks, 2.0)
        write_us = []
        for _ in range(writes):
            started = time.perf_counter_ns()
            path = companion.write_once(directory, ticks, 2.0)
            write_us.append((time.perf_counter_ns() - started) / 1000)
            if path is None:
                raise SystemExit("write_once wrote nothing")
        with open(path) as f:
            document = json.load(f)
        if len(document["devices"]) != devices or document["errors"] or document["host"]["python"] is None:
            raise SystemExit("unexpected document: %r" % (document,))
        # The malloc read's own cost (mallinfo2() and the arena count), then the whole host part.
        malloc_us, host_us = None, []
        if document["host"]["malloc"] is not None:
            malloc_us = []
            for _ in range(writes):
                started = time.perf_counter_ns()
                companion._read_malloc()
                malloc_us.append((time.perf_counter_ns() - started) / 1000)
        for _ in range(writes):
            started = time.perf_counter_ns()
            companion._host([])
            host_us.append((time.perf_counter_ns() - started) / 1000)
        # The floor any file writer pays: the same document as JSON into a plain file, opened,
        # written and closed, without the atomic rename or reading torch.
        floor = os.path.join(directory, "floor.json")
        dump_us = []
        for _ in range(writes):
            started = time.perf_counter_ns()
            with open(floor, "w") as f:
                f.write(json.dumps(document, separators=(",", ":")))
            dump_us.append((time.perf_counter_ns() - started) / 1000)
        print(json.dumps({"writeMicros": write_us, "floorMicros": dump_us, "bytes": os.path.getsize(path),
                          "mallocReadMicros": malloc_us, "hostReadMicros": host_us,
                          "mallocUnknownBecause": document["host"]["mallocUnknownBecause"],
                          "arenaCount": (document["host"]["malloc"] or {}).get("arenaCount")}))
    finally:
        for name in os.listdir(directory):
            os.unlink(os.path.join(directory, name))
        os.rmdir(directory)


main()
