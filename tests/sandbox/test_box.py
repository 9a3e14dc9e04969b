"""A real box, end to end: verdicts, accounting, files in and out, and nothing left behind."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from stockade.sandbox import (
    BoxSpec,
    CallerRuns,
    InputFile,
    Limits,
    Sandbox,
    SandboxConfig,
    Status,
    TimeoutKind,
    hostfs,
)
from stockade.sandbox import box as box_module
from stockade.sandbox.cgroups import BoxCgroup, CgroupError

PY = "/usr/bin/python3"
CONFIG = SandboxConfig(run_dir=Path("/run/stockade-t-box"), slots=2, uid_base=62000, cgroup_name="stockade-t-box")
SMALL = Limits(cpu_ms=1000, wall_ms=3000, memory_mb=64, processes=16, output_kb=64, file_size_kb=256, tmpfs_mb=8)


@pytest.fixture(scope="module")
def sandbox() -> Iterator[Sandbox]:
    sb = Sandbox(CONFIG)
    sb.start()
    yield sb
    sb.close()
    assert f"{CONFIG.run_dir}/" not in Path("/proc/self/mountinfo").read_text()  # its roots went too


def assert_clean(sb: Sandbox) -> None:
    sb.settle()  # boxes built ahead must leave nothing behind either
    assert sb.cgroups is not None
    for parent in sb.cgroups.parents.values():
        assert not [p for p in parent.iterdir() if p.name.startswith("box-")]
    assert list((CONFIG.run_dir / "boxes").iterdir()) == []
    assert f"{CONFIG.run_dir}/boxes/" not in Path("/proc/self/mountinfo").read_text()


async def py(sb: Sandbox, code: str, **kw: object) -> object:
    spec = BoxSpec(argv=[PY, "-c", textwrap.dedent(code)], limits=kw.pop("limits", SMALL), **kw)  # type: ignore[arg-type]
    return await sb.run(spec)


async def test_ok_with_stdout_stderr_and_accounting(sandbox: Sandbox) -> None:
    r = await sandbox.run(BoxSpec(argv=[PY, "-c", "import sys; print(21*2); print('e', file=sys.stderr)"]))
    assert (r.status, r.exit_code, r.signal) == (Status.OK, 0, None)
    assert (r.stdout, r.stderr) == (b"42\n", b"e\n")
    assert r.cpu_time_ms > 0 and r.wall_time_ms >= r.cpu_time_ms // 2 and r.peak_memory_kb > 1000
    assert_clean(sandbox)


async def test_stderr_to_stdout_is_one_stream_in_write_order(sandbox: Sandbox) -> None:
    code = "import sys\nfor i in range(3):\n    print(i, flush=True); print('e', i, file=sys.stderr, flush=True)"
    r = await py(sandbox, code, stderr_to_stdout=True)
    assert (r.status, r.stdout, r.stderr) == (Status.OK, b"0\ne 0\n1\ne 1\n2\ne 2\n", b"")  # type: ignore[attr-defined]


async def test_exit_code_and_signal(sandbox: Sandbox) -> None:
    r = await py(sandbox, "raise SystemExit(3)")
    assert (r.status, r.exit_code) == (Status.RUNTIME_ERROR, 3)  # type: ignore[attr-defined]
    r = await py(sandbox, "import os; os.kill(os.getpid(), 11)")
    assert (r.status, r.exit_code, r.signal) == (Status.RUNTIME_ERROR, None, signal.SIGSEGV)  # type: ignore[attr-defined]


async def test_missing_command_is_the_programs_failure_not_ours(sandbox: Sandbox) -> None:
    r = await sandbox.run(BoxSpec(argv=["/usr/bin/does-not-exist"]))
    assert (r.status, r.exit_code) == (Status.RUNTIME_ERROR, 127)
    assert b"cannot execute /usr/bin/does-not-exist" in r.stderr


async def test_stdin_files_in_and_collected_out(sandbox: Sandbox) -> None:
    code = """
        import os, sys
        data = sys.stdin.read()
        os.makedirs('out/deep', exist_ok=True)
        open('out/deep/r.txt', 'w').write(data.upper() + open('src/in.txt').read())
        os.symlink('/etc/passwd', 'link')
        os.mkfifo('fifo')
        print(os.access('src/run.sh', os.X_OK))
    """
    r = await sandbox.run(
        BoxSpec(
            argv=[PY, "-c", textwrap.dedent(code)],
            stdin=b"hello",
            files=[InputFile("src/in.txt", b"!"), InputFile("src/run.sh", b"#!/bin/sh\n", executable=True)],
            limits=SMALL,
            collect_files=True,
        )
    )
    assert r.status is Status.OK, r.stderr
    assert r.stdout == b"True\n"
    got = {f.path: f.content for f in r.files}
    assert got["out/deep/r.txt"] == b"HELLO!"
    assert got["src/in.txt"] == b"!"
    assert [f.executable for f in r.files if f.path == "src/run.sh"] == [True]
    assert sorted(r.files_skipped) == ["fifo", "link"]  # never followed, never opened


async def test_an_input_still_open_for_writing_elsewhere_for_a_moment_is_executed_once_it_is_not(
    sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Any process forked on the host while the service writes an input holds a copy of its descriptor
    until it execs; the command's exec then fails with ETXTBSY. Held here for 50 ms on purpose."""
    write_inputs = hostfs.write_inputs
    holders: list[threading.Thread] = []

    def write_and_hold(box_dir: Path, files: list[InputFile], uid: int, gid: int) -> None:
        write_inputs(box_dir, files, uid, gid)
        fd = os.open(box_dir / "main", os.O_WRONLY | os.O_CLOEXEC)
        holders.append(threading.Timer(0.05, os.close, (fd,)))
        holders[-1].start()

    monkeypatch.setattr(hostfs, "write_inputs", write_and_hold)
    r = await sandbox.run(
        BoxSpec(argv=["./main"], files=[InputFile("main", b"#!/bin/sh\necho ran\n", executable=True)], limits=SMALL)
    )
    assert (r.status, r.stdout, r.stderr) == (Status.OK, b"ran\n", b"")
    assert len(holders) == 1 and not holders[0].is_alive()  # it ran once the descriptor was closed


