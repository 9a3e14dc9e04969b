"""Verdict from kernel facts, with one documented precedence (docs/sandbox.md).

Earlier rules win, because each later fact can be a consequence of an earlier one: an OOM kill arrives
as SIGKILL; our own kill for a time or output limit also arrives as SIGKILL; SIGXFSZ is the kernel's
file-size signal; SIGSYS is what a seccomp KILL_PROCESS looks like.
"""

from __future__ import annotations

import signal
from dataclasses import dataclass

from stockade.sandbox.spec import Status, TimeoutKind


@dataclass(frozen=True)
class Facts:
    exit_code: int | None  # of the box command, None when killed by a signal
    signal: int | None
    setup_error: str | None  # the box could not be built (host problem)
    oom_killed: bool
    output_exceeded: bool
    cpu_exceeded: bool
    wall_exceeded: bool
    file_at_size_limit: bool = False  # a file reached RLIMIT_FSIZE: the program met EFBIG or SIGXFSZ


def decide(f: Facts) -> tuple[Status, TimeoutKind | None]:
    if f.setup_error is not None:
        return Status.INTERNAL_ERROR, None
    if f.oom_killed:
        return Status.MEMORY_LIMIT, None
    if f.cpu_exceeded:
        return Status.TIMEOUT, TimeoutKind.CPU
    if f.wall_exceeded:
        return Status.TIMEOUT, TimeoutKind.WALL
    if f.output_exceeded:
        return Status.OUTPUT_LIMIT, None
    if f.signal == signal.SIGXFSZ:  # also fallocate/ftruncate past RLIMIT_FSIZE, which leave no big file
        return Status.FILE_SIZE_LIMIT, None
    if f.signal == signal.SIGSYS:
        return Status.SYSCALL_BLOCKED, None
    if f.signal is not None or f.exit_code != 0:
        # EFBIG in runtimes that ignore SIGXFSZ (Python does): the file left at the cap tells. A
        # self-raised SIGXCPU is a runtime error; the RLIMIT_CPU backstop only fires past the CPU limit.
        if f.file_at_size_limit:
            return Status.FILE_SIZE_LIMIT, None
        return Status.RUNTIME_ERROR, None
    return Status.OK, None
