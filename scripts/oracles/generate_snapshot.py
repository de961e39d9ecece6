"""Writes synthetic PyTorch CUDA caching-allocator snapshots, shaped like the pickles of
torch.cuda.memory._dump_snapshot(), for the snapshot reader's tests and benchmark; and, with
--hostile, bad pickles the reader must refuse.

Usage:
  generate_snapshot.py OUTDIR [--name NAME] [--seed N] [--protocols 2,4,5] [--target-mb M]
      writes OUTDIR/NAME.pP.pickle for each protocol P (one object, pickle.dump(protocol=P)) and
      OUTDIR/NAME.expected.json = json.dumps({"devices": figures(snapshot)["devices"]}, indent=1),
      figures() being scripts/oracles/snapshot_figures.py. Defaults: NAME "snapshot", seed 1.
  generate_snapshot.py --hostile OUTDIR
      writes the hostile files listed in write_hostile() (no sidecar).
Prints one line per file written: its path.

Default snapshot (tens of KB, hand-laid so every figure has a known, non-trivial value):
  devices 0 and 1 with segments, device 2 with trace entries only, device_traces[3] empty; see
  build_default_snapshot() for the segments of each pool.

Scaled snapshot (--target-mb M): the default snapshot plus generated "bulk" segments alternating
between devices 0 and 1, added until the protocol-4 pickle is about M MB (1 MB = 10**6 bytes):
  - BULK_FRAME_COUNT distinct frame dicts and BULK_STACK_COUNT distinct frame lists (BULK_STACK_DEPTH
    frames each), shared by all blocks; a block's stack is drawn with a skew so that a few
    allocation sites hold most blocks;
  - segment kinds: SMALL_SEGMENT_SHARE small-pool segments (2 MiB; blocks of 512 B multiples, 4 KiB
    on average, so about 500 blocks each), the rest large-pool (20 MiB with 1-8 MiB blocks, or one
    big block in a 12-256 MiB segment); reserved memory comes to tens of GiB per device;
  - pools: GRAPH_POOL_SHARE of segments in CUDA-graph pools (1..6, 0), MEMPOOL_SHARE in MemPools
    (0, 1..3), the rest in the default pool, EXPANDABLE_SHARE of which are expandable mapped ranges;
  - block states: ALLOCATED_SHARE active_allocated, PENDING_FREE_SHARE active_pending_free, the rest
    inactive, never two inactive blocks side by side (the allocator merges free neighbours);
  - traces: one segment_alloc (segment_map when expandable) per segment and, for a block, an entry
    with probability TRACE_ENTRIES_PER_BLOCK (alloc, free_requested or free_completed by state).
  For 300 MB: about 11 thousand segments, 6.6 million blocks and 1 million trace entries, written in
  about 30 s with 2.5 GB peak RSS (--protocols 4). The size is estimated by pickling the first
  batches of bulk segments on their own; the result is within about 1% of M (M of 10 or more).
"""
import argparse
import json
import os
import pickle
import random
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from snapshot_figures import figures  # noqa: E402

KiB = 1024
MiB = 1024 * KiB
GiB = 1024 * MiB

DEFAULT_POOL = (0, 0)
SITE_PACKAGES = "/opt/conda/lib/python3.11/site-packages"
SIDE_STREAM = 0x5616_3A2B_C0D0  # a cudaStream_t pointer value, above 2**32
START_TIME_US = 1_716_912_000_000_000
DEVICE_BASE_ADDRESS = {0: 0x7F2A_0000_0000, 1: 0x7E11_0000_0000}
BULK_BASE_OFFSET = 0x20_0000_0000  # bulk segments start this far above the device's default segments

BULK_FRAME_COUNT = 12_000
BULK_STACK_COUNT = 4_000
BULK_STACK_DEPTH = (6, 24)
SMALL_SEGMENT_SHARE = 0.9
GRAPH_POOL_SHARE = 0.12
MEMPOOL_SHARE = 0.08
EXPANDABLE_SHARE = 0.1
ALLOCATED_SHARE = 0.55
PENDING_FREE_SHARE = 0.03
TRACE_ENTRIES_PER_BLOCK = 0.15
BULK_BATCH_SEGMENTS = 64
CALIBRATION_BYTES = 16_000_000
DEEP_NESTING = 100_000  # levels of deep.pickle