async def test_memory_limit(sandbox: Sandbox) -> None:
    r = await py(sandbox, "x = bytearray(200 * 1024 * 1024)")
    assert r.status is Status.MEMORY_LIMIT and r.oom_killed  # type: ignore[attr-defined]
    assert r.peak_memory_kb >= 60 * 1024  # type: ignore[attr-defined]


async def test_cpu_timeout_counts_the_whole_tree(sandbox: Sandbox) -> None:
    code = """
        import os
        for _ in range(2):
            if os.fork() == 0:
                break
        while True:
            pass
    """
    limits = SMALL.with_overrides(cpu_cores=2.0, cpu_ms=600, wall_ms=5000)
    r = await py(sandbox, code, limits=limits)
    assert (r.status, r.timeout_kind) == (Status.TIMEOUT, TimeoutKind.CPU)  # type: ignore[attr-defined]
    assert r.cpu_time_ms >= 600  # type: ignore[attr-defined]


async def test_wall_timeout_for_a_sleeper(sandbox: Sandbox) -> None:
    r = await sandbox.run(BoxSpec(argv=["/bin/sleep", "30"], limits=SMALL.with_overrides(wall_ms=500)))
    assert (r.status, r.timeout_kind) == (Status.TIMEOUT, TimeoutKind.WALL)
    assert 500 <= r.wall_time_ms < 2000
    assert_clean(sandbox)


async def test_output_limit_keeps_the_prefix(sandbox: Sandbox) -> None:
    r = await py(sandbox, "import sys\nwhile True: sys.stdout.write('y' * 4096)")
    assert r.status is Status.OUTPUT_LIMIT and r.stdout_truncated  # type: ignore[attr-defined]
    assert r.stdout == b"y" * (64 * 1024)  # type: ignore[attr-defined]


