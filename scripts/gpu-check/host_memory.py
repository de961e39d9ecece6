"""The host half of the real-GPU check (issue 16): glibc's own malloc_stats() against the
companion's mallinfo2() figures, and the workload's cgroup read here against what
`gpu-layers probe --json` reports in host.container. Used by gpu_check_workload.py (the
malloc_stats() reading, inside the workload) and gpu_check.py (the comparisons).

malloc_stats() prints, per arena, "system bytes" and "in use bytes", then "Total (incl. mmap):".
glibc computes both from the same per-arena walk mallinfo2() does (int_mallinfo: system bytes =
the arena's system_mem, in use = system_mem - free chunks) and adds the mmapped chunks
(mp_.mmapped_mem, mallinfo2's hblkhd) to both totals. So at one moment, exactly:
  total in use  = uordblks + hblkhd   (the companion's malloc.inUseBytes)
  total system  = arena + hblkhd      (the companion's arenaBytes + mmappedBytes)
The totals are printed as `unsigned int`: past 4 GiB they wrap, so they are compared modulo 2^32.

The cgroup is read here independently of gpu-layers: the membership from /proc/PID/cgroup, the
hierarchy's mount (point and root) from /proc/self/mountinfo, then v2 memory.current, memory.max,
memory.stat, memory.events, or v1 memory.usage_in_bytes, memory.limit_in_bytes, memory.stat,
memory.oom_control.
"""
import ctypes
import json
import os
import re
import sys
import tempfile
import time