def frame(filename, line, name):
    return {"filename": filename, "line": line, "name": name}


class SnapshotBuilder:
    """Collects segments and trace entries; shared frame lists stay shared, as in PyTorch's own dicts."""

    def __init__(self, rng):
        self.rng = rng
        self.segments = []
        self.device_traces = [[], [], [], []]
        self.clock_us = START_TIME_US
        # PyTorch's binding puts one shared empty list in every dict that has no recorded stack.
        self.empty_frames = []

    def tick(self):
        self.clock_us += 1 + self.rng.randrange(5000)
        return self.clock_us

    def trace(self, device, action, addr, size, stream=0, frames=None, timed=True, compile_context=""):
        entry = {"action": action, "addr": addr, "size": size, "stream": stream}
        if frames is not None:
            entry["frames"] = frames
        if timed:
            entry["time_us"] = self.tick()
        entry["compile_context"] = compile_context
        entry["user_metadata"] = ""
        self.device_traces[device].append(entry)
        return entry

    def oom(self, device, size, device_free, frames, timed=True):
        entry = {"action": "oom", "device_free": device_free, "size": size, "stream": 0, "frames": frames}
        if timed:
            entry["time_us"] = self.tick()
        self.device_traces[device].append(entry)

    def segment(self, device, address, blocks, stream=0, segment_type="large", pool_id=DEFAULT_POOL,
                expandable=False, legacy=False, record=True):
        """blocks: (state, size, frames, requested_size) with state "A"/"P"/"F"; frames None leaves the
        key out, requested_size None leaves the key out, requested_size ... picks a rounding."""
        states = {"A": "active_allocated", "P": "active_pending_free", "F": "inactive"}
        block_dicts = []
        allocated = active = requested = 0
        block_address = address
        for state, size, frames, requested_size in blocks:
            block = {"address": block_address, "size": size}
            if requested_size is ...:
                requested_size = 0 if state == "F" else max(size - self.rng.randrange(512), min(size, 1))
            if requested_size is not None:
                block["requested_size"] = requested_size
            block["state"] = states[state]
            if frames is not None:
                block["frames"] = frames
            block_dicts.append(block)
            if state != "F":
                active += size
                requested += size if requested_size is None else requested_size
                if state == "A":
                    allocated += size
            block_address += size
        total_size = block_address - address
        segment_frames = next((b[2] for b in blocks if b[0] == "A" and b[2]), self.empty_frames)
        segment = {
            "device": device, "address": address, "total_size": total_size, "allocated_size": allocated,
            "active_size": active, "requested_size": requested, "stream": stream, "segment_type": segment_type,
            "segment_pool_id": pool_id, "is_expandable": expandable, "frames": segment_frames,
            "blocks": block_dicts,
        }
        if legacy:  # as written before pools, expandable segments and segment types were reported
            for key in ("segment_type", "segment_pool_id", "is_expandable"):
                del segment[key]
        self.segments.append(segment)
        if record:
            self.record_history(device, segment)
        return segment

    def record_history(self, device, segment):
        """Trace entries that would have led to the segment's state (a plausible story, not a replay)."""
        stream = segment["stream"]
        if segment.get("is_expandable"):
            self.trace(device, "segment_map", segment["address"], segment["total_size"], stream)
        else:
            self.trace(device, "segment_alloc", segment["address"], segment["total_size"], stream,
                       segment["frames"])
        for block in segment["blocks"]:
            frames = block.get("frames", self.empty_frames)
            if block["state"] == "active_allocated":
                self.trace(device, "alloc", block["address"], block["size"], stream, frames)
            elif block["state"] == "active_pending_free":
                self.trace(device, "alloc", block["address"], block["size"], stream, frames)
                self.trace(device, "free_requested", block["address"], block["size"], stream, frames)
            elif self.rng.random() < 0.5:
                self.trace(device, "alloc", block["address"], block["size"], stream, frames)
                self.trace(device, "free_requested", block["address"], block["size"], stream, frames)
                self.trace(device, "free_completed", block["address"], block["size"], stream, frames)

    def snapshot(self):
        self.segments.sort(key=lambda s: (s["device"], s["address"]))
        return {
            "segments": self.segments,
            "device_traces": self.device_traces,
            "allocator_settings": {
                "PYTORCH_CUDA_ALLOC_CONF": "expandable_segments:True,garbage_collection_threshold:0.8",
                "max_split_size": -1,
                "garbage_collection_threshold": 0.8,
                "expandable_segments": True,
                "pinned_num_register_threads": 1,
                "release_lock_on_cudamalloc": False,
                "pinned_use_cuda_host_register": False,
                "roundup_power2_divisions": {"1": 0, "2": 0, "4": 4, "8": 8, "16": 0},
                "graph_capture_record_stream_reuse": False,
            },
            "external_annotations": [
                {"device": 0, "name": "## forward ##", "stage": "START", "time_us": START_TIME_US + 10},
                {"device": 0, "name": "## forward ##", "stage": "END", "time_us": START_TIME_US + 90_000},
                {"device": 1, "name": "étape « optimiseur »", "stage": "START", "time_us": START_TIME_US + 95_000},
            ],
        }


