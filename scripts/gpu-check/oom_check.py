"""The CUDA out-of-memory half of the real-GPU check (issue 17): the workload's last phase asks for
more than the device has free, PyTorch's out-of-memory observer makes the companion write its file
(and, with GPU_LAYERS_OOM_SNAPSHOT=1, a memory snapshot) at that moment, and `gpu-layers record
--flight-dir`, running across the phase, writes the flight recording and its diagnosis. Used by
gpu_check_workload.py (the failed allocation, inside the workload) and gpu_check.py (the checks).

What the caching allocator tells the observer (c10/cuda/CUDACachingAllocator.cpp, malloc(), where
it gives up): the device, alloc_size = get_allocation_size(round_size(request)), the device's
total (cudaMemGetInfo's, or the set_per_process_memory_fraction() cap) and cudaMemGetInfo's free.
round_size rounds up to 512 B (kMinBlockSize) and get_allocation_size a request above 10 MiB
(kMinLargeAlloc) up to 2 MiB (kRoundLarge): frameworks.md 1.3. Before it gives up it releases its
cached free blocks and tries again; the workload calls empty_cache() first, so the free figure it
reads before the allocation is what the allocator sees. The error's message repeats the figures
through format_size() (two decimals of bytes/KiB/MiB/GiB).
"""
import datetime
import json
import os
import re
import time

MiB = 1024 ** 2
GiB = 1024 ** 3
PHASE = "oom"
# What the workload asks for beyond the device's free memory.
BEYOND_FREE = GiB
# Files the check brings back under OUT.
COMPANION_FILE = "companion-oom.json"
RECORDING = "oom.jsonl"
FLIGHTS = "flights"
SNAPSHOT = "snapshot-oom.pickle.gz"
# The companion's snapshot is brought back gzipped only below this (a snapshot without stacks is
# about 100 bytes a block: this workload's is tens of KiB).
SNAPSHOT_MAX_BYTES = 16 * MiB
# cudaMemGetInfo's free against NVML's (memory info v2) read a moment after the OOM, nothing
# allocated in between: on the H200 they were 5.6 MiB apart at every phase (NVML's free is total -
# reserved - used, and its "used" counts 3.4 MiB more than the processes' rows); 64 MiB allows for
# that and the driver's own bookkeeping, while a wrong figure (the total, the used, another device,
# bytes read as MiB) is GiBs off.
FREE_TOLERANCE = 64 * MiB
# The companion writes its file on the allocating thread before torch raises (or, where a write in
# progress holds it back more than 0.5 s, leaves it to the writer thread's next round); the
# workload copies the first file with the OOM from its except clause. Never earlier than the OOM.
WRITTEN_WITHIN_SECONDS = 1.0
UNITS = {"bytes": 1, "KiB": 1024, "MiB": MiB, "GiB": GiB}