MiB = 1024 ** 2
# The phase at which the workload reads malloc_stats() and the checker compares the host figures:
# after the churn and the snapshot dump (torch's host allocations of the run are made by then).
PHASE = "churn"
FILE = "malloc-stats.json"
UINT = 2 ** 32
MALLINFO2_FIELDS = ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost")
# malloc_stats() then mallinfo2(), back to back in one thread with the GIL held (ctypes.PyDLL does
# not release it), so no Python thread (the companion's writer) runs in between: both sum the same
# arenas, so they are equal unless a thread outside Python (CUDA's, torch's) allocated in between.
# 64 KiB allows a few such small allocations; a reading past it is taken again, up to 5 times.
SAME_MOMENT_TOLERANCE = 64 * 1024
SAME_MOMENT_ATTEMPTS = 5
# The companion's file is written after that reading, 0.01 to 0.3 s later (interval 0.2 s). The
# workload rests meanwhile (its main thread polls for a file), so what moves is the companion's own
# write: torch.cuda.memory_snapshot() (segments and blocks, a few hundred on the GPU run, freed
# before mallinfo2() but what the arenas keep), memory_stats(), the JSON text of the previous
# write, a few KiB to hundreds of KiB; plus bookkeeping of torch's and CUDA's threads. 1 MiB, or
# 1% of the in-use total on a larger heap, covers that; what a wrong definition would miss (the
# mmapped chunks, the threads' arenas) is reported beside the check to show it is larger.
def companion_tolerance(in_use):
    return max(MiB, in_use // 100)


# Between the probe's read of the cgroup and ours (one before the probe, one after): the probe
# process itself is in the workload's cgroup while it reads (its resident memory, measured by
# wait4's ru_maxrss, is added above the range), and the rest of the cgroup rests; 16 MiB covers
# v1's per-CPU charge batching (32 pages a CPU), the checker's and companion's file writes and
# the page cache moving between the LRU lists.
CGROUP_SLACK = 16 * MiB


# ---- inside the workload ------------------------------------------------------------------------

def parse_malloc_stats(text):
    """{"arenas": [{"systemBytes", "inUseBytes"}...], "total": {...} or None, "maxMmapRegions",
    "maxMmapBytes"}; lines of another shape (another thread's stderr) are skipped."""
    arenas, total, extra, current = [], None, {}, None
    for line in text.splitlines():
        line = line.strip()
        match = re.match(r"^Arena (\d+):$", line)
        if match:
            current = {"systemBytes": None, "inUseBytes": None}
            arenas.append(current)
            continue
        if line == "Total (incl. mmap):":
            current = total = {"systemBytes": None, "inUseBytes": None}
            continue
        match = re.match(r"^(system bytes|in use bytes|max mmap regions|max mmap bytes)\s*=\s*(\d+)$", line)
        if match is None:
            continue
        key, value = match.group(1), int(match.group(2))
        if key == "max mmap regions":
            extra["maxMmapRegions"] = value
        elif key == "max mmap bytes":
            extra["maxMmapBytes"] = value
        elif current is not None:
            current["systemBytes" if key == "system bytes" else "inUseBytes"] = value
    return dict({"arenas": arenas, "total": total, "maxMmapRegions": None, "maxMmapBytes": None}, **extra)


def wrapped_difference(printed, full):
    """printed - full, where printed is an unsigned int (full modulo 2^32): in [-2^31, 2^31)."""
    difference = (printed - full) % UINT
    return difference - UINT if difference >= UINT // 2 else difference


def same_moment(parsed, mallinfo):
    """malloc_stats()'s totals against the mallinfo2() read right after."""
    total = parsed["total"] or {}
    if total.get("inUseBytes") is None or total.get("systemBytes") is None:
        return None
    in_use = mallinfo["uordblks"] + mallinfo["hblkhd"]
    system = mallinfo["arena"] + mallinfo["hblkhd"]
    # The mmapped part of malloc_stats()'s totals: the total minus the arenas, in either figure.
    mmapped_in_use = (total["inUseBytes"] - sum(a["inUseBytes"] or 0 for a in parsed["arenas"])) % UINT
    mmapped_system = (total["systemBytes"] - sum(a["systemBytes"] or 0 for a in parsed["arenas"])) % UINT
    return {"inUseDifference": wrapped_difference(total["inUseBytes"], in_use),
            "systemDifference": wrapped_difference(total["systemBytes"], system),
            "mmappedFromTotals": {"inUse": mmapped_in_use, "system": mmapped_system},
            "wrapped": in_use >= UINT or system >= UINT}


def read_malloc_stats():
    """glibc's malloc_stats() (its stderr captured) and mallinfo2() at the same moment."""
    started = time.perf_counter()
    libc = ctypes.PyDLL(None)  # PyDLL: the GIL stays held during the calls
    missing = [name for name in ("malloc_stats", "mallinfo2") if not hasattr(libc, name)]
    if missing:
        return {"at": time.time(), "unknownBecause": "this C library has no %s (glibc 2.33 or newer has both)" % " or ".join(missing)}

    class Mallinfo2(ctypes.Structure):
        _fields_ = [(name, ctypes.c_size_t) for name in MALLINFO2_FIELDS]
    libc.mallinfo2.argtypes, libc.mallinfo2.restype = (), Mallinfo2
    libc.malloc_stats.argtypes, libc.malloc_stats.restype = (), None
    attempts = []
    for _ in range(SAME_MOMENT_ATTEMPTS):
        with tempfile.TemporaryFile() as capture:
            sys.stderr.flush()
            saved = os.dup(2)
            try:
                os.dup2(capture.fileno(), 2)  # stderr is unbuffered in C: each line goes straight to fd 2
                at = time.time()
                libc.malloc_stats()
                info = libc.mallinfo2()
            finally:
                os.dup2(saved, 2)
                os.close(saved)
            capture.seek(0)
            text = capture.read().decode("ascii", "replace")
        parsed = parse_malloc_stats(text)
        mallinfo = {name: getattr(info, name) for name in MALLINFO2_FIELDS}
        attempts.append({"at": at, "text": text, "mallocStats": parsed, "mallinfo2": mallinfo, "sameMoment": same_moment(parsed, mallinfo)})
        agreed = attempts[-1]["sameMoment"]
        if agreed is None or (abs(agreed["inUseDifference"]) <= SAME_MOMENT_TOLERANCE and abs(agreed["systemDifference"]) <= SAME_MOMENT_TOLERANCE):
            break
    reading = dict(attempts[-1], attempts=len(attempts), seconds=time.perf_counter() - started, pid=os.getpid())
    if len(attempts) > 1:
        reading["earlierDifferences"] = [a["sameMoment"] for a in attempts[:-1]]
    return reading


def write_malloc_stats(out):
    """Reads malloc_stats() and mallinfo2() now and writes them to OUT/malloc-stats.json (a file the
    check brings back); the checker pairs it with the companion's next file."""
    reading = read_malloc_stats()
    tmp = os.path.join(out, "." + FILE + ".tmp")
    with open(tmp, "w") as f:
        json.dump(reading, f, indent=1)
    os.rename(tmp, os.path.join(out, FILE))
    return reading


# ---- in the checker -----------------------------------------------------------------------------

def _check(name, ok, expected, seen, note=""):
    return {"check": name, "ok": bool(ok), "expected": expected, "seen": seen, "note": note}


def malloc_checks(reading, companion):
    """The checks of malloc_stats() against mallinfo2() (same moment) and the companion's file."""
    checks = []
    if reading is None or "unknownBecause" in reading:
        why = "no %s from the workload" % FILE if reading is None else reading["unknownBecause"]
        return [_check("malloc_stats: read in the workload", False, "a reading", None, why)], {}
    parsed, mallinfo, same = reading["mallocStats"], reading["mallinfo2"], reading["sameMoment"]
    total = parsed["total"] or {}
    checks.append(_check("malloc_stats: a positive in-use total parsed, within the system total, %d arena(s)" % len(parsed["arenas"]),
                         (total.get("inUseBytes") or 0) > 0 and len(parsed["arenas"]) >= 1
                         and ((same or {}).get("wrapped") or (total.get("systemBytes") or 0) >= total["inUseBytes"]),
                         "0 < in use <= system", total, "%d attempt(s), %.1f ms" % (reading["attempts"], reading["seconds"] * 1000)))
    if same is None:
        return checks + [_check("malloc_stats: totals found", False, "Total (incl. mmap):", reading["text"][-300:])], {}
    wrapped = " (past 4 GiB: compared modulo 2^32)" if same["wrapped"] else ""
    checks.append(_check("malloc_stats total in use = mallinfo2 uordblks + hblkhd, same moment (%d KiB)" % (SAME_MOMENT_TOLERANCE // 1024),
                         abs(same["inUseDifference"]) <= SAME_MOMENT_TOLERANCE, mallinfo["uordblks"] + mallinfo["hblkhd"], total["inUseBytes"],
                         "difference %d bytes%s" % (same["inUseDifference"], wrapped)))
    checks.append(_check("malloc_stats total system = mallinfo2 arena + hblkhd, same moment (%d KiB)" % (SAME_MOMENT_TOLERANCE // 1024),
                         abs(same["systemDifference"]) <= SAME_MOMENT_TOLERANCE, mallinfo["arena"] + mallinfo["hblkhd"], total["systemBytes"],
                         "difference %d bytes%s" % (same["systemDifference"], wrapped)))
    mmapped = same["mmappedFromTotals"]
    checks.append(_check("malloc_stats: total - arenas = mallinfo2 hblkhd (the mmapped chunks), in use and system",
                         mmapped["inUse"] == mmapped["system"] and abs(wrapped_difference(mmapped["inUse"], mallinfo["hblkhd"])) <= SAME_MOMENT_TOLERANCE,
                         mallinfo["hblkhd"], mmapped, "%d mmapped chunk(s)" % mallinfo["hblks"]))

    host = (companion or {}).get("host") or {}
    malloc = host.get("malloc")
    if malloc is None:
        why = "no companion file after the reading" if companion is None else (host.get("mallocUnknownBecause") or "the companion's host part has no malloc")
        return checks + [_check("companion malloc vs malloc_stats", False, "the companion's malloc figures", None, why)], {}
    gap = companion["writtenAt"] - reading["at"]
    tolerance = companion_tolerance(total["inUseBytes"])
    in_use = wrapped_difference(total["inUseBytes"], malloc["inUseBytes"])
    system = wrapped_difference(total["systemBytes"], malloc["arenaBytes"] + malloc["mmappedBytes"])
    thread_arenas = sum(a["systemBytes"] or 0 for a in parsed["arenas"][1:])
    scale = "a wrong definition would miss: mmapped %d bytes, thread arenas %d bytes (system)" % (mallinfo["hblkhd"], thread_arenas)
    checks.append(_check("companion malloc.inUseBytes = malloc_stats total in use (%.0f KiB, read %.2f s apart)" % (tolerance / 1024, gap),
                         abs(in_use) <= tolerance, total["inUseBytes"], malloc["inUseBytes"], "difference %d bytes; %s" % (in_use, scale)))
    checks.append(_check("companion arenaBytes + mmappedBytes = malloc_stats total system (%.0f KiB, read %.2f s apart)" % (tolerance / 1024, gap),
                         abs(system) <= tolerance, total["systemBytes"], malloc["arenaBytes"] + malloc["mmappedBytes"], "difference %d bytes" % system))
    if malloc.get("arenaCount") is not None:
        # Arenas are never freed: a thread made in between can only add one.
        checks.append(_check("companion arenaCount (malloc_info) >= malloc_stats's arenas", malloc["arenaCount"] >= len(parsed["arenas"]),
                             len(parsed["arenas"]), malloc["arenaCount"]))
    summary = {"readApartSeconds": gap, "toleranceBytes": tolerance, "inUseDifference": in_use, "systemDifference": system,
               "companion": {"writtenAt": companion["writtenAt"], "malloc": malloc, "python": host.get("python")}}
    return checks, summary


def _unescape(field):
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), field)


def cgroup_membership(pid, proc="/proc"):
    """(version, path) of the process's memory cgroup: a v1 hierarchy with the memory controller
    if one is listed (on a hybrid host the controller can only be there), else v2's 0::/path."""
    with open("%s/%d/cgroup" % (proc, pid)) as f:
        lines = f.read().splitlines()
    unified = None
    for line in lines:
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        if "memory" in parts[1].split(","):
            return 1, parts[2]
        if parts[0] == "0" and parts[1] == "":
            unified = (2, parts[2])
    return unified


def cgroup_folder(version, path, mountinfo="/proc/self/mountinfo"):
    """The cgroup's folder from /proc/self/mountinfo: the hierarchy's mount whose root holds the
    path (a container's mount of its own cgroup has that cgroup as its root)."""
    candidates = []
    with open(mountinfo) as f:
        for line in f:
            left, _, right = line.partition(" - ")
            fields, rest = left.split(" "), right.split(" ")
            if len(fields) < 5 or len(rest) < 3:
                continue
            fstype, options = rest[0], rest[2].strip().split(",")
            if (version == 2 and fstype == "cgroup2") or (version == 1 and fstype == "cgroup" and "memory" in options):
                candidates.append((_unescape(fields[3]), _unescape(fields[4])))
    folders = []
    for root, point in sorted(candidates, key=lambda c: -len(c[0])):  # the closest root first
        root = root.rstrip("/")
        if root == "" or path == root or path.startswith(root + "/"):
            folders.append(point.rstrip("/") + path[len(root):].rstrip("/"))
    return next((folder for folder in folders if os.path.isdir(folder)), folders[0] if folders else None)


def _value(text):
    text = text.strip()
    if text == "max":
        return None
    value = int(text)
    return None if value >= 2 ** 62 else value  # v1's "no limit": PAGE_COUNTER_MAX pages


def _flat(text):
    values = {}
    for line in text.splitlines():
        key, _, value = line.partition(" ")
        if value.strip().isdigit():
            values.setdefault(key, int(value))
    return values


def read_cgroup(pid, proc="/proc", mountinfo="/proc/self/mountinfo"):
    """The workload's cgroup memory figures, read here; {"error": ...} when it cannot be read.
    `proc` and `mountinfo` are other roots for the tests (v2 fixtures on a v1 machine)."""
    try:
        membership = cgroup_membership(pid, proc)
        if membership is None:
            return {"error": "/proc/%d/cgroup names no memory cgroup" % pid}
        version, path = membership
        if ".." in path.split("/"):  # the kernel's way of naming a cgroup outside this namespace
            return {"version": version, "path": path, "error": "the cgroup %s is outside this cgroup namespace" % path}
        folder = cgroup_folder(version, path, mountinfo)
        if folder is None or not os.path.isdir(folder):
            return {"version": version, "path": path, "error": "no mounted folder for %s (%s)" % (path, folder)}
        names = {2: ("memory.current", "memory.max", "memory.stat", "memory.events"),
                 1: ("memory.usage_in_bytes", "memory.limit_in_bytes", "memory.stat", "memory.oom_control")}[version]
        texts = {}
        for name in names:
            with open(os.path.join(folder, name)) as f:
                texts[name] = f.read()
        usage, limit = _value(texts[names[0]]), _value(texts[names[1]])
        stat, events = _flat(texts[names[2]]), _flat(texts[names[3]])
        inactive = stat.get("inactive_file" if version == 2 else "total_inactive_file")
        return {"version": version, "path": path, "folder": folder, "at": time.time(), "usageBytes": usage, "limitBytes": limit,
                "inactiveFileBytes": inactive, "workingSetBytes": None if inactive is None else max(0, usage - inactive),
                "oomEvents": events.get("oom") if version == 2 else None, "oomKills": events.get("oom_kill")}
    except (OSError, ValueError) as error:
        return {"error": repr(error)}


def cgroup_checks(before, after, probed, probe_max_rss):
    """The probe's host.container for the workload against the cgroup read here just before and
    just after the probe ran."""
    if "error" in before or "error" in after:
        why = before.get("error") or after.get("error")
        # Unreadable here: the probe must not claim figures either.
        usage = None if probed is None else probed.get("usageBytes")
        return [_check("cgroup: unreadable here, and the probe reports no usage", usage is None, None, usage, why)]
    if probed is None:
        return [_check("cgroup: the probe reports the workload's container", False, before["path"], None)]
    checks = [_check("cgroup: version and path = /proc/PID/cgroup (v%d)" % before["version"],
                     probed["cgroupVersion"] == before["version"] and probed["path"] == before["path"],
                     [before["version"], before["path"]], [probed["cgroupVersion"], probed["path"]], before["folder"])]

    def within(name, key):
        low = min(before[key], after[key]) - CGROUP_SLACK
        high = max(before[key], after[key]) + probe_max_rss + CGROUP_SLACK
        seen = probed.get(key)
        checks.append(_check("cgroup: %s within what was read before and after the probe" % name, seen is not None and low <= seen <= high,
                             "%d..%d" % (low, high), seen,
                             "read here %d and %d; the probe's own RSS %d (it is in the cgroup while it reads), slack %d MiB"
                             % (before[key], after[key], probe_max_rss, CGROUP_SLACK // MiB)))
    within("usage", "usageBytes")
    if before["workingSetBytes"] is not None and after["workingSetBytes"] is not None:
        within("working set (usage - inactive_file)", "workingSetBytes")
    else:
        checks.append(_check("cgroup: working set unknown here, and in the probe", probed.get("workingSetBytes") is None, None, probed.get("workingSetBytes")))
    checks.append(_check("cgroup: limit = %s" % ("memory.max" if before["version"] == 2 else "memory.limit_in_bytes"),
                         before["limitBytes"] == after["limitBytes"] == probed.get("limitBytes")
                         and (before["limitBytes"] is not None or (probed.get("errors") or {}).get("limitBytes", {}).get("code") == "NO_LIMIT"),
                         before["limitBytes"], probed.get("limitBytes"), "null: no limit (NO_LIMIT in the probe)" if before["limitBytes"] is None else ""))
    checks.append(_check("cgroup: oom_kill count equal", before["oomKills"] == after["oomKills"] == probed.get("oomKills"), before["oomKills"], probed.get("oomKills")))
    checks.append(_check("cgroup: oom event count equal%s" % (" (v1 has none: null)" if before["version"] == 1 else ""),
                         before["oomEvents"] == after["oomEvents"] == probed.get("oomEvents"), before["oomEvents"], probed.get("oomEvents")))
    return checks


def host_layer_summary(host, malloc_in_use):
    """What the probe's host layer said of the workload at the phase, for the report."""
    if host is None:
        return None
    malloc = host.get("malloc") or {}
    keys = ("rssBytes", "anonBytes", "fileBytes", "heapBytes", "anonMappingsBytes", "anonMappingsCount", "outsideMallocBytes")
    summary = {key: host.get(key) for key in keys}
    summary["mallocInUseBytes"] = malloc.get("inUseBytes")
    summary["mallocArenaPlusMmappedBytes"] = None if not malloc else malloc["arenaBytes"] + malloc["mmappedBytes"]
    summary["mallocStatsInUseBytes"] = malloc_in_use
    rss = host.get("rssBytes")
    summary["rssMinusMallocInUseBytes"] = None if rss is None or not malloc else rss - malloc["inUseBytes"]
    return summary