async def test_file_size_limit_by_signal(sandbox: Sandbox) -> None:
    code = "import signal; signal.signal(signal.SIGXFSZ, signal.SIG_DFL); open('big', 'wb').write(b'x' * 2**20)"
    r = await py(sandbox, code)
    assert r.status is Status.FILE_SIZE_LIMIT and r.signal == signal.SIGXFSZ  # type: ignore[attr-defined]


async def test_file_size_limit_when_the_runtime_ignores_the_signal(sandbox: Sandbox) -> None:
    r = await py(sandbox, "open('/tmp/big', 'wb').write(b'x' * 2**20)")  # Python ignores SIGXFSZ: EFBIG
    assert r.status is Status.FILE_SIZE_LIMIT and r.exit_code == 1 and b"File too large" in r.stderr  # type: ignore[attr-defined]
    r = await py(sandbox, "open('/tmp/small', 'wb').write(b'x' * 10); raise SystemExit(1)")
    assert r.status is Status.RUNTIME_ERROR  # type: ignore[attr-defined]


async def test_process_limit(sandbox: Sandbox) -> None:
    code = """
        import os, errno
        try:
            for _ in range(100):
                if os.fork() == 0:
                    os.pause()
        except OSError as e:
            print(errno.errorcode[e.errno])
    """
    r = await py(sandbox, code)
    assert r.status is Status.OK and r.stdout == b"EAGAIN\n" and r.pids_limit_hit  # type: ignore[attr-defined]


async def test_syscall_kill_is_its_own_verdict(sandbox: Sandbox) -> None:
    r = await py(sandbox, "import ctypes; ctypes.CDLL(None).syscall(246, 0, 0, 0, 0)")  # kexec_load
    assert (r.status, r.signal) == (Status.SYSCALL_BLOCKED, signal.SIGSYS)  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("code", "status"),
    [
        (152, Status.RUNTIME_ERROR),
        (153, Status.RUNTIME_ERROR),
        (159, Status.RUNTIME_ERROR),
        (137, Status.RUNTIME_ERROR),
    ],
)
async def test_exit_status_above_128_is_an_exit_not_a_signal(sandbox: Sandbox, code: int, status: Status) -> None:
    r = await sandbox.run(BoxSpec(argv=["/bin/sh", "-c", f"exit {code}"], limits=SMALL))
    assert (r.status, r.exit_code, r.signal) == (status, code, None)


async def test_a_killed_command_reports_its_signal(sandbox: Sandbox) -> None:
    r = await sandbox.run(BoxSpec(argv=["/bin/sh", "-c", "kill -TERM $$"], limits=SMALL))
    assert (r.status, r.exit_code, r.signal) == (Status.RUNTIME_ERROR, None, signal.SIGTERM)


def slot_processes(sb: Sandbox, command: bytes) -> list[int]:
    """Live processes of the sandbox's slot uids running `command`."""
    found = []
    for uid in range(sb.config.uid_base, sb.config.uid_base + sb.slots_total):
        for pid in live_processes_of(uid):
            try:
                if Path(f"/proc/{pid}/cmdline").read_bytes().startswith(command):
                    found.append(pid)
            except FileNotFoundError:
                pass  # exited meanwhile
    return found


async def test_the_run_ends_with_its_command_and_takes_the_rest_of_the_box_with_it(sandbox: Sandbox) -> None:
    """What the command leaves running (holding its stdout, or detached from it) is dead by the time
    the result is back, not waited for (that would be a wall timeout). Output written before is kept."""
    for leftover in ("(sleep 30; echo never) &", "(setsid sleep 30 >/dev/null 2>&1 &) ;"):
        r = await sandbox.run(BoxSpec(argv=["/bin/sh", "-c", f"echo before; {leftover} exit 3"], limits=SMALL))
        assert (r.status, r.exit_code, r.stdout) == (Status.RUNTIME_ERROR, 3, b"before\n"), r
        left = slot_processes(sandbox, b"sleep\0")
        assert left == [], [Path(f"/proc/{pid}/status").read_text() for pid in left]
    assert_clean(sandbox)


