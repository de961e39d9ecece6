"""The PyTorch workload of scripts/gpu-check.sh: a process that moves through the phases of a
vLLM-like server's life and pauses at each so the checker can read every layer at rest.

Phases: init (CUDA initialised only), weights, kv (a KV-cache-like arena), graphs (CUDA graphs
captured per batch size in one shared pool, as vLLM does), churn (variable-size allocations and
frees), graphs2 (graphs for new sizes). At each phase it writes torch's own figures to
WORK/phase-<name>.json and waits for WORK/continue-<name>. After graphs and churn it dumps a
memory snapshot (torch.cuda.memory._dump_snapshot) to OUT. At the churn phase (host_memory.PHASE),
after its allocations, it reads glibc's malloc_stats() and mallinfo2() at one moment into
OUT/malloc-stats.json, which the checker compares with the companion's next file. Last, the oom
phase (oom_check.py): with everything still held, memory history off and the cache emptied, it asks
for the device's free bytes + 1 GiB, catches torch.cuda.OutOfMemoryError, copies the companion's
file of that moment (written by the out-of-memory observer before torch raised; the workload runs
with GPU_LAYERS_OOM_SNAPSHOT=1) to OUT/companion-oom.json, and publishes what it asked for, when
and the error's message, then rests while the checker samples.

--simulate runs the same protocol under the fake torch of the companion's tests
(test/fixtures/fake-torch, its state in $FAKE_TORCH_STATE, CUDA "initialised" with the phase's
figures), so the real companion writes its files; it keeps some host memory (an mmapped chunk
and blocks in the arena) so the malloc figures have parts of either kind. Its OOM goes through the
fake torch's trigger (torch.cuda._fake_oom), which calls the companion's observer as the caching
allocator does, with the mock NVML's device as cudaMemGetInfo() would see it.
"""
import json
import os
import random
import sys
import time

import host_memory
import oom_check

PHASES = ["init", "weights", "kv", "graphs", "churn", "graphs2"]
GiB = 1024 ** 3
MiB = 1024 ** 2


def wait_for(path, timeout=300.0):
    end = time.time() + timeout
    while not os.path.exists(path):
        if time.time() > end:
            sys.exit("workload: timed out waiting for %s" % path)
        time.sleep(0.02)


def publish(work, phase, figures):
    figures = dict(figures, phase=phase, pid=os.getpid(), at=time.time())
    tmp = os.path.join(work, ".phase-%s.tmp" % phase)
    with open(tmp, "w") as f:
        json.dump(figures, f)
    os.rename(tmp, os.path.join(work, "phase-%s.json" % phase))
    wait_for(os.path.join(work, "continue-%s" % phase))


def torch_figures(torch):
    stats = torch.cuda.memory_stats()
    free, total = torch.cuda.mem_get_info()
    pools = {k: v for k, v in stats.items() if k.startswith("reserved_bytes_by_private_pools")}
    return {
        "memory_reserved": torch.cuda.memory_reserved(),
        "memory_allocated": torch.cuda.memory_allocated(),
        "mem_get_info_free": free,
        "mem_get_info_total": total,
        "inactive_split_bytes": stats.get("inactive_split_bytes.all.current"),
        "num_alloc_retries": stats.get("num_alloc_retries"),
        "private_pool_stats": pools,
        "torch_version": torch.__version__,
    }


