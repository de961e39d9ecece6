"""The real-GPU check (issue 4), driven by scripts/gpu-check.sh: runs the PyTorch workload
(scripts/gpu-check/gpu_check_workload.py) with the companion through its phases and, at each, reads the
same process through `gpu-layers probe --json`, nvidia-smi and pynvml; checks the layers against
each other and against torch's own figures; calibrates a bare context; times the probe against
nvidia-smi and pynvml; and writes everything it learns under OUT (at most 12 files and a folder):
results.json, nvidia-smi-q-memory.txt, probe-final.json, companion.json,
snapshot-graphs.pickle.gz, snapshot-churn.pickle.gz, malloc-stats.json, and of the OOM
companion-oom.json, snapshot-oom.pickle.gz, oom.jsonl and flights/ (a recording and its
.diagnosis.json).

The CUDA out-of-memory (issue 17, scripts/gpu-check/oom_check.py), a last phase: the workload asks
for the device's free bytes + 1 GiB and catches torch.cuda.OutOfMemoryError while `gpu-layers
record --interval 1s --flight-dir OUT/flights` runs across it. The companion's file of that moment
(PyTorch's out-of-memory observer) against the request rounded as the allocator rounds, torch's
total, NVML's free and the error's message; its snapshot (GPU_LAYERS_OOM_SNAPSHOT=1) read by
`gpu-layers snapshot --json`; the probe's allocator layer (numOoms, lastOom); the flight recording
read by `gpu-layers diagnose`, its diagnosis naming the event, the workload and every process on
the GPU. The recorder runs from the workload's start, so the flight holds the whole run. A few
seconds: one failed cudaMalloc, the recorder's next 1 s sample, diagnose and snapshot.

The host (issue 16, scripts/gpu-check/host_memory.py), at the churn phase: glibc's malloc_stats()
and mallinfo2() read in the workload at one moment, against each other and against the
companion's next file; the workload's cgroup read here before and after the probe, against the
probe's host.container; the probe's host layer (heap, anonymous mappings, outside malloc, RSS
against malloc in use) recorded in results.json's "host". It costs well under a second of the
run (the H200 run took 25 s in all): one malloc_stats(), a few cgroup files, no extra probe.

--simulate: the same run on a CPU machine against the mock NVML (no nvidia-smi), with the
workload under the fake torch of the companion's tests and the real companion, glibc and cgroup
of this machine, to test the plumbing before spending device time.
"""
import gzip
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time

import host_memory
import oom_check

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MiB = 1024 ** 2
PHASES = ["init", "weights", "kv", "graphs", "churn", "graphs2"]
CONTEXT_RANGE = (100 * MiB, 1024 * MiB)  # nvml-abi.md: user reports of 200-700 MB, ~300-400 MB lazy


def run(cmd, env=None, timeout=60):
    started = time.perf_counter()
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)
    return done, time.perf_counter() - started


