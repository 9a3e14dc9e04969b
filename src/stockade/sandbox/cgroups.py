"""Per-box cgroups on the unified (v2) hierarchy or on v1 controllers, behind one interface.

Every box cgroup lives at `<service cgroup>/<name>/box-<id>`, where the service cgroup is read from
/proc/self/cgroup: never at the root of a hierarchy. The box's first process attaches itself (it writes
"0" to each `cgroup.procs` before exec), so nothing of the box ever runs outside its cgroup.
"""

from __future__ import annotations

import contextlib
import errno
import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path

from stockade.sandbox.spec import Limits

V1_CONTROLLERS = ("memory", "pids", "cpu", "cpuacct")
V2_CONTROLLERS = ("memory", "pids", "cpu")
CFS_PERIOD_US = 100_000


class CgroupError(RuntimeError):
    """The host cannot give a box the cgroup it needs; callers fail closed."""


@dataclass(frozen=True)
class CgroupStats:
    cpu_time_us: int
    peak_memory_bytes: int
    oom_kills: int
    pids_limit_hits: int


# Plain descriptors, not Python file objects: a third of the cost, and these run on a run's path.
def _read(path: Path) -> str:
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        chunks = []
        while chunk := os.read(fd, 65536):
            chunks.append(chunk)
        return b"".join(chunks).decode()
    finally:
        os.close(fd)


def _write(path: Path, value: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)  # as open(path, "w")
    try:
        os.write(fd, value.encode())
    finally:
        os.close(fd)


def _to_write(limits: Limits, since: Limits | None) -> set[str]:
    """Which of the cgroup-enforced limits a box must be given: all at creation, else those that differ."""
    names = ("memory_mb", "processes", "cpu_cores")
    return {n for n in names if since is None or getattr(limits, n) != getattr(since, n)}


def _keyed(text: str) -> dict[str, int]:
    """Parse `key value` lines (cpu.stat, memory.events, pids.events, memory.oom_control)."""
    out: dict[str, int] = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[1].lstrip("-").isdigit():
            out[parts[0]] = int(parts[1])
    return out


def _procs(path: Path) -> list[int]:
    try:
        return [int(x) for x in _read(path / "cgroup.procs").split()]
    except FileNotFoundError:
        return []


def _kill_listed(procs_dir: Path, marker: str, deadline_s: float, spare: frozenset[int] = frozenset()) -> bool:
    """SIGKILL every pid listed in procs_dir but `spare` until no other is left. Each pid is pinned with a
    pidfd and re-checked to still belong to the box, so a recycled pid of a host process is never
    signalled."""
    end = time.monotonic() + deadline_s
    while True:
        pids = [p for p in _procs(procs_dir) if p not in spare]
        if not pids:
            return True
        for pid in pids:
            try:
                pidfd = os.pidfd_open(pid)
            except OSError:
                continue
            try:
                with open(f"/proc/{pid}/cgroup") as f:
                    if marker not in f.read():
                        continue
                signal.pidfd_send_signal(pidfd, signal.SIGKILL)
            except OSError:
                pass
            finally:
                os.close(pidfd)
        if time.monotonic() > end:
            return False
        time.sleep(0.002)


def _rmdir_retry(path: Path, deadline_s: float = 2.0) -> None:
    end = time.monotonic() + deadline_s
    while True:
        try:
            path.rmdir()
            return
        except FileNotFoundError:
            return
        except OSError as e:
            # EBUSY until the last exiting task is gone from the cgroup.
            if e.errno != errno.EBUSY or time.monotonic() > end:
                raise
            time.sleep(0.005)


class BoxCgroup:
    """One box's cgroup (one directory on v2, one per controller on v1)."""

    def __init__(self, manager: CgroupManager, name: str, dirs: dict[str, Path]) -> None:
        self.manager = manager
        self.name = name
        self.dirs = dirs  # controller (or "unified") -> directory
        # Accounting files stay open: CPU usage is polled during a run, and each pread at offset 0
        # makes the kernel render a file afresh (~3 us, against ~50 for an open and read).
        self._fds: dict[Path, int] = {}

    @property
    def procs_files(self) -> list[str]:
        return sorted({str(d / "cgroup.procs") for d in self.dirs.values()})

    def kill_and_remove(self) -> None:
        self.close_files()
        self.manager.kill(self)
        for d in set(self.dirs.values()):
            _rmdir_retry(d)

    def stats(self) -> CgroupStats:
        return self.manager.stats(self)

    def cpu_time_us(self) -> int:
        return self.manager.parse_cpu_usage(self.read(self.manager.cpu_usage_file(self)))

    def close_files(self) -> None:
        for fd in self._fds.values():
            os.close(fd)
        self._fds.clear()

    def read(self, path: Path) -> str:
        """An accounting file of this cgroup, read through a descriptor kept open."""
        fd = self._fds.get(path)
        if fd is None:
            fd = self._fds[path] = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        return os.pread(fd, 4096, 0).decode()


