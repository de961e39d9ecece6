"""Reads every device with pynvml (Debian's python3-pynvml), an NVML client independent of
gpu-layers, and prints what it saw as JSON: the reference the addon's reading is compared with.
Loads libnvidia-ml.so.1 by name, so LD_LIBRARY_PATH picks the library under test."""
import json

import pynvml

pynvml.nvmlInit()
devices = []
for index in range(pynvml.nvmlDeviceGetCount()):
    handle = pynvml.nvmlDeviceGetHandleByIndex(index)
    memory = pynvml.nvmlDeviceGetMemoryInfo(handle, version=pynvml.nvmlMemory_v2)
    bar1 = pynvml.nvmlDeviceGetBAR1MemoryInfo(handle)
    pci = pynvml.nvmlDeviceGetPciInfo(handle)
    utilization = pynvml.nvmlDeviceGetUtilizationRates(handle)

    def rows(get):
        return [{"pid": p.pid, "usedBytes": p.usedGpuMemory} for p in get(handle)]

    devices.append({
        "index": index,
        "name": pynvml.nvmlDeviceGetName(handle),
        "uuid": pynvml.nvmlDeviceGetUUID(handle),
        "busId": pci.busId.decode() if isinstance(pci.busId, bytes) else pci.busId,
        "memory": {"total": memory.total, "reserved": memory.reserved, "used": memory.used, "free": memory.free},
        "bar1": {"total": bar1.bar1Total, "used": bar1.bar1Used, "free": bar1.bar1Free},
        "utilization": {"gpu": utilization.gpu, "memory": utilization.memory},
        "compute": rows(pynvml.nvmlDeviceGetComputeRunningProcesses),
        "graphics": rows(pynvml.nvmlDeviceGetGraphicsRunningProcesses),
        "mps": rows(pynvml.nvmlDeviceGetMPSComputeRunningProcesses),
    })
print(json.dumps({"driverVersion": pynvml.nvmlSystemGetDriverVersion(), "devices": devices}))
pynvml.nvmlShutdown()
