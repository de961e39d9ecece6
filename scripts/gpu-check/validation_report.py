"""Turns a real-GPU check's results.json (scripts/gpu-check/gpu_check.py) into the validation report of
docs/validation/: the card and driver, every check with what was expected and seen, the layers at
each phase, and the timings. `python3 scripts/gpu-check/validation_report.py RESULTS DATE > REPORT.md`."""
import json
import sys

MiB = 1024 ** 2


def mib(value):
    return "n/a" if value is None else "%.1f MiB" % (value / MiB)


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
    t = r["timings"]
    lines += ["", "## Timings (medians of 10 runs, same machine, same moment)", "",
              "| what | median |", "| --- | --- |",
              "| `gpu-layers probe --json` (whole process) | %.1f ms |" % t["probeJsonProcess"]["medianMs"],
              "| `nvidia-smi --query-compute-apps=pid,used_memory --format=csv` | %.1f ms |" % t["nvidiaSmiQuery"]["medianMs"],
              "| pynvml script (`scripts/oracles/pynvml_sample.py once`, whole process) | %.1f ms |" % t["pynvmlScript"]["medianMs"],
              "| `probe.sample()` in-process, warm (real driver) | %.0f µs |" % t["probeSampleInProcess"]["medianUs"],
              ""]
    print("\n".join(lines))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