class CgroupManager:
    """Base: knows where the service's cgroup is and creates, measures and removes box cgroups."""

    mode = "none"

    def __init__(self, parents: dict[str, Path]) -> None:
        self.parents = parents  # controller -> the `<service>/<name>` directory holding box cgroups

    def describe(self) -> dict[str, object]:
        return {"mode": self.mode, "parents": {k: str(v) for k, v in self.parents.items()}}

    def create(self, box_id: str, limits: Limits) -> BoxCgroup:
        dirs: dict[str, Path] = {}
        try:
            for ctrl, parent in self.parents.items():
                d = parent / f"box-{box_id}"
                if d not in dirs.values():
                    d.mkdir(mode=0o755)
                dirs[ctrl] = d
            box = BoxCgroup(self, box_id, dirs)
            self.apply_limits(box, limits)
            return box
        except OSError as e:
            for d in set(dirs.values()):
                with contextlib.suppress(OSError):
                    d.rmdir()
            raise CgroupError(f"cannot create box cgroup: {e}") from e

    def leftovers(self) -> list[BoxCgroup]:
        """Box cgroups left by an earlier process of this service (killed mid-run)."""
        names: set[str] = set()
        for parent in self.parents.values():
            if parent.is_dir():
                names |= {p.name[4:] for p in parent.iterdir() if p.is_dir() and p.name.startswith("box-")}
        return [BoxCgroup(self, n, {c: p / f"box-{n}" for c, p in self.parents.items()}) for n in sorted(names)]

    def apply_limits(self, box: BoxCgroup, limits: Limits, *, since: Limits | None = None) -> None:
        """Write the box's memory, process and CPU bandwidth limits; with `since` (the limits it has),
        only those that differ: each cgroupfs write costs ~0.1 ms on a run's path."""
        raise NotImplementedError

    def set_cpu_weight(self, box: BoxCgroup, *, running: bool) -> None:
        """A box being built ahead waits at the lowest CPU weight, so building it takes only CPU that
        running boxes and the supervisor leave idle; its run gets the normal weight back."""
        raise NotImplementedError

    def stats(self, box: BoxCgroup) -> CgroupStats:
        raise NotImplementedError

    def cpu_usage_file(self, box: BoxCgroup) -> Path:
        raise NotImplementedError

    @staticmethod
    def parse_cpu_usage(text: str) -> int:
        """Microseconds of CPU from the contents of cpu_usage_file."""
        raise NotImplementedError

    def kill(self, box: BoxCgroup) -> None:
        raise NotImplementedError

    def pids_file(self, box: BoxCgroup, name: str) -> Path:
        """A file of the box's pids controller (pids.current, pids.events): its init reads them to refuse
        forks at the limit (init.c)."""
        return box.dirs["unified" if "unified" in box.dirs else "pids"] / name

    def kill_sparing(self, box: BoxCgroup, spare: frozenset[int]) -> None:
        """Kill every process of the box but `spare` (the supervisor's own child, bubblewrap, which
        then reaps the box's init and exits instead of leaving it to the host's init as a zombie)."""
        procs_dir = next(iter(box.dirs.values()))
        if not _kill_listed(procs_dir, f"box-{box.name}", 5.0, spare):
            raise CgroupError(f"box {box.name}: processes survive SIGKILL")


