"""What the tests' box instances leave on the host, and its removal.

A sandbox instance (in process, or inside a `stockade serve` a test starts) keeps its cgroup parents
(/sys/fs/cgroup/<controller>/.../<cgroup name>) and its run dir across restarts, so that the next start
reaps what a killed one left there. A test's instance has no next start: whoever creates one declares it
(track(): tests/conftest.py does it for every in-process Sandbox.start(), tests/service/live.py for every
server), and the autouse fixtures of tests/conftest.py call sweep() after each test, module and session.
sweep() removes each instance nothing holds any more, and reports what it could not remove, or found
still there: a box cgroup, a mount, a box dir, a toolchain probe dir of a process that has ended.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import tempfile
import time
from pathlib import Path

CGROUP_ROOT = Path("/sys/fs/cgroup")
PROBE_DIRS_WAIT_S = 30.0  # a dead detector's probe dir goes when its version command ends (runtimes/registry.py)

_instances: dict[Path, str] = {}  # run dir -> cgroup name, of the instances not removed yet
_detectors: set[int] = set()  # pids of processes that ran toolchain detection (servers, this one)


def track(run_dir: Path, cgroup_name: str, pid: int | None = None) -> None:
    """Declare an instance a test created; `pid`: the process running it (and detecting toolchains), when
    not this one."""
    _instances[Path(run_dir)] = cgroup_name
    if pid is not None:
        _detectors.add(pid)


def cgroup_dirs(name: str, max_depth: int = 4) -> list[Path]:
    """Every directory named `name` under /sys/fs/cgroup/<hierarchy>/ (a few levels deep: on v1 the memory
    hierarchy may nest a process's cgroups below its session's)."""
    found: list[Path] = []
    for top, dirs, _files in os.walk(CGROUP_ROOT):
        if Path(top).name == name:
            found.append(Path(top))
            dirs[:] = []
        elif len(Path(top).relative_to(CGROUP_ROOT).parts) >= max_depth:
            dirs[:] = []
        else:
            dirs[:] = [d for d in dirs if not d.startswith("box-")]
    return sorted(found)


def in_use(run_dir: Path) -> bool:
    """Whether a live sandbox holds the instance (its flock on the run dir's .lock; see runner.py)."""
    try:
        fd = os.open(run_dir / ".lock", os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)  # our own descriptor: releasing it leaves any other holder's lock alone
    return False


def _mounts_under(path: Path) -> list[str]:
    prefix = f"{path}/"
    with open("/proc/self/mountinfo") as f:
        return [line.split()[4] for line in f if line.split()[4].startswith(prefix)]


def remove(run_dir: Path, cgroup_name: str) -> list[str]:
    """Remove an instance that held no box any more; what was still there, or could not go."""
    problems: list[str] = []
    for d in cgroup_dirs(cgroup_name):
        boxes = sorted(p.name for p in d.iterdir() if p.is_dir())
        if boxes:
            problems.append(f"{d}: box cgroups left: {boxes}")
            continue
        try:
            d.rmdir()
        except OSError as e:  # EBUSY: a process is still in it
            problems.append(f"{d}: cannot remove: {e}")
    if run_dir.exists():
        mounts = _mounts_under(run_dir)
        left = [str(p) for sub in ("boxes", "roots") if (run_dir / sub).is_dir() for p in (run_dir / sub).iterdir()]
        if mounts or left:
            problems.append(f"{run_dir}: mounts left {mounts}, box dirs and roots left {left}")
        else:
            shutil.rmtree(run_dir, onerror=lambda _f, p, e: problems.append(f"{p}: cannot remove: {e[1]}"))
    return problems


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with contextlib.suppress(OSError):
        if Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z":
            return False  # a zombie runs nothing any more
    return True


def probe_dirs(pid: int) -> list[Path]:
    return sorted(Path(tempfile.gettempdir()).glob(f"stockade-detect-{pid}-*"))


def _probe_dir_problems(final: bool) -> list[str]:
    """Probe dirs of ended detectors (and, at the end of the session, of this process) that do not go."""
    done = {pid for pid in _detectors if not _alive(pid)}
    if final:
        done.add(os.getpid())
    deadline = time.monotonic() + PROBE_DIRS_WAIT_S
    while (left := [p for pid in sorted(done) for p in probe_dirs(pid)]) and time.monotonic() < deadline:
        time.sleep(0.1)
    _detectors.difference_update(done - {os.getpid()})
    return [f"toolchain probe dir left: {p}" for p in left]


def sweep(*, final: bool = False) -> list[str]:
    """Remove every tracked instance nothing holds; with `final`, one still held is a problem too."""
    problems: list[str] = []
    for run_dir, cgroup_name in list(_instances.items()):
        if in_use(run_dir):
            if final:
                problems.append(f"{run_dir}: still held at the end of the session")
            continue
        del _instances[run_dir]  # reported once, by the test that left it
        problems += remove(run_dir, cgroup_name)
    return problems + _probe_dir_problems(final)