def run_torch(work, out):
    import torch

    # Python stacks only: symbolising C++ frames would take longer than the whole check.
    torch.cuda.memory._record_memory_history(max_entries=20000, stacks="python")
    torch.cuda.init()
    torch.cuda.synchronize()
    publish(work, "init", torch_figures(torch))

    weights = [torch.empty(GiB // 2, dtype=torch.bfloat16, device="cuda") for _ in range(8)]  # 8 GiB
    torch.cuda.synchronize()
    publish(work, "weights", torch_figures(torch))

    kv = torch.empty(16 * GiB // 2, dtype=torch.bfloat16, device="cuda")  # a 16 GiB arena
    torch.cuda.synchronize()
    publish(work, "kv", torch_figures(torch))

    # A 24-layer MLP stands in for a model: many kernels per graph, so each graph's exec is large.
    layers = [torch.nn.Linear(2048, 2048, device="cuda", dtype=torch.bfloat16) for _ in range(24)]

    def model(x):
        for layer in layers:
            x = torch.relu(layer(x))
        return x

    pool = torch.cuda.graph_pool_handle()
    graphs = {}

    def capture(sizes):
        stream = torch.cuda.Stream()
        for bs in sizes:
            x = torch.randn(bs, 2048, device="cuda", dtype=torch.bfloat16)
            stream.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(stream):
                for _ in range(2):
                    model(x)
            torch.cuda.current_stream().wait_stream(stream)
            g = torch.cuda.CUDAGraph()
            with torch.cuda.graph(g, pool=pool):
                y = model(x)
            graphs[bs] = (g, x, y)
        torch.cuda.synchronize()

    capture([1, 2, 4, 8, 16, 32, 64, 128])
    torch.cuda.memory._dump_snapshot(os.path.join(out, "snapshot-graphs.pickle"))
    publish(work, "graphs", torch_figures(torch))

    rng = random.Random(7)
    live = []
    for _ in range(3000):
        size = rng.randint(1, 96) * MiB // 2 + rng.randint(0, 4095)
        live.append(torch.empty(size, dtype=torch.uint8, device="cuda"))
        if len(live) > 40:
            for _ in range(rng.randint(1, 30)):
                live.pop(rng.randrange(len(live)))
    torch.cuda.synchronize()
    torch.cuda.memory._dump_snapshot(os.path.join(out, "snapshot-churn.pickle"))
    host_memory.write_malloc_stats(out)  # the moment for the host check: after the churn and the dump
    publish(work, "churn", torch_figures(torch))

    capture([192, 256, 384])
    publish(work, "graphs2", torch_figures(torch))

    # The last phase: a CUDA out-of-memory, with everything above still held. Memory history off,
    # or the companion takes no snapshot (it would carry stacks to symbolise on this thread);
    # empty_cache() so the free bytes read here are what the allocator sees when it gives up.
    torch.cuda.memory._record_memory_history(enabled=None)
    torch.cuda.empty_cache()
    torch.cuda.synchronize()
    free, total = torch.cuda.mem_get_info()
    request = free + oom_check.BEYOND_FREE
    seen = oom_check.provoke(lambda: torch.empty(request, dtype=torch.uint8, device="cuda"), torch.cuda.OutOfMemoryError, request, out)
    publish(work, oom_check.PHASE, dict(torch_figures(torch), oom=seen, oom_free_before=free, oom_total_before=total,
                                        num_ooms=torch.cuda.memory_stats().get("num_ooms")))
    del weights, kv, live, graphs


def fake_torch_state(reserved, **more):
    """The fake torch's state (re-read on every call, so replaced atomically): CUDA initialised, the
    mock's device, the phase's figures; `more` adds to the state (e.g. "snapshotSegments")."""
    state = {**more, "initialized": True, "devices": [{
        "name": "NVIDIA H100 80GB HBM3", "uuid": "5d8a1e0c-7f3b-4a62-9c1e-2b8f0d4e6a17", "total_memory": 85520809984,
        "stats": {"reserved_bytes.all.current": reserved, "allocated_bytes.all.current": reserved, "active_bytes.all.current": reserved,
                  "inactive_split_bytes.all.current": 0, "requested_bytes.all.current": reserved, "reserved_bytes.all.peak": reserved,
                  "allocated_bytes.all.peak": reserved, "num_alloc_retries": 0, "num_ooms": 0}}]}
    path = os.environ["FAKE_TORCH_STATE"]
    with open(path + ".tmp", "w") as f:
        json.dump(state, f)
    os.rename(path + ".tmp", path)


def run_simulated(work, out):
    fake_torch_state(0)
    import torch  # noqa: F401  (the fake one: the companion writes once torch is loaded and CUDA initialised)
    # Host memory of both kinds malloc_stats() counts: an 8 MiB block (above the mmap threshold: an
    # mmapped chunk) and 3,000 blocks of 3 KiB in the arena, written so they are resident.
    kept = [b"x" * (8 * MiB)] + [b"y" * 3072 + bytes([i % 256]) for i in range(3000)]
    for i, phase in enumerate(PHASES):
        fake_torch_state(i * GiB)
        if phase == host_memory.PHASE:
            host_memory.write_malloc_stats(out)
        publish(work, phase, {"memory_reserved": i * GiB, "memory_allocated": i * GiB, "mem_get_info_free": None,
                              "mem_get_info_total": None, "inactive_split_bytes": 0, "num_alloc_retries": 0,
                              "private_pool_stats": {}, "torch_version": None})
    run_simulated_oom(work, out, (len(PHASES) - 1) * GiB)
    del kept


def simulated_mem_get_info():
    """cudaMemGetInfo() of the mock's device, from the scenario the checker wrote (NVML's memory
    line: total, reserved, used, free): NVML's total less the reserved, as on the H200, and NVML's
    free less the 5.6 MiB the H200 showed between them at every phase."""
    with open(os.environ["GPU_LAYERS_MOCK_SCENARIO"]) as f:
        memory = next(line.split()[1:] for line in f if line.startswith("memory "))
    total, reserved, _, free = (int(v) for v in memory)
    return total - reserved, free - 5832704


def run_simulated_oom(work, out, reserved):
    """The OOM phase under the fake torch: its trigger calls the companion's observer as the
    caching allocator does (with the request rounded as the allocator rounds it, the device's
    total and free) and raises OutOfMemoryError; the snapshot the companion then takes holds the
    reserved bytes in one segment, as the allocator's would. The request is not a multiple of
    512 B, so the rounding is exercised."""
    import torch

    total, free = simulated_mem_get_info()
    request = free + oom_check.BEYOND_FREE + 12345
    segment = {"device": 0, "address": 139620000000000, "total_size": reserved, "allocated_size": reserved, "active_size": reserved,
               "requested_size": reserved, "stream": 0, "segment_type": "large", "segment_pool_id": [0, 0], "is_expandable": False, "frames": [],
               "blocks": [{"address": 139620000000000, "size": reserved, "requested_size": reserved, "state": "active_allocated", "frames": []}]}
    fake_torch_state(reserved, snapshotSegments=[segment])
    seen = oom_check.provoke(lambda: torch.cuda._fake_oom(0, oom_check.allocation_size(request), total, free), torch.cuda.OutOfMemoryError, request, out)
    publish(work, oom_check.PHASE, {"memory_reserved": reserved, "memory_allocated": reserved, "mem_get_info_free": free, "mem_get_info_total": total,
                                    "inactive_split_bytes": 0, "num_alloc_retries": 0, "private_pool_stats": {}, "torch_version": None,
                                    "oom": seen, "oom_free_before": free, "oom_total_before": total, "num_ooms": torch.cuda.memory_stats(0).get("num_ooms")})


if __name__ == "__main__":
    work, out = sys.argv[1], sys.argv[2]
    if "--simulate" in sys.argv:
        run_simulated(work, out)
    else:
        run_torch(work, out)
