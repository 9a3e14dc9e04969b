"""Shared helpers of the benchmarks in bench/: timing, order statistics, host facts and load, output.

Not a test helper: nothing here asserts. Every number a benchmark prints comes from `summarize` over
raw samples in milliseconds, and every script writes the raw samples to its --json file as well.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import math
import os
import platform
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from stockade.runtimes.registry import BOX_PATH
from stockade.sandbox import Sandbox, SandboxConfig

# The benchmarks' own sandbox: its own run dir, slot uids and cgroup, so they never collide with a
# service or test suite running on the same host.
BENCH_CONFIG = SandboxConfig(run_dir=Path("/run/stockade-bench"), slots=2, uid_base=65000, cgroup_name="stockade-bench")
# The same sandbox with no box built ahead: every run builds its box on demand.
COLD_CONFIG = SandboxConfig(
    run_dir=Path("/run/stockade-bench-cold"),
    slots=2,
    uid_base=65200,  # 65100+ is bench/api_load.py's service
    cgroup_name="stockade-bench-cold",
    build_ahead=False,
)


def now_ns() -> int:
    return time.perf_counter_ns()


def ms_since(t0_ns: int) -> float:
    return (time.perf_counter_ns() - t0_ns) / 1e6


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """No garbage collection in the benchmark's own process while it times something (it collects
    before): a full collection of a long run's heap took ~60 ms here, and landed in whichever
    requests were in flight, as outliers of the service."""
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


# -- statistics --------------------------------------------------------------------------------


def percentile(samples: Sequence[float], q: float) -> float:
    """q-th percentile (0..100), linear interpolation between closest ranks (numpy's default)."""
    if not samples:
        return math.nan
    xs = sorted(samples)
    pos = (len(xs) - 1) * q / 100
    lo, hi = math.floor(pos), math.ceil(pos)
    return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)


def median(samples: Sequence[float]) -> float:
    return percentile(samples, 50)


def summarize(samples: Sequence[float]) -> dict[str, float]:
    return {
        "n": len(samples),
        "median": median(samples),
        "p95": percentile(samples, 95),
        "p99": percentile(samples, 99),
        "mean": sum(samples) / len(samples) if samples else math.nan,
        "min": min(samples) if samples else math.nan,
        "max": max(samples) if samples else math.nan,
    }


def fmt_ms(value: float, digits: int = 1) -> str:
    return "n/a" if math.isnan(value) else f"{value:.{digits}f}"


# -- processes ---------------------------------------------------------------------------------


@dataclass
class Spawned:
    ms: float  # spawn to exit, output drained
    returncode: int
    stdout: bytes
    stderr: bytes
    timed_out: bool = False


async def spawn_timed(
    argv: Sequence[str],
    *,
    env: dict[str, str],
    cwd: str | Path,
    preexec_fn: Callable[[], None] | None = None,
    stdin: int = asyncio.subprocess.DEVNULL,
    pass_fds: Sequence[int] = (),
    timeout: float | None = None,
) -> Spawned:
    """asyncio subprocess spawn + wait in this process, stdout/stderr piped and drained as the box does.

    With preexec_fn CPython must fork() the whole interpreter; without it, it uses vfork(). After
    `timeout` seconds the whole process group is killed and the result says timed_out."""
    t0 = now_ns()
    proc = await asyncio.create_subprocess_exec(
        *argv,
        stdin=stdin,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env,
        cwd=str(cwd),
        start_new_session=True,
        preexec_fn=preexec_fn,
        pass_fds=tuple(pass_fds),
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout)
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        out, err = await proc.communicate()
        return Spawned(ms_since(t0), -signal.SIGKILL, out, err, timed_out=True)
    ms = ms_since(t0)
    assert proc.returncode is not None
    return Spawned(ms, proc.returncode, out, err)


def bare_env(home: str | Path, tmpdir: str | Path, extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment of a bare (unsandboxed) run: the box's PATH and locale, a private HOME/TMPDIR."""
    return {
        "PATH": BOX_PATH,
        "HOME": str(home),
        "TMPDIR": str(tmpdir),
        "LANG": "C.UTF-8",
        "LC_ALL": "C.UTF-8",
        "TZ": "UTC",
        **(extra or {}),
    }


def start_sandbox(config: SandboxConfig = BENCH_CONFIG) -> Sandbox:
    if os.geteuid() != 0:
        sys.exit("benchmarks need root (the sandbox creates cgroups, tmpfs mounts and per-box uids)")
    sandbox = Sandbox(config)
    sandbox.start()
    return sandbox


# -- host facts and load -----------------------------------------------------------------------


def _first_line(cmd: list[str]) -> str | None:
    if shutil.which(cmd[0]) is None:
        return None
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    text = (out.stdout or out.stderr).strip()
    return text.splitlines()[0] if text else None


def _cpuinfo() -> tuple[str, bool]:
    model, hypervisor = "unknown", False
    with open("/proc/cpuinfo") as f:
        for line in f:
            key, _, value = line.partition(":")
            if key.strip() == "model name" and model == "unknown":
                model = value.strip()
            elif key.strip() == "flags":
                hypervisor = hypervisor or "hypervisor" in value.split()
    return model, hypervisor


def _mem_total_gib() -> float:
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) / 1024 / 1024
    return math.nan


