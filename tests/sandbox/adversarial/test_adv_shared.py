"""The second attack round on what boxes share (issue 27, sections 2 to 4): watchers and locks on the
shared read-only view, and the OOM score and scheduling priority the launcher gives a box.

The read-only view (/usr, the toolchains, the sandbox root's /etc) shares its inodes with the host and
with every other box, so anything that hangs off an inode (watches, locks) reaches them too."""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import secrets
import shutil
import subprocess
import sysconfig
from collections.abc import Iterator
from pathlib import Path

import pytest
from stockade_adv_harness import SENTINEL_DIR, describe, parse_kv

from stockade.sandbox import BoxResult, BoxSpec, InputFile, SandboxConfig, Status, check

# -- section 2: inotify and fanotify ---------------------------------------------------------------------


async def test_no_watch_on_any_file_can_be_had(adv):
    """inotify and fanotify report other processes' opens of a watched inode, and every inode of the
    read-only view is shared; seccomp cannot tell paths apart, so both are refused as a whole (no
    runtime needs them to start: docs/sandbox.md)."""
    r = await adv.run_c("sh_watch")
    assert r.status is Status.OK, describe(r)
    out = parse_kv(r.stdout)
    for key in ("inotify_init", "inotify_init1", "inotify_add_watch_shared", "inotify_add_watch_own_tmp"):
        assert out[key] == "ENOSYS", (key, describe(r))
    assert out["fanotify_init"] == "EPERM" and out["fanotify_mark"] == "EPERM", describe(r)


async def test_python_gets_a_plain_error_from_inotify(adv):
    """What a runtime sees: an OSError it can handle (tail -f and file watchers fall back to polling)."""
    code = (
        "import ctypes, os\n"
        "libc = ctypes.CDLL(None, use_errno=True)\n"
        "fd = libc.inotify_init1(0)\n"
        "print('fd', fd, os.strerror(ctypes.get_errno()))\n"
    )
    r = await adv.run_spec(BoxSpec(argv=["/usr/bin/python3", "-I", "-c", code], limits=adv.limits()))
    assert r.status is Status.OK and r.stdout == b"fd -1 Function not implemented\n", describe(r)


# -- section 3: OOM score, realtime priority, nice -------------------------------------------------------

CHECK_CONFIG = SandboxConfig(
    run_dir=Path("/run/stockade-adv-check"), slots=1, uid_base=62090, cgroup_name="stockade-adv-check"
)


async def test_oom_score_is_pinned_or_the_check_says_why_not(adv):
    """The launcher writes oom_score_adj 1000. With CAP_SYS_RESOURCE that write pins the kernel's
    oom_score_adj_min, and the box cannot go below it; without it (this VM: root, but the capability is
    not in its bounding set) the box can, and `stockade sandbox check` must warn, naming the cause."""
    pinnable = check._has_capability(check.CAP_SYS_RESOURCE)
    r = await adv.run_c("sh_sched")
    assert r.status is Status.OK, describe(r)
    out = parse_kv(r.stdout)
    assert out["oom_score_adj_before"] == "1000", describe(r)
    assert out["oom_adj_legacy_lower"] == "EACCES", describe(r)  # the legacy file never lowers unprivileged
    if pinnable:
        assert out["oom_score_adj_lower"] == "EACCES" and out["oom_score_adj_after"] == "1000", describe(r)
    else:
        assert out["oom_score_adj_lower"] == "OK" and out["oom_score_adj_after"] == "0", describe(r)
    report = await check.check_host(CHECK_CONFIG)
    assert report.ok, report.problems
    assert report.facts["oom_score_pinned"] is pinnable, report.facts
    oom_warnings = [w for w in report.warnings if "oom_score_adj" in w]
    if pinnable:
        assert oom_warnings == [], report.warnings
    else:
        assert len(oom_warnings) == 1 and "lacks CAP_SYS_RESOURCE" in oom_warnings[0], report.warnings


async def test_realtime_and_negative_nice_are_refused_whatever_the_host_allows(adv):
    """RLIMIT_RTPRIO and RLIMIT_NICE are 0 in every box. (This VM's own hard limits are 0 too, so here the
    test guards the invariant; on a host that hands the service LimitRTPRIO= it is the launcher's.)"""
    r = await adv.run_c("sh_sched")
    assert r.status is Status.OK, describe(r)
    out = parse_kv(r.stdout)
    for key in ("rtprio_soft", "rtprio_hard", "nice_soft", "nice_hard"):
        assert out[key] == "0", (key, describe(r))
    assert out["raise_rtprio"] == "EPERM", describe(r)
    assert out["sched_fifo"] == out["sched_rr"] == "EPERM", describe(r)
    assert out["setpriority_minus20"] == "EACCES" and out["setpriority_plus5"] == "OK", describe(r)


# -- section 4: locks on shared files ---------------------------------------------------------------------


def _toolchain_dirs() -> list[str]:
    """Directories whose files the benign box below reads: interpreters, libc, gcc's programs, headers."""
    gcc = subprocess.run(["gcc", "-print-prog-name=cc1"], capture_output=True, text=True, check=True).stdout.strip()
    dirs = ["/usr/bin", "/usr/lib/x86_64-linux-gnu", sysconfig.get_paths()["stdlib"], "/usr/include", "/etc"]
    return [d for d in dict.fromkeys([*dirs, os.path.dirname(gcc)]) if os.path.isdir(d)]


