"""Who else uses the CPU while a measurement runs, and what the measured processes use."""

from __future__ import annotations

import contextlib
import math
import os
import time
from collections.abc import Sequence
from pathlib import Path

from bench.report import Report, Row

CONTENDED_CORES = 0.15  # other processes using more than this during a run spoil it


def machine_busy_s() -> float:
    """CPU seconds all processors have spent busy since boot (stolen time counts as busy)."""
    fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(v) for v in fields)
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def speed_probe_ms() -> float:
    """Time a fixed pure-Python loop: on a steady machine it always takes the same time."""
    start = time.perf_counter()
    total = 0
    for i in range(2_000_000):
        total += i
    return (time.perf_counter() - start) * 1e3


class CpuWatch:
    """How much CPU processes other than the benchmark's own use while it measures.

    It also times a fixed loop when it starts and when it is read: a virtual machine whose
    host is busy runs everything slower without showing any other process.
    """

    def __init__(self, pids: Sequence[int] = ()) -> None:
        self.probes = [speed_probe_ms()]
        self.pids = [os.getpid(), *pids]
        self.start = time.monotonic()
        self.machine = machine_busy_s()
        self.own = self._own()

    def _own(self) -> float:
        # This process and the live children named; reaped children (the load generators).
        times = os.times()
        total = times.children_user + times.children_system
        for pid in self.pids:
            with contextlib.suppress(OSError):
                total += proc_cpu_s(pid)
        return total

    def other_cores(self) -> float:
        """Cores used by everything else on the machine since the watch started."""
        elapsed = max(time.monotonic() - self.start, 1e-6)
        other = (machine_busy_s() - self.machine) - (self._own() - self.own)
        self.probes.append(speed_probe_ms())
        return max(0.0, other / elapsed)


def report_contention(report: Report, number: str, other: float, watch: CpuWatch) -> None:
    """Show what else ran during a measurement; warn when it was enough to spoil it."""
    report.add(
        Row(
            number,
            "  CPU speed probe before / after (fixed loop; lower is faster)",
            " / ".join(f"{ms:.0f} ms" for ms in watch.probes),
        )
    )
    report.data.setdefault("speed_probe_ms", []).extend(watch.probes)
    contended = other > CONTENDED_CORES
    report.contended = report.contended or contended
    report.other_cores = max(report.other_cores, other)
    report.add(
        Row(
            number,
            "  other processes' CPU meanwhile",
            f"{other:.2f} of {os.cpu_count()} cores",
            verdict="CONTENDED" if contended else "",
        )
    )
    if contended:
        report.notes.append(
            f"{number}: other processes used {other:.2f} cores while it ran, so its figures "
            "understate jobd; rerun on an idle machine (--wait-idle, --retries)."
        )


def wait_idle(max_wait_s: float) -> None:
    """Wait (at most max_wait_s) until the machine has been idle for two seconds."""
    if max_wait_s <= 0:
        return
    start = time.monotonic()
    said = -math.inf
    while True:
        before = machine_busy_s()
        time.sleep(2.0)
        busy = (machine_busy_s() - before) / 2.0
        waited = time.monotonic() - start
        if busy <= CONTENDED_CORES:
            if waited > 3:
                print(f"    the machine is idle after {waited:.0f} s", flush=True)
            return
        if waited > max_wait_s:
            print(f"    machine still busy ({busy:.2f} cores); measuring anyway", flush=True)
            return
        if waited - said >= 30:
            said = waited
            print(f"    waiting for an idle machine ({busy:.2f} cores busy)...", flush=True)


def proc_status_kb(pid: int, key: str) -> int:
    """A `kB` field of /proc/<pid>/status (VmHWM, VmRSS)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    raise KeyError(key)


def _stat_cpu_s(path: Path) -> float:
    fields = path.read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def proc_cpu_s(pid: int) -> float:
    """User plus system CPU seconds of a process (all its threads)."""
    return _stat_cpu_s(Path(f"/proc/{pid}/stat"))


def thread_cpu_s(pid: int) -> tuple[float, float]:
    """CPU seconds of a process's main thread (its event loop) and of all its other threads."""
    main = others = 0.0
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(OSError):  # a thread may end while we look
            cpu = _stat_cpu_s(task / "stat")
            if task.name == str(pid):
                main += cpu
            else:
                others += cpu
    return main, others