def _os_release() -> str:
    pretty = "unknown"
    with open("/etc/os-release") as f:
        for line in f:
            if line.startswith("PRETTY_NAME="):
                pretty = line.split("=", 1)[1].strip().strip('"')
    with contextlib.suppress(OSError):
        pretty += f" (debian_version {Path('/etc/debian_version').read_text().strip()})"
    return pretty


def cgroup_layout() -> str:
    """unified (v2 only), hybrid (v1 controllers + v2 at /sys/fs/cgroup/unified) or legacy (v1 only)."""
    fstypes: dict[str, str] = {}
    with open("/proc/self/mountinfo") as f:
        for line in f:
            left, _, right = line.partition(" - ")
            fstypes.setdefault(left.split()[4], right.split()[0])
    if fstypes.get("/sys/fs/cgroup") == "cgroup2":
        return "unified (cgroup v2 only)"
    if fstypes.get("/sys/fs/cgroup/unified") == "cgroup2":
        return "hybrid (v1 controllers, empty v2 hierarchy at /sys/fs/cgroup/unified)"
    return "legacy (cgroup v1 only)"


def cgroup_favordynmods() -> list[str]:
    """cgroup mounts carrying favordynmods: while any hierarchy has it, the kernel keeps the global
    threadgroup rwsem in its slow mode, so attaching a task to a cgroup no longer waits for an RCU
    grace period (and fork/exit get slightly dearer). Benchmarks record it: it moves attach times a lot."""
    with open("/proc/self/mounts") as f:
        return [
            parts[1]
            for parts in (line.split() for line in f)
            if parts[2] in ("cgroup", "cgroup2") and "favordynmods" in parts[3].split(",")
        ]


def machine_info(sandbox: Sandbox | None = None) -> dict[str, Any]:
    model, hypervisor = _cpuinfo()
    info: dict[str, Any] = {
        "cpu_model": model,
        "virtualized": hypervisor,
        "cores": os.cpu_count(),
        "ram_gib": round(_mem_total_gib(), 1),
        "kernel": platform.release(),
        "os": _os_release(),
        "cgroup_layout": cgroup_layout(),
        "cgroup_favordynmods": cgroup_favordynmods() or "none",
        "bubblewrap": _first_line(["bwrap", "--version"]),
        "python_bench": platform.python_version(),
        "python_system": _first_line(["/usr/bin/python3", "--version"]),
    }
    if sandbox is not None and sandbox.cgroups is not None:
        info["stockade_cgroup_mode"] = sandbox.cgroups.mode
    return info


def print_machine(info: dict[str, Any]) -> None:
    print("machine: " + ", ".join(f"{k}={v}" for k, v in info.items()))


def _proc_stat_cpu() -> tuple[int, int]:
    """(busy, total) jiffies of all CPUs."""
    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    total = sum(fields[:8])  # guest time is already inside user/nice
    return total - idle, total


class LoadMeter:
    """How busy the host was while a benchmark ran, and how much of that was this process (with its
    reaped children: the bare runs and the bubblewrap trees). Other engineers' jobs share the host,
    so every report carries this. Kernel work done on our behalf in kworkers (cgroup teardown, RCU)
    counts as "others"; the split is approximate."""

    def __init__(self) -> None:
        self.loadavg_start = os.getloadavg()
        self._stat0 = _proc_stat_cpu()
        self._times0 = os.times()
        self._wall0 = time.monotonic()

    def result(self) -> dict[str, Any]:
        busy1, total1 = _proc_stat_cpu()
        busy0, total0 = self._stat0
        t1, t0 = os.times(), self._times0
        wall = time.monotonic() - self._wall0
        cores = os.cpu_count() or 1
        host_busy = (busy1 - busy0) / max(1, total1 - total0) * cores
        own = (t1.user + t1.system + t1.children_user + t1.children_system) - (
            t0.user + t0.system + t0.children_user + t0.children_system
        )
        own_cores = own / wall if wall > 0 else math.nan
        return {
            "wall_s": round(wall, 1),
            "loadavg_start": [round(x, 2) for x in self.loadavg_start],
            "loadavg_end": [round(x, 2) for x in os.getloadavg()],
            "host_busy_cores": round(host_busy, 2),
            "own_busy_cores": round(own_cores, 2),
            "others_busy_cores": round(max(0.0, host_busy - own_cores), 2),
            "cores": cores,
        }


def print_load(load: dict[str, Any]) -> None:
    print(
        f"host load over {load['wall_s']} s: {load['host_busy_cores']} of {load['cores']} cores busy "
        f"(this benchmark ~{load['own_busy_cores']}, others ~{load['others_busy_cores']}); "
        f"loadavg start {load['loadavg_start']}, end {load['loadavg_end']}"
    )


# -- output ------------------------------------------------------------------------------------


def print_table(headers: Sequence[str], rows: Sequence[Sequence[str]], right: Sequence[bool] | None = None) -> None:
    right = right or [i > 0 for i in range(len(headers))]
    widths = [max(len(str(c)) for c in col) for col in zip(headers, *rows, strict=False)]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(
            str(c).rjust(w) if r else str(c).ljust(w) for c, w, r in zip(cells, widths, right, strict=True)
        ).rstrip()

    print(line(headers))
    print("  ".join("-" * w for w in widths))
    for row in rows:
        print(line(row))


def write_json(path: str | Path | None, data: dict[str, Any]) -> None:
    if not path:
        return
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(json.dumps(data, indent=2, default=str) + "\n")
    print(f"wrote {p}")
