"""One gpu-layers sample's NVML calls made with pynvml (nvidia-ml-py), an NVML client independent
of gpu-layers. `once` makes one pass and prints what it read as JSON, like `gpu-layers probe
--json`: the reference the tests compare the addon with. `loop N` times N passes in-process and
prints the per-pass microseconds as JSON, for `npm run bench`. pynvml loads libnvidia-ml.so.1 by
name, so LD_LIBRARY_PATH picks the library under test."""
import json
import sys
import time

import pynvml


def one_pass():
    system = {
        "driverVersion": pynvml.nvmlSystemGetDriverVersion(),
        "nvmlVersion": pynvml.nvmlSystemGetNVMLVersion(),
        "cudaDriverVersion": pynvml.nvmlSystemGetCudaDriverVersion_v2(),
    }
    devices = []
    for index in range(pynvml.nvmlDeviceGetCount()):
        handle = pynvml.nvmlDeviceGetHandleByIndex(index)
        memory = pynvml.nvmlDeviceGetMemoryInfo(handle, version=pynvml.nvmlMemory_v2)
        bar1 = pynvml.nvmlDeviceGetBAR1MemoryInfo(handle)
        pci = pynvml.nvmlDeviceGetPciInfo(handle)
        utilization = pynvml.nvmlDeviceGetUtilizationRates(handle)
        mig = pynvml.nvmlDeviceGetMigMode(handle)
        processes = []
        for kind, get in (("compute", pynvml.nvmlDeviceGetComputeRunningProcesses),
                          ("graphics", pynvml.nvmlDeviceGetGraphicsRunningProcesses),
                          ("mps", pynvml.nvmlDeviceGetMPSComputeRunningProcesses)):
            for p in get(handle):
                processes.append({"pid": p.pid, "usedBytes": p.usedGpuMemory, "type": kind})
        devices.append({
            "index": index,
            "name": pynvml.nvmlDeviceGetName(handle),
            "uuid": pynvml.nvmlDeviceGetUUID(handle),
            "busId": pci.busId,
            "memory": {"total": memory.total, "reserved": memory.reserved, "used": memory.used, "free": memory.free},
            "bar1": {"total": bar1.bar1Total, "used": bar1.bar1Used, "free": bar1.bar1Free},
            "utilization": {"gpu": utilization.gpu, "memory": utilization.memory},
            "migMode": list(mig),
            "processes": processes,
        })
    return {**system, "devices": devices}


def main():
    pynvml.nvmlInit()
    if sys.argv[1] == "once":
        print(json.dumps(one_pass(), default=lambda v: v.decode() if isinstance(v, bytes) else str(v)))
    else:
        count = int(sys.argv[2])
        for _ in range(min(count, 200)):
            one_pass()
        times = []
        for _ in range(count):
            started = time.perf_counter_ns()
            one_pass()
            times.append((time.perf_counter_ns() - started) / 1000)
        print(json.dumps(times))
    pynvml.nvmlShutdown()


main()