async def test_same_limits_same_verdict(sandbox: Sandbox) -> None:
    results = [await py(sandbox, "import socket; print(socket.gethostname())") for _ in range(3)]
    assert {(r.status, r.stdout) for r in results} == {(Status.OK, b"stockade\n")}  # type: ignore[attr-defined]


async def warm(sb: Sandbox) -> None:
    """One run per slot (after settle() these build their boxes on demand); the loop then tears each
    down and builds its slot's next box."""
    for _ in range(sb.slots_total):
        await sb.run(BoxSpec(argv=["/bin/true"]))
    await sb.recycled()
    assert len(sb.ready_box_ids) == sb.slots_total


async def test_each_run_takes_a_box_built_ahead_and_no_box_is_reused(sandbox: Sandbox) -> None:
    await warm(sandbox)
    seen: set[str] = set()
    for _ in range(4):
        ready = sandbox.ready_box_ids
        assert len(ready) == CONFIG.slots
        r = await py(
            sandbox,
            "import os; print(sorted(os.listdir('/box')), sorted(os.listdir('/tmp')));"
            "open('/box/mark', 'w').write('x'); open('/tmp/mark', 'w').write('x')",
        )
        assert r.status is Status.OK and r.stdout == b"[] []\n", r  # nothing of the previous run
        assert r.box_id in ready and r.box_id not in seen
        seen.add(r.box_id)
        await sandbox.recycled()
        assert r.box_id not in sandbox.ready_box_ids
    assert_clean(sandbox)


async def test_a_box_built_ahead_takes_the_runs_own_limits(sandbox: Sandbox) -> None:
    await warm(sandbox)
    ready = sandbox.ready_box_ids
    tight = Limits(cpu_ms=1000, wall_ms=3000, memory_mb=32, processes=8, tmpfs_mb=2, tmpfs_inodes=64, open_files=20)
    code = """
        import resource
        print(resource.getrlimit(resource.RLIMIT_NOFILE), resource.getrlimit(resource.RLIMIT_NPROC))
        try:
            open('/box/big', 'wb').write(b'x' * 3 * 1024 * 1024)
        except OSError as e:
            print('tmpfs', e.errno, flush=True)
        b = bytearray(64 * 1024 * 1024)
        """
    r = await py(sandbox, code, limits=tight)
    assert r.box_id in ready
    assert r.status is Status.MEMORY_LIMIT, r
    assert r.stdout == b"(20, 20) (16, 16)\ntmpfs 28\n", r  # 28: ENOSPC
    assert_clean(sandbox)


async def test_a_run_needing_other_paths_gets_a_box_built_for_it(sandbox: Sandbox) -> None:
    await warm(sandbox)
    ready = sandbox.ready_box_ids
    r = await sandbox.run(BoxSpec(argv=["/bin/cat", "/etc/bash.bashrc"]))
    assert r.box_id in ready and r.status is Status.RUNTIME_ERROR, r  # not in the shared root
    r = await sandbox.run(BoxSpec(argv=["/bin/cat", "/etc/bash.bashrc"], ro_paths=["/etc/bash.bashrc"]))
    assert r.box_id not in ready
    assert r.status is Status.OK and r.stdout == Path("/etc/bash.bashrc").read_bytes(), r
    # Paths under a system dir are in every root already: no box of its own for them.
    await warm(sandbox)
    ready = sandbox.ready_box_ids
    r = await sandbox.run(BoxSpec(argv=["/bin/ls", "/usr/share/doc/bash"], ro_paths=["/usr/share/doc/bash"]))
    assert r.box_id in ready and r.status is Status.OK and r.stdout, r
    assert_clean(sandbox)