def allocation_size(request):
    """The bytes the caching allocator asks cudaMalloc for, and passes its OOM observers, for a
    request of `request` bytes (frameworks.md 1.3; roundup_power2_divisions and expandable
    segments off, as by default)."""
    size = max(512, -(-request // 512) * 512)  # round_size: kMinBlockSize
    if size <= MiB:  # kSmallSize: a kSmallBuffer segment
        return 2 * MiB
    if size < 10 * MiB:  # kMinLargeAlloc: a kLargeBuffer segment
        return 20 * MiB
    return -(-size // (2 * MiB)) * (2 * MiB)  # kRoundLarge


# ---- inside the workload ------------------------------------------------------------------------

def companion_file_with_oom(timeout=3.0):
    """This process's companion file once it carries an OOM, as bytes: the observer's own write
    before torch raised, or (where a write in progress on the writer thread held it back more
    than the observer waits) the writer thread's next one. None if none came in `timeout` s."""
    stats = os.environ.get("GPU_LAYERS_STATS_DIR")
    if not stats:
        return None
    path, end = os.path.join(stats, "%d.json" % os.getpid()), time.time() + timeout
    while True:
        try:
            with open(path, "rb") as f:
                text = f.read()
            if (json.loads(text).get("oom") or {}).get("count"):
                return text
        except (OSError, ValueError):
            pass
        if time.time() > end:
            return None
        time.sleep(0.01)


def provoke(allocate, error_class, request, out):
    """Calls allocate() (which asks for `request` bytes) expecting error_class; on it, copies the
    companion's file of that moment to OUT/companion-oom.json. Returns what the workload saw, for
    its phase figures."""
    seen = {"requestBytes": request, "startedAt": time.time(), "raised": False, "raisedAt": None, "error": None, "message": None, "companionCopied": False}
    try:
        tensor = allocate()
    except error_class as error:
        seen.update(raised=True, raisedAt=time.time(), error=type(error).__name__, message=str(error)[:2000])
        text = companion_file_with_oom()
        if text is not None:
            with open(os.path.join(out, COMPANION_FILE), "wb") as f:
                f.write(text)
            seen["companionCopied"] = True
    except Exception as error:  # not the OOM the check wants: say what it was
        seen.update(raisedAt=time.time(), error=type(error).__name__, message=str(error)[:2000])
    else:
        del tensor
    return seen


# ---- in the checker -----------------------------------------------------------------------------

def message_figures(message):
    """The byte figures the OOM message gives (format_size(): 2 decimals), with the rounding each
    allows: {"tried": (bytes, tolerance), "total": ..., "free": ..., "process": ...} ("process":
    NVML's row for this process, which torch adds where it can read NVML; torch 2.1 printed
    "total capacty")."""
    def size(text):
        number, unit = text.split()
        value = float(number) * UNITS[unit]
        return int(round(value)), (0 if unit == "bytes" else int(0.0051 * UNITS[unit]) + 1)
    figure = r"([\d.]+ (?:bytes|KiB|MiB|GiB))"
    found = {}
    for key, pattern in (("tried", r"Tried to allocate " + figure), ("total", r"total capaci?ty of " + figure),
                         ("free", r"of which " + figure + r" is free"), ("process", r"this process has " + figure + r" memory in use")):
        match = re.search(pattern, message or "")
        if match:
            found[key] = size(match.group(1))
    return found


def _check(name, ok, expected, seen, note=""):
    return {"check": name, "ok": bool(ok), "expected": expected, "seen": seen, "note": note}


def companion_checks(phase, companion, nvml_free, nvml_used):
    """The companion's file at the OOM against what the workload asked for and saw, NVML's free
    bytes a moment later, and the error's message. `phase` is the workload's figures of the oom
    phase; `nvml_free` pynvml's free bytes of the device; `nvml_used` pynvml's row of the workload."""
    w = phase.get("oom") or {}
    checks = [_check("oom: the allocation of free + 1 GiB raised torch.cuda.OutOfMemoryError", w.get("raised") and w.get("error") == "OutOfMemoryError",
                     "OutOfMemoryError", w.get("error"), "asked for %s bytes, torch.cuda.mem_get_info() free %s" % (w.get("requestBytes"), phase.get("mem_get_info_free")))]
    oom = (companion or {}).get("oom")
    if oom is None:
        checks.append(_check("oom: the companion's file at the OOM has an oom record", False, "an oom object",
                             None if companion is None else companion.get("oom"), "no %s" % COMPANION_FILE if companion is None else ""))
        return checks
    request = w.get("requestBytes") or 0
    checks += [
        _check("oom: companion oom.count = 1", oom.get("count") == 1, 1, oom.get("count")),
        _check("oom: companion oom.at within the failed allocation", w.get("startedAt") is not None and w.get("raisedAt") is not None
               and w["startedAt"] <= oom.get("at", 0) <= w["raisedAt"], [w.get("startedAt"), w.get("raisedAt")], oom.get("at")),
        _check("oom: the companion's file was written at the OOM", 0 <= companion.get("writtenAt", -1) - oom.get("at", 0) <= WRITTEN_WITHIN_SECONDS,
               "writtenAt - at in 0..%g s" % WRITTEN_WITHIN_SECONDS, companion.get("writtenAt", 0) - oom.get("at", 0),
               "the observer writes the file on the allocating thread before torch raises"),
        _check("oom: companion oom.requestedBytes = the request rounded as the allocator rounds", oom.get("requestedBytes") == allocation_size(request),
               allocation_size(request), oom.get("requestedBytes"), "asked for %d bytes (512 B, then 2 MiB above 10 MiB: frameworks.md 1.3)" % request),
        _check("oom: companion oom.device = 0", oom.get("device") == 0, 0, oom.get("device")),
        _check("oom: companion oom.deviceTotalBytes = torch.cuda.mem_get_info() total", oom.get("deviceTotalBytes") == phase.get("mem_get_info_total"),
               phase.get("mem_get_info_total"), oom.get("deviceTotalBytes")),
        _check("oom: companion oom.deviceFreeBytes = NVML free at the OOM (%d MiB)" % (FREE_TOLERANCE // MiB),
               nvml_free is not None and abs(oom.get("deviceFreeBytes", -1) - nvml_free) <= FREE_TOLERANCE, nvml_free, oom.get("deviceFreeBytes"),
               "pynvml read %s bytes apart; torch.cuda.mem_get_info() free before the allocation: %s" % (
                   None if nvml_free is None else oom.get("deviceFreeBytes", 0) - nvml_free, phase.get("oom_free_before"))),
    ]
    figures = message_figures(w.get("message"))
    pairs = [("tried", oom.get("requestedBytes")), ("total", oom.get("deviceTotalBytes")), ("free", oom.get("deviceFreeBytes"))]
    checks.append(_check("oom: the error message's figures = the companion's (Tried to allocate, total capacity, free)",
                         all(k in figures and abs(figures[k][0] - v) <= figures[k][1] for k, v in pairs),
                         {k: v for k, v in pairs}, {k: figures.get(k, (None,))[0] for k, _ in pairs}, "to format_size()'s two decimals"))
    if "process" in figures:  # real torch: "Including non-PyTorch memory, this process has X memory in use" (NVML's row)
        checks.append(_check("oom: the error message's 'this process has' = pynvml's row for the workload", nvml_used is not None and abs(figures["process"][0] - nvml_used) <= figures["process"][1],
                             nvml_used, figures["process"][0], "to format_size()'s two decimals"))
    return checks


def snapshot_checks(companion, snapshot_file, snapshot_run):
    """The companion's OOM snapshot (GPU_LAYERS_OOM_SNAPSHOT=1): written, read by `gpu-layers
    snapshot --json`, and holding what the allocator had reserved at that moment: the companion's
    file is written right after it on the same thread, nothing allocated in between."""
    oom = (companion or {}).get("oom") or {}
    checks = [_check("oom: the companion wrote a memory snapshot (GPU_LAYERS_OOM_SNAPSHOT=1)", snapshot_file is not None and os.path.exists(snapshot_file),
                     "<pid>.oom-1.pickle", oom.get("snapshot"), oom.get("snapshotError") or "")]
    if snapshot_file is None or snapshot_run is None:
        return checks
    code, stdout, stderr = snapshot_run
    checks.append(_check("oom: gpu-layers snapshot --json reads the OOM snapshot (exit 0)", code == 0, 0, code, stderr.strip()[-300:]))
    try:
        report = json.loads(stdout)
    except ValueError:
        return checks
    reserved = sum(d.get("reservedBytes") or 0 for d in report.get("devices", []))
    stats = ((companion.get("devices") or [{}])[0].get("stats") or {})
    checks.append(_check("oom: the snapshot's reserved = the companion's reserved at the OOM", reserved == stats.get("reserved_bytes.all.current"),
                         stats.get("reserved_bytes.all.current"), reserved, "%d segment(s)" % sum(d.get("segmentCount") or 0 for d in report.get("devices", []))))
    return checks


def probe_checks(probed, companion):
    """The probe's allocator layer after the OOM: torch's count and the companion's record."""
    allocator = (probed or {}).get("layers", {}).get("allocator") or {}
    last, oom = allocator.get("lastOom"), (companion or {}).get("oom") or {}
    same = last is not None and all(last.get(k) == oom.get(k) for k in ("count", "device", "requestedBytes", "deviceFreeBytes"))
    return [_check("oom: probe allocator numOoms = 1 (torch's num_ooms)", allocator.get("numOoms") == 1, 1, allocator.get("numOoms")),
            _check("oom: probe allocator lastOom = the companion's oom", same, {k: oom.get(k) for k in ("count", "device", "requestedBytes", "deviceFreeBytes")},
                   None if last is None else {k: last.get(k) for k in ("count", "device", "requestedBytes", "deviceFreeBytes")})]


def flight_files(folder, pid):
    """The cuda-oom flights of `pid` in `folder`: [(recording, diagnosis)], oldest first."""
    try:
        names = sorted(os.listdir(folder))
    except OSError:
        return []
    found = []
    for name in names:
        match = re.match(r"^(flight-\d{8}T\d{6}Z-gpu\d+-pid%d-cuda-oom(?:-\d+)?)\.diagnosis\.json$" % pid, name)
        if match and match.group(1) + ".jsonl" in names:
            found.append((os.path.join(folder, match.group(1) + ".jsonl"), os.path.join(folder, name)))
    return found


def _epoch(iso):
    try:
        return datetime.datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()
    except (AttributeError, ValueError):
        return None


def flight_checks(pid, flights, diagnosis, diagnose_run, gpu_pids, recorder_error, phases=()):
    """The flight `gpu-layers record --flight-dir` wrote: there, readable by `gpu-layers
    diagnose`, naming the event, the workload and every process on that GPU (pynvml's list, read
    a moment after the OOM). `phases`: (name, the workload's time) of the phases before, to say
    which the flight's window covers."""
    checks = [_check("flight: a cuda-oom recording of the workload in --flight-dir", len(flights) == 1, 1, len(flights),
                     recorder_error or ", ".join(os.path.basename(r) for r, _ in flights))]
    if not flights:
        return checks
    code, stdout, stderr = diagnose_run
    verdict = " ".join(line for line in stdout.splitlines()[1:] if line.strip())  # after the line naming the file
    checks.append(_check("flight: gpu-layers diagnose reads the recording (exit 0 or 1)", code in (0, 1), "0 or 1", code,
                         (verdict if code in (0, 1) else stderr.strip())[:300]))
    event = (diagnosis or {}).get("event") or {}
    window = (diagnosis or {}).get("window") or {}
    checks += [
        _check("flight: diagnosis event kind cuda-oom, the workload's pid", event.get("kind") == "cuda-oom" and event.get("pid") == pid,
               ["cuda-oom", pid], [event.get("kind"), event.get("pid")], event.get("detail") or ""),
        _check("flight: the recording holds samples from before the OOM", (window.get("samples") or 0) >= 2, ">= 2", window.get("samples"),
               "%s .. %s, from phase %s on" % (window.get("from"), window.get("to"),
                                              next((name for name, at in phases if _epoch(window.get("from")) is not None and at >= _epoch(window.get("from"))), "oom"))),
        _check("flight: diagnosis lists every process on that GPU (pynvml)", gpu_pids is not None and sorted(p.get("pid") for p in event.get("processesOnGpu") or []) == gpu_pids,
               gpu_pids, sorted(p.get("pid") for p in event.get("processesOnGpu") or [])),
    ]
    return checks
