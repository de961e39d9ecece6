"""Turns a real-GPU check's results.json (scripts/gpu-check/gpu_check.py) into the validation report of
docs/validation/: the card and driver, every check with what was expected and seen, the layers at
each phase, the host (malloc_stats() against the companion, the cgroup against the probe, the host
layer; results from before issue 16 have none), the CUDA out-of-memory (the companion's record
beside NVML's and the message's figures, its snapshot, the flight and its diagnosis; none before
issue 17) and the timings.
`python3 scripts/gpu-check/validation_report.py RESULTS DATE > REPORT.md`."""
import json
import sys

MiB = 1024 ** 2


def mib(value):
    return "n/a" if value is None else "%.1f MiB" % (value / MiB)


def host_lines(h):
    """The host section: malloc_stats() and mallinfo2() in the workload, the companion's next file,
    the workload's cgroup read by the check and by the probe, and the probe's host layer."""
    lines = ["", "## The host at phase %s" % h["phase"], ""]
    m = h.get("mallocStats")
    if m is None or "unknownBecause" in m:
        lines.append("glibc's malloc_stats() was not read: %s." % ("no malloc-stats.json" if m is None else m["unknownBecause"]))
    else:
        total, info, c = m["mallocStats"]["total"] or {}, m["mallinfo2"], h.get("companion") or {}
        malloc = (c.get("companion") or {}).get("malloc") or {}
        lines += ["glibc's `malloc_stats()` (its stderr captured) with `mallinfo2()` right after, in the workload (%d arena(s), %d attempt(s));"
                  % (len(m["mallocStats"]["arenas"]), m["attempts"]),
                  "the companion's next file %s." % ("%.2f s later" % c["readApartSeconds"] if c else "(none)"), "",
                  "| | malloc_stats total | mallinfo2, same moment | companion | companion - malloc_stats |", "| --- | --- | --- | --- | --- |",
                  "| in use | %s | %s (uordblks + hblkhd) | %s (inUseBytes) | %s |" % (total.get("inUseBytes"), info["uordblks"] + info["hblkhd"], malloc.get("inUseBytes"),
                                                                                  None if not c else -c["inUseDifference"]),
                  "| system | %s | %s (arena + hblkhd) | %s (arenaBytes + mmappedBytes) | %s |" % (total.get("systemBytes"), info["arena"] + info["hblkhd"],
                                                                                               None if not malloc else malloc["arenaBytes"] + malloc["mmappedBytes"],
                                                                                               None if not c else -c["systemDifference"]),
                  "| of which mmapped | %s | %s (hblkhd, %d chunks) | %s (mmappedBytes) | |" % (m["sameMoment"]["mmappedFromTotals"]["inUse"] if m["sameMoment"] else None,
                                                                                               info["hblkhd"], info["hblks"], malloc.get("mmappedBytes"))]
    g = h.get("cgroup") or {}
    before, after, probe = g.get("before") or {}, g.get("after") or {}, g.get("probe") or {}
    lines += ["", "The workload's cgroup (v%s, `%s`), read by the check before and after `gpu-layers probe --json` (whose own peak RSS, %s, is in the cgroup while it reads; %s attempt(s)):"
              % (before.get("version"), before.get("path"), mib(g.get("probeMaxRssBytes")), g.get("attempts")), "",
              "| | before | probe | after |", "| --- | --- | --- | --- |"]
    for label, key in (("usage", "usageBytes"), ("working set", "workingSetBytes"), ("limit", "limitBytes"), ("OOM events", "oomEvents"), ("OOM kills", "oomKills")):
        lines.append("| %s | %s | %s | %s |" % (label, before.get(key), probe.get(key), after.get(key)))
    layer = h.get("layer")
    if layer is not None:
        lines += ["", "The probe's host layer for the workload:", "", "| figure | bytes |", "| --- | --- |"]
        lines += ["| %s | %s |" % (key, value) for key, value in layer.items()]
    return lines