def _key_files() -> list[Path]:
    """Files the benign box certainly uses; the test waits until the hostile box has locked all of them."""
    gcc = subprocess.run(["gcc", "-print-prog-name=cc1"], capture_output=True, text=True, check=True).stdout.strip()
    found = ["/usr/bin/python3", shutil.which("gcc"), gcc, "/usr/lib/x86_64-linux-gnu/libc.so.6"]
    return [Path(os.path.realpath(p)) for p in found if p and os.path.exists(p)]


def _flock_writers() -> set[tuple[int, int, int]]:
    """(major, minor, inode) of every exclusive flock() on the host (/proc/locks)."""
    held = set()
    for line in Path("/proc/locks").read_text().splitlines():
        fields = line.split()
        if len(fields) >= 6 and fields[1] == "FLOCK" and fields[3] == "WRITE":
            major, minor, ino = fields[5].split(":")
            held.add((int(major, 16), int(minor, 16), int(ino)))
    return held


def _inode(path: Path) -> tuple[int, int, int]:
    st = os.stat(path)
    return os.major(st.st_dev), os.minor(st.st_dev), st.st_ino


def _host_can_lock(path: Path) -> bool:
    """Whether a host process gets both an exclusive flock and a POSIX write lock without waiting."""
    fd = os.open(path, os.O_RDWR | os.O_CLOEXEC)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except OSError:
        return False
    finally:
        os.close(fd)  # drops both


@pytest.fixture
def shared_files() -> Iterator[tuple[Path, Path]]:
    """Two files of the shared view (the sentinel dir is under /usr, bound into every box)."""
    tag = secrets.token_hex(6)
    lock, go = SENTINEL_DIR / f"lock-{tag}", SENTINEL_DIR / f"go-{tag}"
    for p in (lock, go):
        p.write_bytes(b"shared\n")
        p.chmod(0o644)
    yield lock, go
    for p in (lock, go):
        with contextlib.suppress(FileNotFoundError):
            p.unlink()


async def test_locks_on_shared_files_stall_no_other_box_and_end_with_the_box(adv, shared_files):
    """Residual risk (docs/sandbox.md): a box may flock() or read-lock files of the shared view, and a
    host process's non-blocking lock of such a file fails while the box lives. What this shows: a box
    holding locks on every file of the toolchain directories stalls neither a second box's Python and
    gcc (no toolchain locks shared files) nor the supervisor, and its locks end with it."""
    lock, go = shared_files
    hostile = adv.c_spec(
        "sh_lock", str(lock), str(go), *_toolchain_dirs(), open_files=16384, memory_mb=256, wall_ms=60_000
    )
    holder = asyncio.ensure_future(adv.run_spec(hostile))
    try:
        await _while_locked(adv, holder, lock)
    finally:
        r = await _signal_and_wait(holder, go)
    assert r.status is Status.OK, describe(r)
    out = parse_kv(r.stdout)
    assert out["flock_ex"] == "OK" and out["posix_read_lock"] == "OK", describe(r)
    assert int(out["locked"]) >= 1000 and out["host_signal"] == "EAGAIN", describe(r)
    assert {_inode(p) for p in [lock, *_key_files()]}.isdisjoint(_flock_writers())
    assert _host_can_lock(lock)


async def _while_locked(adv, holder: asyncio.Future[BoxResult], lock: Path) -> None:
    wanted = {_inode(p) for p in [lock, *_key_files()]}
    while not wanted <= _flock_writers() and not holder.done():
        await asyncio.sleep(0.01)
    assert not holder.done(), describe(holder.result())
    assert not _host_can_lock(lock)  # the reach: the host's own lock of the file fails meanwhile

    hello = InputFile("hello.c", b'#include <stdio.h>\nint main(void) { puts("hi"); return 0; }\n')
    build = BoxSpec(
        argv=["/bin/sh", "-c", "gcc -o hello hello.c && ./hello"],
        files=[hello],
        limits=adv.limits(cpu_ms=10_000, wall_ms=30_000, memory_mb=512, processes=64),
    )
    python = BoxSpec(argv=["/usr/bin/python3", "-I", "-c", "import json; print(json.dumps([1]))"], limits=adv.limits())
    built, ran = await adv.run_spec(build), await adv.run_spec(python)
    assert built.status is Status.OK and built.stdout == b"hi\n", describe(built)
    assert ran.status is Status.OK and ran.stdout == b"[1]\n", describe(ran)
    assert not holder.done() and not _host_can_lock(lock)  # both ran while every lock was held


async def _signal_and_wait(holder: asyncio.Future[BoxResult], go: Path) -> BoxResult:
    """Take a lock on `go`: the box sees its probe fail and exits; then its result."""
    fd = os.open(go, os.O_RDONLY | os.O_CLOEXEC)
    try:
        while not holder.done():  # the box's probe holds a shared lock for an instant at a time
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                await asyncio.sleep(0.005)
        return await holder
    finally:
        os.close(fd)