class CgroupV2(CgroupManager):
    mode = "v2"

    def apply_limits(self, box: BoxCgroup, limits: Limits, *, since: Limits | None = None) -> None:
        d = box.dirs["unified"]
        if since is None:
            if (d / "memory.swap.max").exists():
                _write(d / "memory.swap.max", "0")
            # One OOM kill takes the whole box, so the verdict is never a half-dead tree.
            _write(d / "memory.oom.group", "1")
        changed = _to_write(limits, since)
        if "memory_mb" in changed:
            # Socket buffers are charged here too on v2 (unless cgroup.memory=nosocket, which detect refuses).
            _write(d / "memory.max", str(limits.memory_mb * 1024 * 1024))
        if "processes" in changed:
            _write(d / "pids.max", str(limits.processes))
        if "cpu_cores" in changed:
            _write(d / "cpu.max", f"{int(limits.cpu_cores * CFS_PERIOD_US)} {CFS_PERIOD_US}")

    def set_cpu_weight(self, box: BoxCgroup, *, running: bool) -> None:
        _write(box.dirs["unified"] / "cpu.weight", "100" if running else "1")

    def cpu_usage_file(self, box: BoxCgroup) -> Path:
        return box.dirs["unified"] / "cpu.stat"

    @staticmethod
    def parse_cpu_usage(text: str) -> int:
        return _keyed(text).get("usage_usec", 0)

    def stats(self, box: BoxCgroup) -> CgroupStats:
        d = box.dirs["unified"]
        try:
            peak = int(box.read(d / "memory.peak"))
        except FileNotFoundError:  # before Linux 5.19
            peak = int(box.read(d / "memory.current"))
        return CgroupStats(
            cpu_time_us=box.cpu_time_us(),
            peak_memory_bytes=peak,
            oom_kills=_keyed(box.read(d / "memory.events")).get("oom_kill", 0),
            pids_limit_hits=_keyed(box.read(d / "pids.events")).get("max", 0),
        )

    def kill(self, box: BoxCgroup) -> None:
        d = box.dirs["unified"]
        if (d / "cgroup.kill").exists():
            with contextlib.suppress(FileNotFoundError):
                _write(d / "cgroup.kill", "1")
        if not _kill_listed(d, f"box-{box.name}", 5.0):
            raise CgroupError(f"box {box.name}: processes survive SIGKILL")


class CgroupV1(CgroupManager):
    mode = "v1"

    def apply_limits(self, box: BoxCgroup, limits: Limits, *, since: Limits | None = None) -> None:
        mem, cpu = box.dirs["memory"], box.dirs["cpu"]
        if since is None:
            with contextlib.suppress(OSError):
                _write(mem / "memory.swappiness", "0")
            _write(cpu / "cpu.cfs_period_us", str(CFS_PERIOD_US))
        changed = _to_write(limits, since)
        if "memory_mb" in changed:
            limit = limits.memory_mb * 1024 * 1024
            files = ["memory.limit_in_bytes"]
            if (mem / "memory.memsw.limit_in_bytes").exists():
                files.append("memory.memsw.limit_in_bytes")  # RAM + swap = RAM: swap 0
                # The kernel keeps RAM <= RAM + swap at every write: raising a box's limit goes swap-first.
                # What the box has is `since` when given (no read on a run's path).
                current = since.memory_mb * 1024 * 1024 if since else int(_read(mem / "memory.memsw.limit_in_bytes"))
                if limit > current:
                    files.reverse()
            for name in files:
                _write(mem / name, str(limit))
            # v1 charges socket buffers to a counter of their own, off unless a limit is written: the box's
            # sockets may then hold at most its memory limit of kernel memory (issue 27, docs/sandbox.md).
            _write(mem / "memory.kmem.tcp.limit_in_bytes", str(limit))
        if "processes" in changed:
            _write(box.dirs["pids"] / "pids.max", str(limits.processes))
        if "cpu_cores" in changed:
            _write(cpu / "cpu.cfs_quota_us", str(int(limits.cpu_cores * CFS_PERIOD_US)))

    def set_cpu_weight(self, box: BoxCgroup, *, running: bool) -> None:
        _write(box.dirs["cpu"] / "cpu.shares", "1024" if running else "2")

    def cpu_usage_file(self, box: BoxCgroup) -> Path:
        return box.dirs["cpuacct"] / "cpuacct.usage"

    @staticmethod
    def parse_cpu_usage(text: str) -> int:
        return int(text) // 1000

    def stats(self, box: BoxCgroup) -> CgroupStats:
        mem = box.dirs["memory"]
        try:
            peak = int(box.read(mem / "memory.memsw.max_usage_in_bytes"))
        except FileNotFoundError:  # no swap accounting
            peak = int(box.read(mem / "memory.max_usage_in_bytes"))
        return CgroupStats(
            cpu_time_us=box.cpu_time_us(),
            peak_memory_bytes=peak,
            oom_kills=_keyed(box.read(mem / "memory.oom_control")).get("oom_kill", 0),
            pids_limit_hits=_keyed(box.read(box.dirs["pids"] / "pids.events")).get("max", 0),
        )

    def kill(self, box: BoxCgroup) -> None:
        # v1 has no cgroup.kill: SIGKILL every member (pids cannot grow past pids.max meanwhile).
        if not _kill_listed(box.dirs["pids"], f"box-{box.name}", 5.0):
            raise CgroupError(f"box {box.name}: processes survive SIGKILL")


@dataclass(frozen=True)
class Mount:
    fstype: str
    mountpoint: Path
    options: frozenset[str]


def _mounts(mountinfo: str) -> list[Mount]:
    out = []
    for line in mountinfo.splitlines():
        left, _, right = line.partition(" - ")
        fields, rfields = left.split(), right.split()
        if len(fields) < 5 or len(rfields) < 3:
            continue
        out.append(Mount(rfields[0], Path(fields[4]), frozenset(rfields[2].split(","))))
    return out