async def test_a_box_killed_from_outside_is_an_internal_error_not_the_programs(sandbox: Sandbox) -> None:
    """Nothing inside a box can signal its init; when it dies without a report and no limit explains it,
    the host killed it, and the verdict says so instead of blaming the program (a compile_error with an
    empty stderr, seen once for a Go compile on a busy host)."""

    async def kill_init() -> None:
        while True:
            for cg in list(sandbox._running.values()):
                for pid in Path(cg.procs_files[0]).read_text().split():
                    with contextlib.suppress(OSError):
                        if os.readlink(f"/proc/{pid}/exe") == "/.stockade-init":
                            os.kill(int(pid), signal.SIGKILL)
                            return
            await asyncio.sleep(0.01)

    killer = asyncio.create_task(kill_init())
    try:
        r = await sandbox.run(BoxSpec(argv=["/bin/sleep", "30"], limits=Limits(wall_ms=20_000)))
    finally:
        killer.cancel()  # the run may end without the box ever coming up: the killer must not outlive it
    assert r.status is Status.INTERNAL_ERROR and r.signal == signal.SIGKILL, r
    assert r.error is not None and "killed from outside" in r.error, r
    assert_clean(sandbox)


async def test_a_box_that_died_while_waiting_is_replaced(sandbox: Sandbox) -> None:
    await warm(sandbox)
    assert sandbox.pool is not None
    for box in sandbox.pool._ready.values():
        box.proc.kill()
        box.proc.wait()
    r = await sandbox.run(BoxSpec(argv=["/bin/echo", "fine"]))
    assert (r.status, r.stdout) == (Status.OK, b"fine\n"), r
    assert_clean(sandbox)


def test_killed_service_leaves_boxes_that_the_next_start_reaps(tmp_path: Path) -> None:
    cfg = "SandboxConfig(run_dir=Path('/run/stockade-t-reap'), slots=1, uid_base=62100, cgroup_name='stockade-t-reap')"
    script = f"""
import asyncio, sys
from pathlib import Path
from stockade.sandbox import BoxSpec, Limits, Sandbox, SandboxConfig
sb = Sandbox({cfg}); sb.start()
print("started", flush=True)
asyncio.run(sb.run(BoxSpec(argv=["/bin/sh", "-c", "setsid sleep 60 & sleep 60"], limits=Limits(wall_ms=60000))))
"""
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE)
    assert proc.stdout is not None and proc.stdout.readline() == b"started\n"
    boxes = Path("/run/stockade-t-reap/boxes")
    deadline = time.monotonic() + 10
    while not list(boxes.iterdir()) and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.3)
    assert list(boxes.iterdir())
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    sb = Sandbox(
        SandboxConfig(run_dir=Path("/run/stockade-t-reap"), slots=1, uid_base=62100, cgroup_name="stockade-t-reap")
    )
    sb.start()  # reaps before accepting work
    sb.settle()  # and its own boxes built ahead go too: what is left is the killed service's
    assert list(boxes.iterdir()) == []
    assert list(Path("/run/stockade-t-reap/roots").iterdir()) == [sb.root]  # the killed one's root is gone
    assert sb.cgroups is not None
    for parent in sb.cgroups.parents.values():
        assert not [p for p in parent.iterdir() if p.name.startswith("box-")]
    sb.close()
    # Nothing of the box runs; exited ones may wait briefly for the host's init to reap them.
    assert live_processes_of(62100) == []
    deadline = time.monotonic() + 10
    while subprocess.run(["pgrep", "-u", "62100"], capture_output=True).stdout and time.monotonic() < deadline:
        time.sleep(0.1)
    assert subprocess.run(["pgrep", "-u", "62100"], capture_output=True, text=True).stdout == ""


def live_processes_of(uid: int) -> list[int]:
    out = []
    for pid in subprocess.run(["pgrep", "-u", str(uid)], capture_output=True, text=True).stdout.split():
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except FileNotFoundError:
            continue
        if state != "Z":
            out.append(int(pid))
    return out