def default_frames_and_stacks():
    torch = f"{SITE_PACKAGES}/torch"
    linear = frame(f"{torch}/nn/modules/linear.py", 125, "forward")
    conv = frame(f"{torch}/nn/modules/conv.py", 456, "_conv_forward")
    attention = frame(f"{SITE_PACKAGES}/transformers/models/llama/modeling_llama.py", 341, "forward")
    embedding = frame(f"{torch}/nn/functional.py", 2264, "embedding")
    adamw = frame(f"{torch}/optim/adamw.py", 512, "_multi_tensor_adamw")
    backward = frame(f"{torch}/autograd/graph.py", 768, "_engine_run_backward")
    nccl = frame(f"{torch}/distributed/distributed_c10d.py", 2501, "all_reduce")
    model = frame("/srv/app/modèle.py", 88, "étape_avant")
    cjk = frame("/srv/app/注意力.py", 12, "计算注意力")
    kv_cache = frame("/srv/app/kv_cache.py", 40, "allocate_blocks")
    generated = frame("<eval_with_key>.7", 70123, "forward")  # line above 65535: a 4-byte int
    train_step = frame("/srv/app/train.py", 57, "train_step")
    module = frame("/srv/app/train.py", 210, "<module>")
    cpp_malloc = frame("/pytorch/c10/cuda/CUDACachingAllocator.cpp", 1307,
                       "c10::cuda::CUDACachingAllocator::Native::DeviceCachingAllocator::malloc("
                       "signed char, unsigned long, CUstream_st*)")
    cpp_unknown = frame("??", 0, "??")
    # nn.Module.__call__ between a layer and its caller, as in real stacks
    call = [frame(f"{torch}/nn/modules/module.py", 1762, "_call_impl"),
            frame(f"{torch}/nn/modules/module.py", 1751, "_wrapped_call_impl")]
    stacks = {
        "linear": [linear, *call, model, *call, train_step, module],
        "attention": [attention, *call, model, *call, train_step, module],
        "cjk": [cjk, attention, *call, model, *call, train_step, module],
        "model": [model, *call, train_step, module],
        "embedding": [embedding, *call, model, *call, train_step, module],
        "adamw": [adamw, train_step, module],
        "backward": [backward, train_step, module],
        "kv_cache": [kv_cache, module],
        "nccl": [nccl, train_step, module],
        "generated": [generated, model, *call, module],
        "cpp": [cpp_malloc, cpp_unknown, linear, *call, model, *call, module],
        "conv": [conv, *call, model, *call, module],
        "unknown": [cpp_unknown],
    }
    # Equal frames in distinct objects: grouping must go by the site text, not by object identity.
    stacks["linear_copy"] = [dict(f) for f in stacks["linear"]]
    return stacks


