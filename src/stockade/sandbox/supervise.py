"""One run in a built box: fit the box to the run, hand init the command, supervise it, judge it.

The wire to init (init.c): the run's descriptors, then run_message's fields; init's report is read by
helpers.decode_status. Output is streamed under its cap while CPU and wall time are watched; the
verdict comes from the kernel's facts (verdict.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import resource
import signal
import socket
import subprocess
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from stockade.sandbox import hostfs
from stockade.sandbox.box import BUILD_LIMITS, REAP_TIMEOUT_S, Box
from stockade.sandbox.bwrap import box_env
from stockade.sandbox.cgroups import BoxCgroup, CgroupError
from stockade.sandbox.helpers import decode_status
from stockade.sandbox.spec import BoxResult, BoxSpec, Limits, OutputFile, Status
from stockade.sandbox.verdict import Facts, decide

log = logging.getLogger("stockade.sandbox")

READ_CHUNK = 65536
CPU_POLL_S = 0.01


def _exit_facts(report: tuple[str, int, int] | None, returncode: int) -> tuple[int | None, int | None, str | None]:
    """(exit code, signal, setup error) of the box command, from our init's report when there is one,
    else from bubblewrap's exit status: init was up (the box was handed out only then), so without a
    report it was killed."""
    if report is not None:
        kind, value, _refused = report
        if kind == "W":
            if os.WIFSIGNALED(value):
                return None, os.WTERMSIG(value), None
            return os.WEXITSTATUS(value), None, None
        if kind == "E":
            return 127, None, None  # command not found in the box: the program's failure, as a shell says
        return None, None, f"box init failed (errno {value})"
    # Killed before init could report (our cgroup kill, an OOM kill of the whole box).
    return None, -returncode if returncode < 0 else signal.SIGKILL, None


def run_rlimits(limits: Limits) -> list[tuple[int, int]]:
    """Per-run rlimits, set by init with hard = soft just before it starts the command."""
    return [
        (resource.RLIMIT_CPU, limits.cpu_ms // 1000 + 2),  # per-process backstop; the tree's CPU is watched
        (resource.RLIMIT_FSIZE, limits.file_size_kb * 1024),
        (resource.RLIMIT_NOFILE, limits.open_files),
        (resource.RLIMIT_STACK, limits.stack_mb * 1024 * 1024),
        (resource.RLIMIT_NPROC, limits.processes + 8),  # per uid: the slot uid is this box's alone
    ]


def run_message(argv: list[str], env: dict[str, str], rlimits: list[tuple[int, int]], pids_max: int = 0) -> bytes:
    """What init reads from its control socket after the run's descriptors (see init.c). At `pids_max`
    processes init refuses process creation itself (0: never)."""
    fields = [
        str(pids_max),
        str(len(rlimits)),
        *(f"{r}:{v}" for r, v in rlimits),
        str(len(argv)),
        *argv,
        str(len(env)),
        *(f"{k}={v}" for k, v in env.items()),
    ]
    if any("\0" in f for f in fields) or any("=" in k or not k for k in env):
        raise ValueError("argv and environment may not contain NUL bytes; names may not contain '='")
    return b"".join(f.encode() + b"\0" for f in fields)


class _Capture:
    """What a reader kept of one output stream (kept when its task is cancelled, too)."""

    def __init__(self) -> None:
        self.buf = bytearray()
        self.truncated = False

    def result(self) -> tuple[bytes, bool]:
        return bytes(self.buf), self.truncated


async def _read_capped(
    fd: int,
    cap: int,
    on_exceed: Callable[[], None],
    into: _Capture,
    on_chunk: Callable[[bytes], Awaitable[None]] | None = None,
) -> None:
    """Read `fd` to EOF into `into`, up to `cap` bytes; past it call `on_exceed` and drain the rest.
    Each kept chunk goes to `on_chunk` first when given: awaiting it is the consumer's back-pressure
    (the pipe fills and the program's writes block)."""
    loop = asyncio.get_running_loop()
    readable = asyncio.Event()
    loop.add_reader(fd, readable.set)
    try:
        while True:
            try:
                chunk = os.read(fd, READ_CHUNK)
            except BlockingIOError:
                readable.clear()  # level-triggered: set again at once if data is still there
                await readable.wait()
                continue
            if not chunk:
                break
            if into.truncated:
                continue  # drain so the writer is never stuck on a full pipe before the kill lands
            room = cap - len(into.buf)
            kept = chunk[:room]
            into.buf += kept
            if on_chunk is not None and kept:
                await on_chunk(kept)
            if len(chunk) > room:
                into.truncated = True
                on_exceed()
    finally:
        loop.remove_reader(fd)


async def _feed_stdin(fd: int, first: bytes, live: LiveIO) -> None:
    """Write `first`, then what the caller sends, to the run's stdin pipe; close it at the caller's end
    of input. A program that exits or closes its stdin ends the feed (EPIPE), not the run."""
    loop = asyncio.get_running_loop()
    try:
        data: bytes | None = first
        while data is not None:
            view = memoryview(data)
            while view:
                try:
                    view = view[os.write(fd, view) :]
                except BlockingIOError:
                    writable = loop.create_future()
                    loop.add_writer(fd, writable.set_result, None)
                    try:
                        await writable
                    finally:
                        loop.remove_writer(fd)
            data = await live._next()
    except BrokenPipeError:
        pass
    finally:
        live._end()
        os.close(fd)


class LiveIO:
    """Live stdio of one run, for streaming and interactive use. `send` and `close` feed the program's
    stdin while it runs (a bounded queue: awaiting them is back-pressure toward the sender);
    `on_output(stream, chunk)` is awaited for each chunk of stdout ("stdout") or stderr ("stderr")
    within the output cap, as it is produced. The result still carries the whole (capped) output. A
    consumer that stalls holds the program's writes, so its run ends at its wall limit at the latest."""

    def __init__(self, on_output: Callable[[str, bytes], Awaitable[None]], stdin_chunks: int = 16) -> None:
        self.on_output = on_output
        self._stdin: asyncio.Queue[bytes | None] = asyncio.Queue(stdin_chunks)
        self._ended = asyncio.Event()  # the program's input is over: nothing more is read

    async def send(self, data: bytes) -> bool:
        """Queue `data` for the program's stdin; False once its input has ended (it exited or closed
        its stdin, or close() was called), when nothing more will be read."""
        return await self._put(bytes(data)) if data else not self._ended.is_set()

    async def close(self) -> None:
        """End of input: the program reads EOF once it has read what was sent."""
        await self._put(None)

    def abort(self) -> None:
        """End of input now (the sender is gone): what is queued and not yet written is dropped, the
        program reads EOF next, and send() returns False from here on."""
        while not self._stdin.empty():
            self._stdin.get_nowait()
        self._stdin.put_nowait(None)
        self._ended.set()

    async def _put(self, item: bytes | None) -> bool:
        if self._ended.is_set():
            return False
        put = asyncio.ensure_future(self._stdin.put(item))
        ended = asyncio.ensure_future(self._ended.wait())
        try:
            await asyncio.wait({put, ended}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for f in (put, ended):
                f.cancel()
        return put.done() and not put.cancelled()

    async def _next(self) -> bytes | None:
        item = await self._stdin.get()
        if item is None:
            self._ended.set()
        return item

    def _end(self) -> None:
        self._ended.set()


async def _read_report(fd: int) -> bytes:
    """init's one report (a single write of a few bytes, so it arrives whole), or b"" at EOF."""
    loop = asyncio.get_running_loop()
    readable = asyncio.Event()
    loop.add_reader(fd, readable.set)
    try:
        while True:
            try:
                return os.read(fd, 64)
            except BlockingIOError:
                readable.clear()
                await readable.wait()
    finally:
        loop.remove_reader(fd)


async def _wait_exit(proc: subprocess.Popen[bytes]) -> int:
    """Wait for a child without blocking the loop and without a child watcher (any loop may ask)."""
    loop = asyncio.get_running_loop()
    pidfd = os.pidfd_open(proc.pid)
    try:
        exited = asyncio.Event()
        loop.add_reader(pidfd, exited.set)
        try:
            await exited.wait()
        finally:
            loop.remove_reader(pidfd)
    finally:
        os.close(pidfd)
    return proc.wait()


class _Kill:
    """How one run's box is killed, and for which limit. bubblewrap itself (our child) is spared until
    the command is gone, so that it reaps the box's init; `everything()` spares nothing."""

    def __init__(self, cg: BoxCgroup, bwrap_pid: int) -> None:
        self.cg = cg
        self.spare = frozenset({bwrap_pid})
        self.reason = {"output": False, "cpu": False, "wall": False}

    def __call__(self, why: str | None = None) -> None:
        if why is not None:
            self.reason[why] = True
        with contextlib.suppress(OSError, CgroupError):
            if self.spare:
                self.cg.manager.kill_sparing(self.cg, self.spare)
            else:
                self.cg.manager.kill(self.cg)

    def everything(self) -> None:
        self.spare = frozenset()
        self()


@dataclass
class _Ending:
    """What a run's supervision gathered once the box is empty."""

    report: tuple[str, int, int] | None
    returncode: int
    wall_ms: int
    stdout: tuple[bytes, bool]
    stderr: tuple[bytes, bool]


def _stdin_fd(data: bytes) -> int:
    mfd = os.memfd_create("stockade-stdin", os.MFD_CLOEXEC)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(mfd, view) :]
        # The box gets a read-only view of its stdin.
        return os.open(f"/proc/self/fd/{mfd}", os.O_RDONLY | os.O_CLOEXEC)
    finally:
        os.close(mfd)


async def run_box(box: Box, spec: BoxSpec, uid: int, live: LiveIO | None = None) -> BoxResult:
    """Fit the built box to this run (tmpfs size, inputs, cgroup limits), hand init the command, then
    supervise it. `uid` is the box's slot uid (its files' owner). With `live`, stdin is a pipe fed from
    it (spec.stdin first) and output goes to it as it comes."""
    limits = spec.limits
    message = run_message(spec.argv, box_env(spec.env), run_rlimits(limits), limits.processes)
    gid = uid
    if (limits.tmpfs_mb, limits.tmpfs_inodes) != (BUILD_LIMITS.tmpfs_mb, BUILD_LIMITS.tmpfs_inodes):
        hostfs.resize_tmpfs(box.fs_root, size_mb=limits.tmpfs_mb, inodes=limits.tmpfs_inodes)
    if spec.files:
        hostfs.write_inputs(box.fs_root / "box", spec.files, uid, gid)
    box.cg.manager.apply_limits(box.cg, limits, since=BUILD_LIMITS)
    box.cg.manager.set_cpu_weight(box.cg, running=True)
    cpu_base_us = box.cg.cpu_time_us()  # bubblewrap's own set-up is not the run's
    t0 = time.monotonic()
    # Output pipes of the run alone: only the command and what it starts ever hold their write ends.
    box.stdout_r, out_w = os.pipe2(os.O_CLOEXEC)
    box.stderr_r, err_w = os.pipe2(os.O_CLOEXEC)
    os.set_blocking(box.stdout_r, False)  # never the write ends: they are the command's stdout and stderr
    os.set_blocking(box.stderr_r, False)
    pids_current, pids_events = (
        os.open(box.cg.manager.pids_file(box.cg, name), os.O_RDONLY | os.O_CLOEXEC)
        for name in ("pids.current", "pids.events")
    )
    stdin_w = -1
    if live is None:
        stdin_r = _stdin_fd(spec.stdin)
    else:
        stdin_r, stdin_w = os.pipe2(os.O_CLOEXEC)
        os.set_blocking(stdin_w, False)
    # Merged: the command's fd 2 is its stdout pipe too, so the two keep their order; stderr reads EOF.
    passed = (stdin_r, out_w, out_w if spec.stderr_to_stdout else err_w, pids_current, pids_events)
    try:
        socket.send_fds(box.control, [b"G"], list(passed))
        await asyncio.get_running_loop().sock_sendall(box.control, message)
        box.control.shutdown(socket.SHUT_WR)
    except OSError as e:
        # The box was killed after it came up, before it took the run: no report follows.
        log.warning("box %s did not take its run: %s", box.box_id, e)
    finally:
        for fd in {*passed, err_w}:
            os.close(fd)
    kill = _Kill(box.cg, box.proc.pid)
    feeder = None if live is None else asyncio.create_task(_feed_stdin(stdin_w, spec.stdin, live))
    try:
        ending = await _supervise(box, limits, kill, t0, cpu_base_us, live)
    finally:
        if feeder is not None:
            feeder.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await feeder  # it closes the pipe's write end
    return _result(box, spec, kill, ending, cpu_base_us)


async def _supervise(
    box: Box, limits: Limits, kill: _Kill, t0: float, cpu_base_us: int, live: LiveIO | None
) -> _Ending:
    """Stream the output under its cap and watch CPU and wall time until the box is empty."""
    cap = limits.output_kb * 1024
    out, err = _Capture(), _Capture()
    to_out = to_err = None
    if live is not None:
        on_output = live.on_output

        async def to_out(chunk: bytes) -> None:
            await on_output("stdout", chunk)

        async def to_err(chunk: bytes) -> None:
            await on_output("stderr", chunk)

    out_task = asyncio.create_task(_read_capped(box.stdout_r, cap, lambda: kill("output"), out, to_out))
    err_task = asyncio.create_task(_read_capped(box.stderr_r, cap, lambda: kill("output"), err, to_err))
    # init reports once the command has exited and it has killed and reaped the rest of the box;
    # EOF without a report means init was killed (our kill, an OOM kill of the box).
    report_task = asyncio.create_task(_read_report(box.status_r))
    wait_task: asyncio.Task[int] | None = None
    cpu_limit_us = limits.cpu_ms * 1000
    wall_deadline = t0 + limits.wall_ms / 1000
    try:
        while not report_task.done():
            now = time.monotonic()
            if now >= wall_deadline:
                kill("wall")
                break
            with contextlib.suppress(OSError):
                if box.cg.cpu_time_us() - cpu_base_us >= cpu_limit_us:
                    kill("cpu")
                    break
            await asyncio.wait({report_task}, timeout=min(CPU_POLL_S, wall_deadline - now))
        if not report_task.done():  # a limit killed the box: init's pipe closes as it dies
            try:
                await asyncio.wait_for(asyncio.shield(report_task), REAP_TIMEOUT_S)
            except TimeoutError:
                kill.everything()
        report = decode_status(await report_task)
        wall_ms = int((time.monotonic() - t0) * 1000)
        returncode = 0
        if report is None:
            # No report: init was killed (a limit, an OOM kill of the box). The box's namespaces
            # are gone with it, so every process of it is dead; the cgroup kill is for the record.
            wait_task = asyncio.create_task(_wait_exit(box.proc))
            try:
                returncode = await asyncio.wait_for(asyncio.shield(wait_task), REAP_TIMEOUT_S)
            except TimeoutError:
                kill.everything()
                returncode = await wait_task
            kill.everything()
        # With a report the box is empty (init's certificate): no process can race the copy-out, and
        # its namespaces are torn down after the result is handed back (BoxBuilder.discard). A live
        # consumer that still stalls its stream by then gets no more of it: the result keeps what was read.
        done, stalled = await asyncio.wait({out_task, err_task}, timeout=REAP_TIMEOUT_S)
        for reader in stalled:
            reader.cancel()
        for reader in done:
            reader.result()  # a reader's own failure is the run's
    except BaseException:
        # Cancelled (client gone, shutdown) or failed: the box dies now, teardown follows in the caller.
        kill.everything()
        for task in (out_task, err_task, report_task, wait_task):
            if task is not None:
                task.cancel()
        raise
    return _Ending(report, returncode, wall_ms, out.result(), err.result())


def _result(box: Box, spec: BoxSpec, kill: _Kill, end: _Ending, cpu_base_us: int) -> BoxResult:
    """The verdict and the accounting, from the kernel's facts about the finished run."""
    limits = spec.limits
    stats = box.cg.stats()
    cpu_us = max(0, stats.cpu_time_us - cpu_base_us)
    cpu_exceeded = kill.reason["cpu"] or cpu_us > limits.cpu_ms * 1000
    exit_code, sig, setup_error = _exit_facts(end.report, end.returncode)
    if end.report is None and not any(kill.reason.values()) and stats.oom_kills == 0 and not cpu_exceeded:
        # Only a kill from outside the box ends its init without a report and without a limit
        # (nothing inside can signal a namespace's init): the host's problem, never the program's.
        setup_error = f"the box was killed from outside (signal {sig}, no limit reached)"
    failed = sig is not None or exit_code != 0
    status, timeout_kind = decide(
        Facts(
            exit_code=exit_code,
            signal=sig,
            setup_error=setup_error,
            oom_killed=stats.oom_kills > 0,
            output_exceeded=kill.reason["output"],
            cpu_exceeded=cpu_exceeded,
            wall_exceeded=kill.reason["wall"],
            file_at_size_limit=failed and hostfs.any_file_at_least(box.fs_root, limits.file_size_kb * 1024),
        )
    )
    if setup_error:
        log.error("box %s: %s", box.box_id, setup_error)
    files: list[OutputFile] = []
    skipped: list[str] = []
    if spec.collect_files and status is not Status.INTERNAL_ERROR:
        files, skipped = hostfs.collect_outputs(
            box.fs_root / "box", max_bytes=spec.collect_max_bytes, max_files=spec.collect_max_files
        )
    return BoxResult(
        status=status,
        exit_code=exit_code,
        signal=sig,
        timeout_kind=timeout_kind,
        cpu_time_ms=cpu_us // 1000,
        wall_time_ms=end.wall_ms,
        peak_memory_kb=stats.peak_memory_bytes // 1024,
        stdout=end.stdout[0],
        stderr=end.stderr[0],
        stdout_truncated=end.stdout[1],
        stderr_truncated=end.stderr[1],
        oom_killed=stats.oom_kills > 0,
        pids_limit_hit=stats.pids_limit_hits > 0 or (end.report is not None and end.report[2] > 0),
        files=files,
        files_skipped=skipped,
        error=setup_error,
        box_id=box.box_id,
    )