class FailingTeardown:
    """While on, every box cgroup's teardown fails as if a process had survived SIGKILL."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.monkeypatch = monkeypatch

    def __enter__(self) -> None:
        def broken(_: BoxCgroup) -> None:
            raise CgroupError("processes survive SIGKILL (simulated)")

        self.monkeypatch.setattr(BoxCgroup, "kill_and_remove", broken)

    def __exit__(self, *_: object) -> None:
        self.monkeypatch.undo()


def started(name: str, slots: int, uid_base: int, bwrap: str = "bwrap") -> Sandbox:
    run_dir = Path(f"/run/{name}")
    sb = Sandbox(SandboxConfig(run_dir=run_dir, slots=slots, uid_base=uid_base, cgroup_name=name, bwrap=bwrap))
    sb.start()
    return sb


@pytest.mark.parametrize(
    ("script", "reason"),
    [
        ("echo 'bwrap: no box today' >&2\nexit 1", "bwrap: no box today"),
        # Hung: the run gives up after the start time-out; its teardown, off the loop, kills it.
        ("exec sleep 60", "(no word from its init; bubblewrap still running): no message"),
    ],
)
async def test_a_box_that_never_comes_up_is_never_offered_and_its_run_fails_with_the_reason(
    monkeypatch: pytest.MonkeyPatch, script: str, reason: str
) -> None:
    monkeypatch.setattr(box_module, "START_TIMEOUT_S", 0.5)
    run_dir = Path("/run/stockade-t-nostart")
    run_dir.mkdir(mode=0o711, exist_ok=True)
    fake = run_dir / "fake-bwrap"  # what the slot uid runs in place of bubblewrap
    fake.write_text(f"#!/bin/sh\n{script}\n")
    fake.chmod(0o755)
    sb = started("stockade-t-nostart", 1, 62400, bwrap=str(fake))
    try:
        assert not sb.ready_box_ids  # its box built ahead never came up
        r = await sb.run(BoxSpec(argv=["/bin/true"]))
        assert r.status is Status.INTERNAL_ERROR and "box did not start" in (r.error or ""), r
        assert reason in (r.error or ""), r
        await sb.recycled()
        assert not sb.ready_box_ids and not sb.quarantined and sb.slots_in_use == 0
        assert slot_processes(sb, b"sleep") == []
        assert list((run_dir / "boxes").iterdir()) == []
        assert sb.cgroups is not None
        for parent in sb.cgroups.parents.values():
            assert not [p for p in parent.iterdir() if p.name.startswith("box-")]
    finally:
        sb.close()


async def test_a_slot_whose_teardown_failed_is_never_handed_out_again(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail closed: if a box's processes could survive teardown, its uid must not go to another box."""
    sb = started("stockade-t-quar", 2, 62300)
    with FailingTeardown(monkeypatch):
        r = await sb.run(BoxSpec(argv=["/bin/true"]))
        await sb.recycled()  # the box is torn down right after its result is handed back
    assert r.status is Status.OK
    assert sb.quarantined == {0} and sb.slots_in_use == 1  # slot 0 is gone for good
    for _ in range(3):  # work goes on, on the remaining slot only
        assert (await sb.run(BoxSpec(argv=["/bin/true"]))).status is Status.OK
    await sb.recycled()
    assert sb.slots_in_use == 1 and sb.quarantined == {0}
    sb.reap()  # the leftover cgroup of the failed teardown
    sb.close()