def build_default_snapshot(builder):
    """The hand-laid segments and traces; returns the stacks so that bulk generation can reuse them."""
    st = default_frames_and_stacks()
    no_stack = builder.empty_frames
    own_empty = []  # an empty frame list that is not the shared one
    rounded = ...  # requested_size: the block size less a rounding drawn from the seed

    def A(size, frames, requested_size=rounded):
        return ("A", size, frames, requested_size)

    def P(size, frames):
        return ("P", size, frames, rounded)

    def F(size):
        return ("F", size, no_stack, rounded)

    b = builder
    # Device 0: default pool, large segments, laid out upwards from the device base.
    base = DEVICE_BASE_ADDRESS[0]
    b.segment(0, base, [A(8 * MiB, st["linear"]), F(2 * MiB), A(4 * MiB, st["attention"]), F(1 * MiB),
                        P(2 * MiB, st["attention"]), F(3 * MiB)])
    b.segment(0, base + 20 * MiB, [A(6 * MiB, st["nccl"]), F(2 * MiB), A(2 * MiB, st["generated"]), F(2 * MiB),
                                   A(6 * MiB, st["kv_cache"]), F(2 * MiB)])
    b.segment(0, base + 40 * MiB, [F(1 * MiB), A(4 * MiB, st["conv"]), F(1 * MiB), A(4 * MiB, st["conv"]),
                                   F(1 * MiB), A(4 * MiB, st["conv"]), F(1 * MiB), A(4 * MiB, st["linear_copy"])])
    # Above 2**32 in size, with a block whose requested_size is missing.
    b.segment(0, base + 1 * GiB, [A(3 * GiB, st["embedding"], 3 * GiB - 100), F(512 * MiB),
                                  A(768 * MiB, st["model"], None), F(256 * MiB)])
    b.segment(0, base + 6 * GiB, [A(20 * MiB, st["adamw"]), F(10 * MiB), A(6 * MiB, st["backward"]), F(4 * MiB)])
    b.segment(0, base + 6 * GiB + 40 * MiB, [A(20 * MiB, no_stack)], stream=SIDE_STREAM)
    b.segment(0, base + 6 * GiB + 60 * MiB, [F(20 * MiB)])
    b.segment(0, base + 6 * GiB + 80 * MiB, [A(5 * MiB, st["cjk"]), F(3 * MiB), A(12 * MiB, st["cpp"]), F(3 * MiB),
                                             A(1 * MiB, st["unknown"]), F(3 * MiB)])
    # Device 0: default pool, small segments (2 MiB, 512-byte blocks).
    small = base + 7 * GiB
    b.segment(0, small, [A(512, st["linear"]), A(1 * KiB, st["attention"]), F(4 * KiB), A(1536, st["embedding"]),
                         F(512), A(2 * KiB, own_empty), F(8 * KiB), A(512, None), F(16 * KiB),
                         A(64 * KiB, st["adamw"]), F(2 * MiB - 98 * KiB)], segment_type="small")
    b.segment(0, small + 2 * MiB, [A(1 * MiB, st["attention"]), F(512 * KiB), A(512 * KiB, st["kv_cache"])],
              segment_type="small")
    b.segment(0, small + 4 * MiB, [P(4 * KiB, st["backward"]), A(2 * MiB - 4 * KiB, st["backward"])],
              segment_type="small", stream=SIDE_STREAM)
    # Device 0: expandable segments, one per contiguous mapped range of a reservation (large pages
    # of 20 MiB, small pages of 2 MiB); the gaps are unmapped.
    reservation = base + 16 * GiB
    b.segment(0, reservation, [A(30 * MiB, st["linear"]), F(10 * MiB), A(20 * MiB, st["attention"])],
              expandable=True)
    b.segment(0, reservation + 100 * MiB, [A(12 * MiB, st["generated"]), F(28 * MiB)], expandable=True)
    b.segment(0, reservation + 200 * MiB, [P(20 * MiB, st["model"])], expandable=True)
    b.trace(0, "segment_unmap", reservation + 60 * MiB, 40 * MiB)
    b.segment(0, base + 24 * GiB, [A(768 * KiB, st["embedding"]), F(4 * MiB - 768 * KiB)],
              segment_type="small", expandable=True)
    # Device 0: private pools: two made by graph captures, one MemPool / graph_pool_handle().
    b.segment(0, base + 32 * GiB, [A(128 * MiB, st["attention"]), F(1 * GiB), A(64 * MiB, st["linear"]),
                                   F(32 * MiB)], pool_id=(1, 0))
    b.segment(0, base + 34 * GiB, [A(64 * KiB, st["cjk"]), F(2 * MiB - 64 * KiB)], segment_type="small",
              pool_id=(1, 0))
    b.segment(0, base + 35 * GiB, [F(20 * MiB)], pool_id=(2, 0))
    b.segment(0, base + 36 * GiB, [A(16 * MiB, st["nccl"]), F(8 * MiB), A(8 * MiB, st["nccl"])], pool_id=(0, 1))
    b.segment(0, base + 37 * GiB, [A(10 * MiB, st["kv_cache"]), F(2 * MiB), P(6 * MiB, st["kv_cache"]),
                                   F(2 * MiB)], pool_id=(0, 1), stream=SIDE_STREAM)
    # Device 0: training steps reusing free blocks for transient tensors (most of a real trace).
    transient = [(block["address"], block["size"] // 2, st[name])
                 for block, name in zip((block for segment in b.segments for block in segment["blocks"]
                                         if block["state"] == "inactive" and block["size"] >= 1 * MiB),
                                        ("linear", "attention", "cjk", "backward", "generated"))]
    for _step in range(12):
        for address, size, frames in transient:
            b.trace(0, "alloc", address, size, frames=frames)
        for address, size, frames in transient:
            b.trace(0, "free_requested", address, size, frames=frames)
            b.trace(0, "free_completed", address, size, frames=frames)
    # Device 0: a segment given back by empty_cache(), then the end of the story.
    gone = base + 40 * GiB
    b.trace(0, "segment_alloc", gone, 20 * MiB, frames=st["linear"])
    b.trace(0, "alloc", gone, 20 * MiB, frames=st["linear"], compile_context=None)
    b.trace(0, "free_requested", gone, 20 * MiB, frames=st["linear"])
    b.trace(0, "free_completed", gone, 20 * MiB, frames=st["linear"], timed=False)
    b.trace(0, "segment_free", gone, 20 * MiB, frames=st["linear"])
    b.device_traces[0][-1]["user_metadata"] = "step=12"

    # Device 1: a plain default pool, one segment as older PyTorch wrote it, one MemPool.
    base = DEVICE_BASE_ADDRESS[1]
    b.segment(1, base, [A(10 * MiB, st["linear"]), F(1 * MiB), A(8 * MiB, st["attention"]), F(1 * MiB)])
    b.segment(1, base + 20 * MiB, [A(19 * MiB, None), F(1 * MiB)], legacy=True)
    # A small-pool free block larger than any default large-pool free block: not allocatable for
    # a large request.
    b.segment(1, base + 1 * GiB, [A(512 * KiB, st["embedding"]), F(1536 * KiB)], segment_type="small")
    b.segment(1, base + 2 * GiB, [A(2 * MiB, st["kv_cache"]), P(2 * MiB, st["kv_cache"]), F(16 * MiB)],
              pool_id=(0, 2))

    # Device 2: trace entries only (its segments were all freed before the snapshot).
    b.trace(2, "segment_alloc", 0x7D00_0000_0000, 20 * MiB, frames=st["model"])
    b.trace(2, "alloc", 0x7D00_0000_0000, 12 * MiB, frames=st["model"])
    b.trace(2, "alloc", 0x7D00_0000_0000 + 12 * MiB, 0, frames=no_stack)  # a zero-byte request
    b.trace(2, "free_requested", 0x7D00_0000_0000, 12 * MiB, frames=st["model"])
    b.trace(2, "free_completed", 0x7D00_0000_0000, 12 * MiB)
    b.trace(2, "segment_free", 0x7D00_0000_0000, 20 * MiB)
    return st


def finish_default_traces(builder, stacks):
    """The last entries of the story (OOMs and the snapshot marker), after any bulk entries."""
    b = builder
    b.oom(0, 2 * GiB + 512 * MiB, 1536 * MiB, stacks["embedding"])
    b.oom(0, 600 * MiB, 0, stacks["attention"])  # device_free 0 must stay 0, not become null
    b.trace(0, "snapshot", 0, 0)
    b.oom(1, 24 * MiB, 3 * MiB, stacks["linear"])
    b.oom(2, 40 * MiB, 6 * MiB, stacks["model"], timed=False)


def bulk_stacks(rng):
    """BULK_STACK_COUNT frame lists over BULK_FRAME_COUNT frame dicts, innermost frame first."""
    areas = ["nn/modules", "nn/functional", "optim", "autograd", "distributed", "_inductor", "cuda",
             "utils/data", "_dynamo", "amp", "fx", "_tensor"]
    verbs = ["forward", "backward", "step", "apply", "run", "compute", "gather", "scatter", "reduce",
             "project", "normalize", "encode", "décoder", "计算"]
    frames = []
    for index in range(BULK_FRAME_COUNT):
        area = areas[index % len(areas)]
        if index % 7 == 0:
            filename = f"/srv/app/pipeline/stage_{index % 97}.py"
        else:
            filename = f"{SITE_PACKAGES}/torch/{area}/mod_{index % 389}.py"
        frames.append(frame(filename, 1 + rng.randrange(3000), f"{rng.choice(verbs)}_{index}"))
    stacks = []
    for _ in range(BULK_STACK_COUNT):
        depth = rng.randint(*BULK_STACK_DEPTH)
        stacks.append([frames[rng.randrange(BULK_FRAME_COUNT)] for _ in range(depth)])
    return stacks


class BulkGenerator:
    """Generated segments for --target-mb, appended to a builder that holds the default snapshot."""

    def __init__(self, builder, stacks):
        self.builder = builder
        self.stacks = stacks
        self.next_address = {device: DEVICE_BASE_ADDRESS[device] + BULK_BASE_OFFSET for device in (0, 1)}
        self.graph_pools = [(k, 0) for k in range(1, 7)]
        self.mempools = [(0, k) for k in range(1, 4)]
        # One int object per size: the ints are shared like the strings, which keeps memory down.
        self.small_sizes = [512 * k for k in range(1, 2049)]

    def pick_stack(self):
        # Skewed: a few stacks (allocation sites) hold most blocks.
        return self.stacks[int(len(self.stacks) * self.builder.rng.random() ** 3)]

    def small_block_size(self, rng_random):
        r = rng_random()
        if r < 0.7:
            return self.small_sizes[int(rng_random() * 4)]
        if r < 0.95:
            return self.small_sizes[4 + int(rng_random() * 12)]
        return self.small_sizes[16 + int(rng_random() * 112)]

    def add_segment(self, device):
        """Adds one segment and its trace entries; returns its number of blocks."""
        b = self.builder
        rng_random = b.rng.random
        empty = b.empty_frames
        r = rng_random()
        if r < GRAPH_POOL_SHARE:
            pool_id = self.graph_pools[int(rng_random() * len(self.graph_pools))]
        elif r < GRAPH_POOL_SHARE + MEMPOOL_SHARE:
            pool_id = self.mempools[int(rng_random() * len(self.mempools))]
        else:
            pool_id = DEFAULT_POOL
        expandable = pool_id == DEFAULT_POOL and rng_random() < EXPANDABLE_SHARE
        small = rng_random() < SMALL_SEGMENT_SHARE
        single_big_block = False
        if small:
            total_size = 2 * MiB * (1 + int(rng_random() * 8) if expandable else 1)
        elif expandable:
            total_size = 20 * MiB * (1 + int(rng_random() * 6))
        elif rng_random() < 0.15:
            total_size = 2 * MiB * (6 + int(rng_random() * 123))
            single_big_block = True
        else:
            total_size = 20 * MiB
        stream = SIDE_STREAM if rng_random() < 0.1 else 0
        address = self.next_address[device]
        self.next_address[device] = address + total_size + 2 * MiB * int(rng_random() * 4)

        segment_frames = self.pick_stack()
        traces = b.device_traces[device]
        if expandable:
            b.trace(device, "segment_map", address, total_size, stream)
        else:
            b.trace(device, "segment_alloc", address, total_size, stream, segment_frames)

        blocks = []
        tick = b.tick
        block_address = address
        remaining = total_size
        allocated = active = requested = 0
        previous_free = False
        while remaining:
            if single_big_block:
                size = remaining - 2 * MiB * int(rng_random() * 3) if remaining > 6 * MiB else remaining
            elif small:
                size = min(self.small_block_size(rng_random), remaining)
            else:
                size = min(512 * (2048 + int(rng_random() * 14336)), remaining)
            r = rng_random()
            if r < ALLOCATED_SHARE or (previous_free and r >= ALLOCATED_SHARE + PENDING_FREE_SHARE):
                state = "active_allocated"
            elif r < ALLOCATED_SHARE + PENDING_FREE_SHARE:
                state = "active_pending_free"
            else:
                state = "inactive"
            if state == "inactive":
                frames = empty
                requested_size = 0
                action = "free_completed"
                previous_free = True
            else:
                frames = self.pick_stack()
                requested_size = size - int(rng_random() * 512) if size > 512 else size
                active += size
                requested += requested_size
                if state == "active_allocated":
                    allocated += size
                    action = "alloc"
                else:
                    action = "free_requested"
                previous_free = False
            blocks.append({"address": block_address, "size": size, "requested_size": requested_size,
                           "state": state, "frames": frames})
            if rng_random() < TRACE_ENTRIES_PER_BLOCK:
                traces.append({"action": action, "addr": block_address, "size": size, "stream": stream,
                               "frames": frames, "time_us": tick(), "compile_context": "", "user_metadata": ""})
            block_address += size
            remaining -= size

        b.segments.append({
            "device": device, "address": address, "total_size": total_size, "allocated_size": allocated,
            "active_size": active, "requested_size": requested, "stream": stream,
            "segment_type": "small" if small else "large", "segment_pool_id": pool_id,
            "is_expandable": expandable, "frames": segment_frames, "blocks": blocks,
        })
        return len(blocks)


def add_bulk(builder, rng, target_bytes):
    stacks = bulk_stacks(rng)
    bulk = BulkGenerator(builder, stacks)
    # The cost of the default snapshot and the shared stacks, then the average cost of a bulk block
    # (its share of trace entries and segment fields included), measured on the first batches pickled
    # after the same keys, strings and stacks are memoized. Per block rather than per segment: the
    # blocks per segment vary a lot, the bytes per block little.
    fixed_bytes = len(pickle.dumps((builder.segments, builder.device_traces, stacks), protocol=4))
    memoized_first = (builder.segments[0], stacks)
    memoized_first_bytes = len(pickle.dumps(memoized_first, protocol=4))
    measured_bytes = 0
    generated_segments = generated_blocks = 0
    planned_blocks = None
    while planned_blocks is None or generated_blocks < planned_blocks:
        if planned_blocks is None:
            first_segment = len(builder.segments)
            first_entries = [len(traces) for traces in builder.device_traces]
            for _ in range(BULK_BATCH_SEGMENTS):
                generated_blocks += bulk.add_segment(generated_segments % 2)
                generated_segments += 1
            batch = (builder.segments[first_segment:],
                     [traces[count:] for traces, count in zip(builder.device_traces, first_entries)])
            measured_bytes += len(pickle.dumps((memoized_first, batch), protocol=4)) - memoized_first_bytes
            if measured_bytes >= CALIBRATION_BYTES or fixed_bytes + measured_bytes >= target_bytes:
                planned_blocks = round((target_bytes - fixed_bytes) / (measured_bytes / generated_blocks))
        else:
            generated_blocks += bulk.add_segment(generated_segments % 2)
            generated_segments += 1


def generate(seed, target_mb=None):
    rng = random.Random(seed)
    builder = SnapshotBuilder(rng)
    stacks = build_default_snapshot(builder)
    if target_mb:
        add_bulk(builder, rng, target_mb * 1_000_000)
    finish_default_traces(builder, stacks)
    return builder.snapshot()


class RunsCommand:
    """Unpickling this runs a shell command: what a hostile snapshot would carry."""

    def __init__(self, command):
        self.command = command

    def __reduce__(self):
        return (os.system, (self.command,))


def write_bytes(path, data):
    with open(path, "wb") as file:
        file.write(data)
    print(path)


def write_hostile(outdir, seed):
    """Bad inputs for the reader. What CPython's pickle does with each (checked on 3.11):
    malicious-*: runs the command (os.system is pickled as posix.system);
    not-a-snapshot, protocol-0: load fine; protocol-9: ValueError "unsupported pickle protocol: 9";
    deep: loads fine (the unpickler keeps its stacks in lists, no recursion), giving a list nested
      DEEP_NESTING deep; only printing it or json.dumps() of it hits the recursion limit;
    huge-frame, huge-string: pickle.loads raises UnpicklingError "pickle data was truncated";
      pickle.load(open(...)) raises MemoryError (it asks the file object for the whole declared
      length at once);
    truncated-p4: UnpicklingError "pickle data was truncated"."""
    command = os.environ.get("GPU_LAYERS_HOSTILE_COMMAND", "true")
    join = lambda name: os.path.join(outdir, name)  # noqa: E731

    write_bytes(join("malicious-p2.pickle"), pickle.dumps(RunsCommand(command), protocol=2))
    write_bytes(join("malicious-p4.pickle"), pickle.dumps(RunsCommand(command), protocol=4))

    # A real-looking snapshot with the command in one block's frames, a few KB into the file.
    snapshot = generate(seed)
    segment = snapshot["segments"][len(snapshot["segments"]) // 2]
    segment["blocks"][0]["frames"] = [frame("/srv/app/train.py", 57, "train_step"), RunsCommand(command)]
    write_bytes(join("malicious-nested.pickle"), pickle.dumps(snapshot, protocol=4))

    write_bytes(join("not-a-snapshot.pickle"), pickle.dumps({"hello": [1, 2, 3]}, protocol=4))

    # [[[...]]]: DEEP_NESTING - 1 times (EMPTY_LIST, MARK), the innermost EMPTY_LIST, then one APPENDS
    # per level; no FRAME (optional in protocol 4).
    deep = b"\x80\x04" + b"](" * (DEEP_NESTING - 1) + b"]" + b"e" * (DEEP_NESTING - 1) + b"."
    write_bytes(join("deep.pickle"), deep)

    # FRAME (0x95) declaring 2**62 bytes, then EMPTY_DICT STOP.
    write_bytes(join("huge-frame.pickle"), b"\x80\x04\x95" + (2 ** 62).to_bytes(8, "little") + b"}.")
    # BINUNICODE8 (0x8d) declaring 2**40 bytes, then a few.
    write_bytes(join("huge-string.pickle"), b"\x80\x04\x8d" + (2 ** 40).to_bytes(8, "little") + b"segments")

    write_bytes(join("protocol-9.pickle"), b"\x80\x09" + pickle.dumps({"segments": []}, protocol=4)[2:])
    write_bytes(join("protocol-0.pickle"), pickle.dumps({"segments": []}, protocol=0))

    default_p4 = pickle.dumps(generate(seed), protocol=4)
    write_bytes(join("truncated-p4.pickle"), default_p4[: len(default_p4) // 2])



def write_snapshot(outdir, name, seed, protocols, target_mb):
    snapshot = generate(seed, target_mb)
    for protocol in protocols:
        path = os.path.join(outdir, f"{name}.p{protocol}.pickle")
        with open(path, "wb") as file:
            pickle.dump(snapshot, file, protocol=protocol)
        print(path)
    path = os.path.join(outdir, f"{name}.expected.json")
    with open(path, "w", encoding="utf-8") as file:
        file.write(json.dumps({"devices": figures(snapshot)["devices"]}, indent=1, sort_keys=False))
    print(path)


def main():
    parser = argparse.ArgumentParser(description="Write synthetic PyTorch CUDA allocator snapshots.")
    parser.add_argument("outdir", nargs="?", help="folder for NAME.pP.pickle and NAME.expected.json")
    parser.add_argument("--name", default="snapshot")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--protocols", default="2,4,5", help="comma-separated pickle protocols")
    parser.add_argument("--target-mb", type=float, help="grow the snapshot until its protocol-4 pickle is about M MB")
    parser.add_argument("--hostile", metavar="OUTDIR", help="write the hostile inputs into OUTDIR instead")
    args = parser.parse_args()

    if args.hostile:
        os.makedirs(args.hostile, exist_ok=True)
        write_hostile(args.hostile, args.seed)
        return 0
    if not args.outdir:
        parser.error("OUTDIR or --hostile OUTDIR is required")
    try:
        protocols = [int(p) for p in args.protocols.split(",") if p.strip()]
    except ValueError:
        parser.error(f"--protocols: not a list of integers: {args.protocols}")
    if not protocols or any(not 0 <= p <= pickle.HIGHEST_PROTOCOL for p in protocols):
        parser.error(f"--protocols: each must be 0..{pickle.HIGHEST_PROTOCOL}")
    os.makedirs(args.outdir, exist_ok=True)
    write_snapshot(args.outdir, args.name, args.seed, protocols, args.target_mb)
    return 0


if __name__ == "__main__":
    sys.exit(main())
