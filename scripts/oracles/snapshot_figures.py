"""Reference figures for a PyTorch CUDA caching-allocator snapshot (the pickle written by
torch.cuda.memory._dump_snapshot). The TypeScript analyzeSnapshot() is checked against figures(),
and `python3 scripts/oracles/snapshot_figures.py FILE` (pickle.load + figures + print) is the CPython side
of the snapshot-reading benchmark.

Usage: snapshot_figures.py FILE. Prints one line of JSON: {"protocol": P, "devices": [...]}, where P
is the pickle protocol of FILE (1 stands for protocols 0 and 1, which carry no PROTO opcode)."""
import json
import pickle
import sys

DEFAULT_POOL = (0, 0)
NO_STACK_SITE = "(no stack recorded)"
SWISS_CHEESE_LIMIT = 5
TOP_SITES_LIMIT = 10


def frame_site(frame):
    return f"{frame['filename']}:{frame['line']} {frame['name']}"


def device_figures(device, segments, traces):
    reserved_bytes = allocated_bytes = pending_free_bytes = requested_bytes = free_bytes = 0
    largest_free_block = 0
    largest_allocatable = 0
    pools = {}  # pool id -> [segment count, reserved, allocated, free]
    expandable_count = expandable_reserved = 0
    swiss_cheese = []
    sites = {}  # site -> [bytes, blocks]

    for segment in segments:
        pool_id = tuple(segment.get("segment_pool_id", DEFAULT_POOL))
        total_size = segment["total_size"]
        serves_default_large = pool_id == DEFAULT_POOL and segment.get("segment_type", "large") == "large"
        segment_allocated = segment_free = segment_free_pieces = segment_largest_free = 0

        for block in segment["blocks"]:
            state = block["state"]
            size = block["size"]
            if state == "active_allocated":
                segment_allocated += size
                requested_bytes += block.get("requested_size", size)
                frames = block.get("frames")
                site = frame_site(frames[0]) if frames else NO_STACK_SITE
                totals = sites.get(site)
                if totals is None:
                    sites[site] = [size, 1]
                else:
                    totals[0] += size
                    totals[1] += 1
            elif state == "active_pending_free":
                pending_free_bytes += size
            elif state == "inactive":
                segment_free += size
                segment_free_pieces += 1
                if size > segment_largest_free:
                    segment_largest_free = size

        reserved_bytes += total_size
        allocated_bytes += segment_allocated
        free_bytes += segment_free
        if segment_largest_free > largest_free_block:
            largest_free_block = segment_largest_free
        if serves_default_large and segment_largest_free > largest_allocatable:
            largest_allocatable = segment_largest_free
        if pool_id != DEFAULT_POOL:
            pool = pools.setdefault(pool_id, [0, 0, 0, 0])
            pool[0] += 1
            pool[1] += total_size
            pool[2] += segment_allocated
            pool[3] += segment_free
        if segment.get("is_expandable", False):
            expandable_count += 1
            expandable_reserved += total_size
        if segment_free_pieces >= 2:
            swiss_cheese.append({
                "address": segment["address"],
                "poolId": list(pool_id),
                "totalBytes": total_size,
                "freeBytes": segment_free,
                "freePieces": segment_free_pieces,
                "largestFreeBlockBytes": segment_largest_free,
            })

    swiss_cheese.sort(key=lambda s: (-s["freePieces"], -s["freeBytes"], s["address"]))
    alloc_sizes = [entry["size"] for entry in traces if entry["action"] == "alloc"]
    top_sites = sorted(sites.items(), key=lambda item: (-item[1][0], item[0]))[:TOP_SITES_LIMIT]

    return {
        "device": device,
        "segmentCount": len(segments),
        "reservedBytes": reserved_bytes,
        "allocatedBytes": allocated_bytes,
        "activeBytes": allocated_bytes + pending_free_bytes,
        "requestedBytes": requested_bytes,
        "freeBytes": free_bytes,
        "largestFreeBlockBytes": largest_free_block,
        "fragmentationRatio": None if free_bytes == 0 else 1 - largest_free_block / free_bytes,
        "largestAllocatableBytes": largest_allocatable,
        "privatePools": [
            {
                "poolId": list(pool_id),
                "kind": "cuda-graph" if pool_id[0] != 0 else "mempool",
                "segmentCount": count,
                "reservedBytes": reserved,
                "allocatedBytes": allocated,
                "freeBytes": free,
            }
            for pool_id, (count, reserved, allocated, free) in sorted(pools.items())
        ],
        "expandableSegments": {"segmentCount": expandable_count, "reservedBytes": expandable_reserved},
        "swissCheese": swiss_cheese[:SWISS_CHEESE_LIMIT],
        "recentRequests": {
            "count": len(alloc_sizes),
            "largestBytes": max(alloc_sizes, default=0),
            "overLargestAllocatable": sum(1 for size in alloc_sizes if size > largest_allocatable),
        },
        "ooms": [
            {"sizeBytes": entry["size"], "deviceFreeBytes": entry.get("device_free"), "timeUs": entry.get("time_us")}
            for entry in traces
            if entry["action"] == "oom"
        ],
        "topAllocationSites": [{"site": site, "bytes": size, "blocks": count} for site, (size, count) in top_sites],
    }


def figures(snapshot):
    """The figures of a loaded snapshot: a dict from _dump_snapshot, or a bare list of segments."""
    if isinstance(snapshot, list):
        segments, device_traces = snapshot, []
    else:
        segments = snapshot.get("segments") or []
        device_traces = snapshot.get("device_traces") or []

    segments_by_device = {}
    for segment in segments:
        segments_by_device.setdefault(segment["device"], []).append(segment)
    devices = set(segments_by_device)
    devices.update(index for index, traces in enumerate(device_traces) if traces)

    return {
        "devices": [
            device_figures(
                device,
                segments_by_device.get(device, []),
                device_traces[device] if device < len(device_traces) else [],
            )
            for device in sorted(devices)
        ]
    }


def main(argv):
    if len(argv) != 2:
        print("usage: snapshot_figures.py FILE", file=sys.stderr)
        return 2
    with open(argv[1], "rb") as file:
        header = file.read(2)
        file.seek(0)
        snapshot = pickle.load(file)
    protocol = header[1] if header[:1] == b"\x80" else 1
    print(json.dumps({"protocol": protocol, "devices": figures(snapshot)["devices"]}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