async def test_a_ready_box_whose_discard_fails_takes_its_slot_out_before_any_run(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The ready box does not fit the run and its teardown fails: the run must not get that uid."""
    sb = started("stockade-t-quar2", 1, 62350)
    with FailingTeardown(monkeypatch):
        r = await sb.run(BoxSpec(argv=["/bin/true"], ro_paths=["/etc/bash.bashrc"]))
    assert r.status is Status.INTERNAL_ERROR and "quarantined" in (r.error or ""), r
    await sb.recycled()
    assert sb.quarantined == {0} and sb.slots_in_use == 1 and not sb.ready_box_ids
    sb.reap()  # the leftover cgroup of the failed teardown
    sb.close()


async def test_a_caller_deferring_recycling_keeps_its_boxes_until_done_without_starving_itself() -> None:
    """sandbox.recycling_deferred(): finished boxes wait for the caller, yet one slot still serves a
    caller's second run (a compile, then its run): the run hands the caller's earlier box over first."""
    sb = started("stockade-t-defer", 1, 62500)
    boxes = Path("/run/stockade-t-defer/boxes")
    true = BoxSpec(argv=["/bin/true"])
    try:
        with sb.recycling_deferred():
            first = await sb.run(true)
            await asyncio.sleep(0.1)
            assert (boxes / first.box_id).exists() and sb.slots_in_use == 1  # kept for the caller
            second = await asyncio.wait_for(sb.run(true), 10)
            assert (first.status, second.status) == (Status.OK, Status.OK)
            assert not (boxes / first.box_id).exists()
            await asyncio.sleep(0.1)
            assert (boxes / second.box_id).exists()
        await sb.recycled()  # the block's end handed the second one over
        assert not (boxes / second.box_id).exists() and sb.slots_in_use == 0 and len(sb.ready_box_ids) == 1

        with sb.recycling_deferred():
            in_task = await asyncio.create_task(sb.run(true))  # tasks started in the block defer too
            await asyncio.sleep(0.1)
            assert (boxes / in_task.box_id).exists() and sb.slots_in_use == 1
        await sb.recycled()
        assert not (boxes / in_task.box_id).exists() and sb.slots_in_use == 0

        with sb.recycling_deferred() as runs:
            kept = await sb.run(true)
            assert runs.slots == [0]
            sb.settle()  # takes deferred boxes too: afterwards nothing of any box is left
            assert not (boxes / kept.box_id).exists() and list(boxes.iterdir()) == [] and sb.slots_in_use == 0
            assert runs.slots == []  # the block holds nothing any more: its end cannot hand over another's box
        assert (await sb.run(true)).status is Status.OK  # the block's end found nothing left to hand over
    finally:
        sb.close()
    assert list(boxes.iterdir()) == []


async def test_a_caller_knows_whether_its_run_has_taken_a_slot_and_may_drop_it_until_then() -> None:
    """CallerRuns.started: a run waiting for a slot can be cancelled with nothing to undo (the service
    drops a queued request whose client left); the slot it waited for is not lost."""
    sb = started("stockade-t-started", 1, 62700)
    true = BoxSpec(argv=["/bin/true"])
    blocks: list[CallerRuns] = []

    async def queued() -> None:
        with sb.recycling_deferred() as runs:
            blocks.append(runs)
            await sb.run(true)

    try:
        holder = asyncio.create_task(sb.run(BoxSpec(argv=["/bin/sleep", "1"])))
        await asyncio.sleep(0.3)
        assert sb.slots_in_use == 1  # the holder has the only slot
        waiting = asyncio.create_task(queued())
        await asyncio.sleep(0.3)
        assert blocks[0].started is False and blocks[0].slots == []
        waiting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting
        assert (await holder).status is Status.OK
        with sb.recycling_deferred() as runs:
            assert runs.started is False
            after = await asyncio.wait_for(sb.run(true), 10)  # the cancelled waiter passed the slot on
            assert runs.started is True and after.status is Status.OK
    finally:
        sb.close()


async def test_once_every_slot_is_quarantined_runs_fail_at_once_instead_of_waiting_for_ever(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    sb = started("stockade-t-lost", 1, 62600)
    true = BoxSpec(argv=["/bin/true"])
    try:
        with FailingTeardown(monkeypatch):
            first = await sb.run(true)
            waiting = asyncio.create_task(sb.run(true))  # for the only slot, whose teardown fails
            await sb.recycled()
        assert first.status is Status.OK and sb.quarantined == {0}
        for r in (await asyncio.wait_for(waiting, 5), await asyncio.wait_for(sb.run(true), 5)):
            assert r.status is Status.INTERNAL_ERROR and "every slot is quarantined" in (r.error or ""), r
    finally:
        sb.reap()  # the leftover cgroup of the failed teardown
        sb.close()