def _own_paths(proc_self_cgroup: str) -> dict[str, str]:
    """controller -> own cgroup path; the unified hierarchy is keyed "unified"."""
    out: dict[str, str] = {}
    for line in proc_self_cgroup.splitlines():
        _hid, ctrls, path = line.split(":", 2)
        if ctrls == "":
            out["unified"] = path
        for c in ctrls.split(","):
            if c:
                out[c] = path
    return out


def _service_dir(mount: Path, own: str, name: str) -> Path:
    own_dir = mount / own.lstrip("/")
    # On v2 a restarted service may already sit in the leaf we moved it into.
    if own_dir.name == "supervisor" and (own_dir.parent / name).is_dir():
        own_dir = own_dir.parent
    return own_dir


def _enable_v2_controllers(own_dir: Path, parent: Path) -> None:
    """v2 forbids processes in a cgroup that delegates controllers ("no internal processes"), so the
    service's own processes move into a `supervisor` leaf first, unless we sit at the root."""
    want = " ".join(f"+{c}" for c in V2_CONTROLLERS)
    enabled = set(_read(own_dir / "cgroup.subtree_control").split())
    if not set(V2_CONTROLLERS) <= enabled:
        is_root = not (own_dir / "cgroup.type").exists()
        if not is_root and _procs(own_dir):
            leaf = own_dir / "supervisor"
            leaf.mkdir(exist_ok=True)
            for pid in _procs(own_dir):
                with contextlib.suppress(OSError):
                    _write(leaf / "cgroup.procs", str(pid))
        _write(own_dir / "cgroup.subtree_control", want)
    parent.mkdir(exist_ok=True)
    _write(parent / "cgroup.subtree_control", want)


def socket_accounting_off(cmdline: str) -> bool:
    """`cgroup.memory=nosocket` on the kernel command line stops charging socket buffers to memory
    cgroups, on v1 and v2 alike: a box's sockets would then hold host memory past its limit."""
    for word in cmdline.split():
        if word == "--":  # what follows is init's, not the kernel's
            break
        key, _, value = word.partition("=")
        if key == "cgroup.memory" and "nosocket" in value.split(","):
            return True
    return False


def detect(
    name: str = "stockade",
    *,
    mountinfo_path: str = "/proc/self/mountinfo",
    proc_self_cgroup_path: str = "/proc/self/cgroup",
    cmdline_path: str = "/proc/cmdline",
    root_override: Path | None = None,
) -> CgroupManager:
    """Choose v2 when the unified hierarchy carries memory, pids and cpu; else v1 controllers.

    `root_override` replaces every mount point (tests run against a fake cgroupfs tree).
    Raises CgroupError, naming what is missing, when neither can confine a box.
    """
    if socket_accounting_off(Path(cmdline_path).read_text()):
        raise CgroupError("the kernel runs with cgroup.memory=nosocket: box socket memory would be unbounded")
    mounts = _mounts(Path(mountinfo_path).read_text())
    own = _own_paths(Path(proc_self_cgroup_path).read_text())

    def where(m: Mount) -> Path:
        return root_override / m.mountpoint.relative_to("/") if root_override else m.mountpoint

    problems: list[str] = []
    for m in mounts:
        if m.fstype != "cgroup2" or "unified" not in own:
            continue
        mp = where(m)
        available = set(_read(mp / "cgroup.controllers").split())
        if set(V2_CONTROLLERS) <= available:
            own_dir = _service_dir(mp, own["unified"], name)
            parent = own_dir / name
            try:
                _enable_v2_controllers(own_dir, parent)
            except OSError as e:
                raise CgroupError(f"cgroup v2 at {own_dir}: cannot delegate controllers: {e}") from e
            return CgroupV2({"unified": parent})
        problems.append(f"cgroup v2 at {mp} lacks {sorted(set(V2_CONTROLLERS) - available)}")

    parents: dict[str, Path] = {}
    for ctrl in V1_CONTROLLERS:
        m1 = next((m for m in mounts if m.fstype == "cgroup" and ctrl in m.options), None)
        if m1 is None or ctrl not in own:
            problems.append(f"cgroup v1 controller {ctrl} not mounted")
            continue
        parents[ctrl] = _service_dir(where(m1), own[ctrl], name) / name
    if len(parents) == len(V1_CONTROLLERS):
        try:
            for p in set(parents.values()):
                p.mkdir(exist_ok=True)
        except OSError as e:
            raise CgroupError(f"cgroup v1: cannot create {p}: {e}") from e
        return CgroupV1(parents)
    raise CgroupError("no usable cgroup hierarchy: " + "; ".join(problems))