def run_measured(cmd, env=None, timeout=60):
    """(returncode, stdout, stderr, the child's peak RSS in bytes): reaped with wait4 for its rusage."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        child = subprocess.Popen(cmd, env=env, stdout=out, stderr=err)
        timer = threading.Timer(timeout, child.kill)
        timer.start()
        try:
            _, status, usage = os.wait4(child.pid, 0)
        finally:
            timer.cancel()
        child.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        return child.returncode, out.read().decode(), err.read().decode(), usage.ru_maxrss * 1024


class Checker:
    def __init__(self, out, simulate):
        self.out = out
        self.simulate = simulate
        self.work = tempfile.mkdtemp(prefix="gpu-check-")
        self.node = os.environ.get("GPU_CHECK_NODE", "node")
        self.cli = os.path.join(ROOT, "dist", "cli", "gpu-layers.cjs")
        self.env = dict(os.environ, GPU_LAYERS_CACHE_DIR=os.path.join(self.work, "cache"), NO_COLOR="1")
        self.results = {"simulate": simulate, "phases": [], "checks": [], "timings": {}, "errors": [], "host": None}
        self.scenario = os.path.join(self.work, "host.scenario")
        if simulate:
            mock = os.path.join(ROOT, "build", "Release", "mock")
            self.env.update(GPU_LAYERS_NVML_LIB=os.path.join(mock, "libnvidia-ml.so.1"), GPU_LAYERS_CUDA_LIB=os.path.join(mock, "libcuda.so.1"),
                            GPU_LAYERS_MOCK_SCENARIO=self.scenario, LD_LIBRARY_PATH=mock,
                            PYTHONPATH=os.path.join(ROOT, ".cache/debian-nvidia/root/usr/lib/python3/dist-packages"))
            self.write_scenario(None, 0)

    def write_scenario(self, pid, used):
        lines = ["gpu-layers-mock-scenario 1", "device", "name NVIDIA H100 80GB HBM3", "uuid GPU-5d8a1e0c-7f3b-4a62-9c1e-2b8f0d4e6a17",
                 "memory 85520809984 570425344 %d %d" % (used, 85520809984 - 570425344 - used), "context_bytes 553648128"]
        if pid is not None:
            lines.append("process compute %d %d" % (pid, used))
        tmp = self.scenario + ".tmp"
        with open(tmp, "w") as f:
            f.write("\n".join(lines) + "\n")
        os.rename(tmp, self.scenario)

    def cli_json(self, *args):
        done, seconds = run([self.node, self.cli, *args], env=self.env)
        if done.returncode != 0:
            raise RuntimeError("gpu-layers %s exited %d: %s" % (" ".join(args), done.returncode, done.stderr.strip()))
        return json.loads(done.stdout), seconds

    def nvidia_smi(self, *args):
        if shutil.which("nvidia-smi") is None:
            return None
        done, _ = run(["nvidia-smi", *args])
        return done.stdout if done.returncode == 0 else None

    def pynvml(self):
        done, _ = run([sys.executable, os.path.join(ROOT, "scripts", "oracles", "pynvml_sample.py"), "once"], env=self.env)
        return json.loads(done.stdout) if done.returncode == 0 else {"error": done.stderr.strip()[-400:]}

    def check(self, name, ok, expected, seen, note=""):
        self.results["checks"].append({"check": name, "ok": bool(ok), "expected": expected, "seen": seen, "note": note})

    def versions(self):
        probe, _ = self.cli_json("probe", "--json", "--no-host")
        self.results["versions"] = {
            "driver": probe["driver"], "processRowBytes": probe["library"]["processRowBytes"],
            "memoryInfoVersion": [d["memory"]["version"] for d in probe["devices"]],
            "devices": [{"index": d["index"], "name": d["name"], "uuid": d["uuid"], "memory": d["memory"]} for d in probe["devices"]],
            "nvidiaSmi": self.nvidia_smi("--query-gpu=name,driver_version,memory.total,uuid", "--format=csv,noheader"),
        }
        memory = self.nvidia_smi("-q", "-d", "MEMORY")
        if memory is not None:
            with open(os.path.join(self.out, "nvidia-smi-q-memory.txt"), "w") as f:
                f.write(memory)

    def calibrate(self):
        report, seconds = self.cli_json("calibrate", "--json")
        self.results["calibration"] = report
        for device in report.get("devices", []):
            context = device.get("contextBytes")
            self.check("calibrate: bare context in the reference's range", context is not None and CONTEXT_RANGE[0] <= context <= CONTEXT_RANGE[1],
                       "%d..%d MiB" % (CONTEXT_RANGE[0] // MiB, CONTEXT_RANGE[1] // MiB), None if context is None else context / MiB,
                       "GPU %s, %.1f s" % (device.get("ordinal"), seconds))

    def start_workload(self):
        stats = os.path.join(self.work, "stats")
        os.makedirs(stats)
        fake_torch = os.path.join(ROOT, "test", "fixtures", "fake-torch") if self.simulate else None
        env = dict(self.env, GPU_LAYERS_STATS_DIR=stats, GPU_LAYERS_STATS_INTERVAL="0.2", GPU_LAYERS_STATS_SEGMENTS="1", PYTHONUNBUFFERED="1", GPU_LAYERS_OOM_SNAPSHOT="1",
                   PYTHONPATH=os.pathsep.join(filter(None, [os.path.join(ROOT, "python", "gpu_layers_companion"), fake_torch, self.env.get("PYTHONPATH")])))
        if self.simulate:
            env["FAKE_TORCH_STATE"] = os.path.join(self.work, "fake-torch-state.json")
        args = [sys.executable, os.path.join(ROOT, "scripts", "gpu-check", "gpu_check_workload.py"), self.work, self.out] + (["--simulate"] if self.simulate else [])
        self.workload = subprocess.Popen(args, env=env)
        self.stats = stats

    def wait_phase(self, phase, timeout=240):
        path = os.path.join(self.work, "phase-%s.json" % phase)
        end = time.time() + timeout
        while not os.path.exists(path):
            if self.workload.poll() is not None:
                raise RuntimeError("the workload exited %s before phase %s" % (self.workload.returncode, phase))
            if time.time() > end:
                raise RuntimeError("timed out waiting for phase %s" % phase)
            time.sleep(0.05)
        with open(path) as f:
            return json.load(f)

    def wait_companion(self, pid, since, timeout=20.0):
        """Until the companion has written after the phase began (its first memory_snapshot() takes
        seconds on a real GPU, once), then one interval more: the file is fresh and at rest."""
        path = os.path.join(self.stats, "%d.json" % pid)
        end = time.time() + timeout
        while time.time() < end:
            try:
                with open(path) as f:
                    if json.load(f)["writtenAt"] > since:
                        break
            except (OSError, ValueError, KeyError):
                pass
            time.sleep(0.05)
        time.sleep(0.25)

    def read_phase(self, phase, torch):
        pid = torch["pid"]
        if self.simulate:
            self.write_scenario(pid, (phase_index := PHASES.index(phase) + 1) * 1024 * MiB)
        host = phase == host_memory.PHASE
        if host:  # the companion's first file after the workload's malloc_stats() reading
            malloc_reading = self.malloc_reading()
            companion_after = self.companion_after(pid, malloc_reading["at"] if malloc_reading else torch["at"])
        self.wait_companion(pid, torch["at"])
        # At the host phase the cgroup is read just before and after the probe. Its usage is the
        # whole cgroup's: where other processes share it (`npm test` running --simulate beside
        # other suites) one that comes and goes between the reads can put the probe's figure out
        # of range, so the three reads are taken again, up to 3 times in all; a wrong reading
        # (another cgroup, another file) stays out of range every time.
        for attempt in range(1, 4 if host else 2):
            cgroup_before = host_memory.read_cgroup(pid) if host else None
            code, stdout, stderr, probe_rss = run_measured([self.node, self.cli, "probe", "--json", "--stats-dir", self.stats], env=self.env)
            cgroup_after = host_memory.read_cgroup(pid) if host else None
            if code != 0:
                raise RuntimeError("gpu-layers probe --json exited %d at phase %s: %s" % (code, phase, stderr.strip()[-400:]))
            probe = json.loads(stdout)
            if host:
                probed = next((p.get("host") for d in probe["devices"] for p in (d.get("processes") or []) if p["pid"] == pid), None)
                if all(c["ok"] for c in host_memory.cgroup_checks(cgroup_before, cgroup_after, (probed or {}).get("container"), probe_rss)):
                    break
        smi = self.nvidia_smi("--query-compute-apps=pid,used_memory", "--format=csv,noheader,nounits")
        nvml = self.pynvml()
        mine = [p for d in probe["devices"] for p in (d.get("processes") or []) if p["pid"] == pid]
        entry = {"phase": phase, "torch": torch, "nvidiaSmi": smi, "pynvml": [p for d in nvml.get("devices", []) for p in d["processes"] if p["pid"] == pid],
                 "probe": mine[0] if mine else None, "probePids": sorted({p["pid"] for d in probe["devices"] for p in (d.get("processes") or [])})}
        self.results["phases"].append(entry)
        if host:
            self.host_checks(malloc_reading, companion_after, cgroup_before, cgroup_after, entry["probe"], probe_rss, attempt)
        if phase == "graphs2":
            with open(os.path.join(self.out, "probe-final.json"), "w") as f:
                json.dump(probe, f, indent=1)
            self.exporter_check(pid, entry["probe"])
            self.wait_recorder(pid)  # before the oom phase, which follows
        if phase == "churn":
            companion = os.path.join(self.stats, "%d.json" % pid)
            if os.path.exists(companion):
                shutil.copy(companion, os.path.join(self.out, "companion.json"))
        open(os.path.join(self.work, "continue-%s" % phase), "w").close()

    def start_recorder(self):
        """`gpu-layers record --interval 1s --flight-dir OUT/flights` from the workload's start to
        just after its OOM: the flight then holds the whole run (the window is 30 minutes), so
        `diagnose` has the phases' growth to judge. It is an NVML client like the probe (no CUDA
        context), in the checker's cgroup like the probe (within the cgroup checks' slack)."""
        self.recording, self.flights = os.path.join(self.out, oom_check.RECORDING), os.path.join(self.out, oom_check.FLIGHTS)
        self.recorder_log = open(os.path.join(self.work, "record.stderr"), "w+")
        self.recorder = subprocess.Popen([self.node, self.cli, "record", "--out", self.recording, "--interval", "1s", "--flight-dir", self.flights,
                                          "--stats-dir", self.stats], env=self.env, stdout=subprocess.DEVNULL, stderr=self.recorder_log)
        self.recorder_error = None

    def wait_recorder(self, pid, timeout=15.0):
        """Until the recording has a sample with the workload's allocator layer: the flight
        recorder sees an OOM as the allocator's count rising against an earlier sample."""
        end = time.time() + timeout
        while time.time() < end and self.recorder.poll() is None:
            if self.recorded_allocator(pid):
                return
            time.sleep(0.05)
        self.recorder_error = ("gpu-layers record exited %s" % self.recorder.returncode if self.recorder.poll() is not None
                               else "no sample of the workload's allocator layer in %g s" % timeout)

    def recorded_allocator(self, pid):
        try:
            with open(self.recording) as f:
                lines = f.read().splitlines()[1:]  # the header first
        except OSError:
            return False
        for line in lines:
            try:
                sample = json.loads(line)
            except ValueError:
                continue  # a line being written
            for d in sample.get("devices") or []:
                for p in d.get("processes") or []:
                    if p.get("pid") == pid and ((p.get("layers") or {}).get("allocator") or {}).get("numOoms") is not None:
                        return True
        return False

    def stop_recorder(self):
        """SIGINT, as Ctrl-C: record finishes its line and exits. Returns its stderr."""
        recorder = getattr(self, "recorder", None)
        if recorder is None:
            return ""
        if recorder.poll() is None:
            recorder.send_signal(signal.SIGINT)
            try:
                recorder.wait(timeout=10)
            except subprocess.TimeoutExpired:
                recorder.kill()
                recorder.wait()
        self.recorder_log.seek(0)
        text = self.recorder_log.read()
        self.recorder = None
        return text

    def oom_phase(self):
        """The workload's out-of-memory (oom_check.py): NVML's free bytes and processes a moment
        after it, the probe's allocator layer, the flight the recorder writes (waited for, up to
        10 s: the next 1 s sample shows it), the companion's file and snapshot of that moment;
        then the checks, and the files brought back: companion-oom.json (the workload's copy),
        snapshot-oom.pickle.gz, oom.jsonl (the recording) and flights/."""
        phase = self.wait_phase(oom_check.PHASE, timeout=60)
        pid = phase["pid"]
        nvml = self.pynvml()
        device = next((d for d in nvml.get("devices", []) if any(p["pid"] == pid for p in d["processes"])),
                      next(iter(nvml.get("devices", [])), None))
        row = None if device is None else next((p["usedBytes"] for p in device["processes"] if p["pid"] == pid), None)
        gpu_pids = None if device is None else sorted({p["pid"] for p in device["processes"]})
        nvml_free = None if device is None else device["memory"]["free"]
        code, stdout, stderr, _ = run_measured([self.node, self.cli, "probe", "--json", "--no-host", "--stats-dir", self.stats], env=self.env)
        probed = None
        if code == 0:
            probed = next((p for d in json.loads(stdout)["devices"] for p in (d.get("processes") or []) if p["pid"] == pid), None)
        end = time.time() + 10
        while not oom_check.flight_files(self.flights, pid) and time.time() < end and self.recorder is not None and self.recorder.poll() is None:
            time.sleep(0.1)
        record_stderr = self.stop_recorder()
        open(os.path.join(self.work, "continue-%s" % oom_check.PHASE), "w").close()

        try:
            with open(os.path.join(self.out, oom_check.COMPANION_FILE)) as f:
                companion = json.load(f)
        except (OSError, ValueError):
            companion = None
        checks = oom_check.companion_checks(phase, companion, nvml_free, row)
        checks += oom_check.probe_checks(probed, companion)
        oom = (companion or {}).get("oom") or {}
        snapshot_file = None if not oom.get("snapshot") else os.path.join(self.stats, oom["snapshot"])
        snapshot_run = snapshot = None
        if snapshot_file is not None and os.path.exists(snapshot_file):
            done, _ = run([self.node, self.cli, "snapshot", "--json", snapshot_file], env=self.env)
            snapshot_run = (done.returncode, done.stdout, done.stderr)
            target = os.path.join(self.out, oom_check.SNAPSHOT)
            with open(snapshot_file, "rb") as f, gzip.open(target, "wb") as g:
                shutil.copyfileobj(f, g)
            snapshot = {"file": oom["snapshot"], "bytes": os.path.getsize(snapshot_file), "gzipBytes": os.path.getsize(target)}
            if snapshot["gzipBytes"] > oom_check.SNAPSHOT_MAX_BYTES:
                os.remove(target)
                snapshot["notBroughtBack"] = "over %d bytes gzipped" % oom_check.SNAPSHOT_MAX_BYTES
            try:
                snapshot["report"] = {k: v for k, v in json.loads(done.stdout)["devices"][0].items() if not isinstance(v, (list, dict))}
            except (ValueError, KeyError, IndexError):
                pass
        checks += oom_check.snapshot_checks(companion, snapshot_file, snapshot_run)
        flights = oom_check.flight_files(self.flights, pid)
        diagnosis, diagnose_run = None, None
        if flights:
            recording, diagnosis_file = flights[-1]
            done, _ = run([self.node, self.cli, "diagnose", recording], env=self.env)
            diagnose_run = (done.returncode, done.stdout, done.stderr)
            with open(diagnosis_file) as f:
                diagnosis = json.load(f)
        checks += oom_check.flight_checks(pid, flights, diagnosis, diagnose_run, gpu_pids, self.recorder_error,
                                          [(e["phase"], e["torch"]["at"]) for e in self.results["phases"]])
        self.results["checks"] += checks
        self.results["oom"] = {
            "workload": phase, "companion": companion and {"writtenAt": companion.get("writtenAt"), "oom": companion.get("oom"),
                                                           "reservedBytes": ((companion.get("devices") or [{}])[0].get("stats") or {}).get("reserved_bytes.all.current")},
            "nvml": {"freeBytes": nvml_free, "workloadUsedBytes": row, "pidsOnGpu": gpu_pids, "error": nvml.get("error")},
            "probeAllocator": None if probed is None else {k: (probed["layers"]["allocator"] or {}).get(k) for k in ("reservedBytes", "numOoms", "lastOom")},
            "messageFigures": {k: v[0] for k, v in oom_check.message_figures((phase.get("oom") or {}).get("message")).items()},
            "snapshot": snapshot,
            "flight": None if diagnosis is None else {"recording": os.path.relpath(flights[-1][0], self.out), "event": diagnosis.get("event"),
                                                      "window": diagnosis.get("window"), "findingsOfTheProcess": diagnosis.get("findingsOfTheProcess")},
            "diagnose": None if diagnose_run is None else {"exitCode": diagnose_run[0], "stdout": diagnose_run[1][-2000:]},
            "recordStderr": record_stderr[-2000:],
        }

    def malloc_reading(self):
        try:
            with open(os.path.join(self.out, host_memory.FILE)) as f:
                return json.load(f)
        except (OSError, ValueError):
            return None

    def companion_after(self, pid, at, timeout=10.0):
        """The companion's first file written after `at` with malloc figures (a write whose read
        was skipped for pace has none: the next one), polled every 10 ms; else the last seen."""
        path = os.path.join(self.stats, "%d.json" % pid)
        end, seen = time.time() + timeout, None
        while time.time() < end:
            try:
                with open(path) as f:
                    document = json.load(f)
            except (OSError, ValueError):
                document = None
            if document is not None and document.get("writtenAt", 0) > at:
                seen = document
                if (document.get("host") or {}).get("malloc") is not None:
                    break
            time.sleep(0.01)
        return seen

    def host_checks(self, reading, companion, cgroup_before, cgroup_after, probed, probe_rss, attempts):
        """malloc_stats() against mallinfo2() and the companion; the cgroup against the probe; the
        probe's host layer recorded (scripts/gpu-check/host_memory.py)."""
        checks, malloc = host_memory.malloc_checks(reading, companion)
        host = (probed or {}).get("host")
        checks += host_memory.cgroup_checks(cgroup_before, cgroup_after, None if host is None else host.get("container"), probe_rss)
        self.results["checks"] += checks
        total = ((reading or {}).get("mallocStats") or {}).get("total") or {}
        self.results["host"] = {
            "phase": host_memory.PHASE,
            "mallocStats": None if reading is None else {k: v for k, v in reading.items() if k != "text"},
            "companion": malloc,
            "cgroup": {"before": cgroup_before, "after": cgroup_after, "probe": None if host is None else host.get("container"), "probeMaxRssBytes": probe_rss, "attempts": attempts},
            "layer": host_memory.host_layer_summary(host, total.get("inUseBytes")),
        }

    def exporter_check(self, pid, probed):
        """`gpu-layers serve` on the real driver while the workload rests: its series for the
        workload must be what the probe read."""
        import re
        import urllib.request
        serve = subprocess.Popen([self.node, self.cli, "serve", "--port", "0", "--interval", "500ms", "--stats-dir", self.stats],
                                 env=self.env, stderr=subprocess.PIPE, text=True)
        try:
            line = serve.stderr.readline()
            match = re.search(r":(\d+)/metrics", line)
            if match is None:
                raise RuntimeError("gpu-layers serve did not start: %s" % line.strip())
            time.sleep(1.5)
            text = urllib.request.urlopen("http://127.0.0.1:%s/metrics" % match.group(1), timeout=10).read().decode()
            self.results["exporter"] = {"exposition": [l for l in text.splitlines() if l.startswith("gpu_layers_") and 'pid="%d"' % pid in l or l.startswith("gpu_layers_collect")]}

            def series(name):
                found = re.search(r'^%s\{[^}]*pid="%d"[^}]*\} (\S+)$' % (name, pid), text, re.M)
                return None if found is None else float(found.group(1))
            driver = series("gpu_layers_process_driver_memory_bytes")
            reserved = series("gpu_layers_process_allocator_reserved_bytes")
            self.check("exporter: the workload's driver series = the probe's driver layer", driver == probed["layers"]["driverBytes"], probed["layers"]["driverBytes"], driver)
            if probed["layers"]["allocator"] is not None:
                self.check("exporter: the workload's allocator_reserved series = the probe's", reserved == probed["layers"]["allocator"]["reservedBytes"],
                           probed["layers"]["allocator"]["reservedBytes"], reserved)
            self.check("exporter: collect_success 1 on the real driver", re.search(r"^gpu_layers_collect_success 1$", text, re.M) is not None, 1,
                       re.search(r"^gpu_layers_collect_success (\S+)$", text, re.M).group(1))
        finally:
            serve.terminate()
            serve.wait(timeout=10)

    def phase_checks(self):
        phases = {e["phase"]: e for e in self.results["phases"]}
        for e in self.results["phases"]:
            p, t, phase = e["probe"], e["torch"], e["phase"]
            if p is None:
                self.check("%s: the workload is in the probe's process list" % phase, False, t["pid"], e["probePids"])
                continue
            driver = p["layers"]["driverBytes"]
            if e["nvidiaSmi"] is not None:
                smi = {int(a): int(b) for a, b in (line.split(",") for line in e["nvidiaSmi"].strip().splitlines() if "," in line)}
                seen = smi.get(t["pid"])
                self.check("%s: driver layer = nvidia-smi (1 MiB)" % phase, seen is not None and driver is not None and abs(driver - seen * MiB) <= MiB, driver, None if seen is None else seen * MiB)
            nvml = [q["usedBytes"] for q in e["pynvml"]]
            self.check("%s: driver layer = pynvml (1 MiB)" % phase, len(nvml) == 1 and driver is not None and abs(driver - nvml[0]) <= MiB, driver, nvml)
            allocator = p["layers"]["allocator"]
            # The companion runs in --simulate too (under the fake torch, with the phase's figures).
            self.check("%s: allocator reserved = torch.cuda.memory_reserved()" % phase, allocator is not None and allocator["reservedBytes"] == t["memory_reserved"], t["memory_reserved"], allocator and allocator["reservedBytes"])
            self.check("%s: allocator allocated = torch.cuda.memory_allocated()" % phase, allocator is not None and allocator["allocatedBytes"] == t["memory_allocated"], t["memory_allocated"], allocator and allocator["allocatedBytes"])
            if allocator is not None and driver is not None:
                self.check("%s: outside-allocator gap = driver - reserved" % phase, p["gaps"]["outsideAllocatorBytes"] == driver - allocator["reservedBytes"], driver - allocator["reservedBytes"], p["gaps"]["outsideAllocatorBytes"])
        def outside(k):
            return phases[k]["probe"]["gaps"]["outsideAllocatorBytes"] if k in phases and phases[k]["probe"] else None

        def reserved(k):
            return phases[k]["torch"]["memory_reserved"]
        if not self.simulate:
            for before, after in (("kv", "graphs"), ("churn", "graphs2")):
                if outside(before) is None or outside(after) is None:
                    self.check("%s -> %s: graph capture grows memory outside the allocator" % (before, after), False, "> 0", None, "a gap was unknown")
                    continue
                grew = outside(after) - outside(before)
                flat = reserved(after) - reserved(before)
                self.check("%s -> %s: graph capture grows memory outside the allocator" % (before, after), grew > 0, "> 0", grew,
                           "reserved moved %d bytes meanwhile (graph pools' activations)" % flat)

    def timings(self, pid):
        def median_of(cmd, env=None, runs=10):
            times = []
            for _ in range(runs):
                done, seconds = run(cmd, env=env)
                if done.returncode != 0:
                    return {"error": done.stderr.strip()[-300:]}
                times.append(seconds * 1000)
            return {"medianMs": statistics.median(times), "runsMs": times}
        t = self.results["timings"]
        t["probeJsonProcess"] = median_of([self.node, self.cli, "probe", "--json", "--no-host"], env=self.env)
        if shutil.which("nvidia-smi"):
            t["nvidiaSmiQuery"] = median_of(["nvidia-smi", "--query-compute-apps=pid,used_memory", "--format=csv"])
        t["pynvmlScript"] = median_of([sys.executable, os.path.join(ROOT, "scripts", "oracles", "pynvml_sample.py"), "once"], env=self.env)
        script = ("const {openProbe}=require(%s);(async()=>{const p=await openProbe({processCommands:false});for(let i=0;i<5;i++)await p.sample();"
                  "const t=[];for(let i=0;i<10;i++){const s=process.hrtime.bigint();await p.sample();t.push(Number(process.hrtime.bigint()-s)/1e3)}"
                  "await p.close();t.sort((a,b)=>a-b);console.log(JSON.stringify({medianUs:(t[4]+t[5])/2,runsUs:t}))})()") % json.dumps(os.path.join(ROOT, "dist", "index.cjs"))
        done, _ = run([self.node, "-e", script], env=self.env)
        t["probeSampleInProcess"] = json.loads(done.stdout) if done.returncode == 0 else {"error": done.stderr.strip()[-300:]}
        own = [p for e in self.results["phases"] for p in e["probePids"]]
        self.check("the probe never appears in NVML's process list", pid in own and all(p == pid for p in own), [pid], sorted(set(own)),
                   "only the workload's pid is listed while the probe samples")

    def snapshots(self):
        for name in ("snapshot-graphs.pickle", "snapshot-churn.pickle"):
            path = os.path.join(self.out, name)
            if os.path.exists(path):
                with open(path, "rb") as f, gzip.open(path + ".gz", "wb") as g:
                    shutil.copyfileobj(f, g)
                os.remove(path)

    def main(self):
        started = time.time()
        try:
            self.versions()
            self.calibrate()
            self.start_workload()
            self.start_recorder()
            for phase in PHASES:
                self.read_phase(phase, self.wait_phase(phase))
            self.oom_phase()
            self.phase_checks()
            self.timings(self.results["phases"][0]["torch"]["pid"])
        except Exception as error:  # keep what was learnt: the results file is the point of the run
            self.results["errors"].append(repr(error))
        finally:
            if hasattr(self, "workload"):
                self.workload.kill()
            self.stop_recorder()
            self.snapshots()
            self.results["seconds"] = time.time() - started
            with open(os.path.join(self.out, "results.json"), "w") as f:
                json.dump(self.results, f, indent=1)
            failed = [c for c in self.results["checks"] if not c["ok"]]
            for c in self.results["checks"]:
                print("%s  %s  expected %s, seen %s %s" % ("ok  " if c["ok"] else "FAIL", c["check"], c["expected"], c["seen"], c["note"]))
            print("timings:", json.dumps({k: v.get("medianMs", v.get("medianUs", v)) for k, v in self.results["timings"].items()}))
            print("errors:", self.results["errors"])
            print("%d checks, %d failed, %.0f s" % (len(self.results["checks"]), len(failed), self.results["seconds"]))
        return 0 if not self.results["errors"] else 1


if __name__ == "__main__":
    sys.exit(Checker(sys.argv[1], "--simulate" in sys.argv).main())