def oom_lines(o):
    """The CUDA out-of-memory phase: what the workload asked for and saw, the companion's record at
    that moment beside NVML's and the message's figures, the snapshot and the flight."""
    w, c = o.get("workload") or {}, o.get("companion") or {}
    seen, oom, nvml, message = w.get("oom") or {}, c.get("oom") or {}, o.get("nvml") or {}, o.get("messageFigures") or {}
    lines = ["", "## The CUDA out-of-memory (last phase)", "",
             "The workload asked for %s bytes (torch.cuda.mem_get_info() free %s + 1 GiB) and got %s%s." % (
                 seen.get("requestBytes"), w.get("oom_free_before"), seen.get("error"),
                 "" if not seen.get("raisedAt") else " after %.3f s" % (seen["raisedAt"] - seen["startedAt"])),
             "", "| figure | companion (observer) | other source | |", "| --- | --- | --- | --- |",
             "| request | %s | %s | the message: %s |" % (oom.get("requestedBytes"), "rounded by the allocator", message.get("tried")),
             "| device total | %s | %s | the message: %s |" % (oom.get("deviceTotalBytes"), "torch.cuda.mem_get_info(): %s" % w.get("mem_get_info_total"), message.get("total")),
             "| device free | %s | %s | the message: %s |" % (oom.get("deviceFreeBytes"), "pynvml after: %s" % nvml.get("freeBytes"), message.get("free")),
             "| the workload on the GPU | | pynvml: %s | the message: %s |" % (nvml.get("workloadUsedBytes"), message.get("process")),
             "| reserved at the OOM | %s | | |" % c.get("reservedBytes"),
             "", "torch's num_ooms after: %s; the probe's allocator layer: %s." % (w.get("num_ooms"), json.dumps(o.get("probeAllocator")))]
    snapshot = o.get("snapshot")
    if snapshot is None:
        lines.append("No memory snapshot: %s." % (oom.get("snapshotError") or "none written"))
    else:
        lines.append("The companion's snapshot `%s`: %d bytes (%d gzipped%s); `gpu-layers snapshot --json`: %s." % (
            snapshot["file"], snapshot["bytes"], snapshot["gzipBytes"], ", " + snapshot["notBroughtBack"] if snapshot.get("notBroughtBack") else "",
            json.dumps(snapshot.get("report"))))
    flight = o.get("flight")
    if flight is None:
        lines.append("No flight recording.")
    else:
        window = flight.get("window") or {}
        lines += ["", "The flight `%s`: %s samples, %s to %s; the event: %s" % (flight["recording"], window.get("samples"), window.get("from"), window.get("to"),
                                                                          (flight.get("event") or {}).get("detail")),
                  "`gpu-layers diagnose` (exit %s):" % (o.get("diagnose") or {}).get("exitCode"), "", "```", ((o.get("diagnose") or {}).get("stdout") or "").strip(), "```"]
    return lines


def main(path, date):
    r = json.load(open(path))
    v = r["versions"]
    device = v["devices"][0]
    lines = [
        "# Real-GPU validation: %s, %s" % (device["name"], date),
        "",
        "`scripts/gpu-check.sh OUTDIR` on a lent machine (one %s, driver %s, NVML %s, CUDA %d.%d; PyTorch %s;"
        % (device["name"], v["driver"]["version"], v["driver"]["nvmlVersion"], v["driver"]["cudaDriverVersion"] // 1000,
           v["driver"]["cudaDriverVersion"] % 1000 // 10, r["phases"][0]["torch"]["torch_version"]),
        "pynvml from the machine's nvidia-ml-py; Node.js carried). %d checks, %d failed, %.0f s. The raw results are"
        % (len(r["checks"]), sum(1 for c in r["checks"] if not c["ok"]), r["seconds"]),
        "`test/fixtures/real/h200-run.json`; `nvidia-smi -q -d MEMORY` is beside this file.",
        "",
        "The addon chose: process rows of %d bytes (`_v3`), memory info v%s. Total %s, reserved by the driver %s."
        % (v["processRowBytes"]["compute"], v["memoryInfoVersion"][0], mib(device["memory"]["totalBytes"]), mib(device["memory"]["reservedBytes"])),
        "",
        "## Checks",
        "",
        "| check | expected | seen | |",
        "| --- | --- | --- | --- |",
    ]
    for c in r["checks"]:
        lines.append("| %s | %s | %s | %s |" % (c["check"], c["expected"], c["seen"], ("ok" if c["ok"] else "**FAIL**") + (" (%s)" % c["note"] if c["note"] else "")))
    lines += ["", "## The layers at each phase", "",
              "| phase | driver (NVML) | nvidia-smi | torch reserved | torch allocated | outside allocator | private pools (companion) | allocated in them | cached outside them | largest free block |",
              "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for e in r["phases"]:
        p, t = e["probe"], e["torch"]
        a = p["layers"]["allocator"] or {}
        smi = next((int(line.split(",")[1]) for line in (e["nvidiaSmi"] or "").splitlines() if line.split(",")[0].strip() == str(t["pid"])), None)
        lines.append("| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |" % (e["phase"], mib(p["layers"]["driverBytes"]), "n/a" if smi is None else "%d MiB" % smi,
                                                          mib(t["memory_reserved"]), mib(t["memory_allocated"]), mib(p["gaps"]["outsideAllocatorBytes"]),
                                                          mib(a.get("privatePoolBytes")), mib(a.get("privatePoolAllocatedBytes")), mib(p["gaps"]["allocatorCachedBytes"]),
                                                          mib(a.get("largestFreeBlockBytes"))))
    if r.get("host"):
        lines += host_lines(r["host"])
    if r.get("oom"):
        lines += oom_lines(r["oom"])
    t = r["timings"]
    smi = t.get("nvidiaSmiQuery", {}).get("medianMs")  # none under --simulate
    lines += ["", "## Timings (medians of 10 runs, same machine, same moment)", "",
              "| what | median |", "| --- | --- |",
              "| `gpu-layers probe --json` (whole process) | %.1f ms |" % t["probeJsonProcess"]["medianMs"],
              "| `nvidia-smi --query-compute-apps=pid,used_memory --format=csv` | %s |" % ("n/a" if smi is None else "%.1f ms" % smi),
              "| pynvml script (`scripts/oracles/pynvml_sample.py once`, whole process) | %.1f ms |" % t["pynvmlScript"]["medianMs"],
              "| `probe.sample()` in-process, warm (real driver) | %.0f µs |" % t["probeSampleInProcess"]["medianUs"],
              ""]
    print("\n".join(lines))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
