"""Times the companion's writes for `npm run bench`: `write_once()` of
python/gpu_layers_companion with an in-memory stand-in for torch whose memory_stats() returns a
dict shaped like real torch's (every stat x pool x current/peak/allocated/freed, plus the counters
and one private pool per device). What is timed is the companion's own work per write: picking
the figures it keeps, building the document, the JSON, the temporary file and the rename. Real
torch adds its own memory_stats() time per device (checked on a GPU in the real-GPU issue).

Usage: companion_write_bench.py DEVICES WRITES [PARENT_FOLDER]. Prints JSON: the microseconds of each write, the
same for the document written to a plain file (open, one write, close: the floor any file writer
pays), and the written document's size."""
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
        if len(document["devices"]) != devices or document["errors"]:
            raise SystemExit("unexpected document: %r" % (document,))
        # The floor any file writer pays: the same document as JSON into a plain file, opened,
        # written and closed, without the atomic rename or reading torch.
        floor = os.path.join(directory, "floor.json")
        dump_us = []
        for _ in range(writes):
            started = time.perf_counter_ns()
            with open(floor, "w") as f:
                f.write(json.dumps(document, separators=(",", ":")))
            dump_us.append((time.perf_counter_ns() - started) / 1000)
        print(json.dumps({"writeMicros": write_us, "floorMicros": dump_us, "bytes": os.path.getsize(path)}))
    finally:
        for name in os.listdir(directory):
            os.unlink(os.path.join(directory, name))
        os.rmdir(directory)


main()
