"""Verdict precedence: each fact that can cause a later one wins over it."""

import signal

import pytest

from stockade.sandbox.spec import Status, TimeoutKind
from stockade.sandbox.verdict import Facts, decide


def facts(**kw: object) -> Facts:
    base: dict[str, object] = dict(
        exit_code=0, signal=None, setup_error=None, oom_killed=False, output_exceeded=False,
        cpu_exceeded=False, wall_exceeded=False,
    )  # fmt: skip
    base.update(kw)
    return Facts(**base)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("kw", "expected"),
    [
        ({}, (Status.OK, None)),
        ({"exit_code": 3}, (Status.RUNTIME_ERROR, None)),
        ({"exit_code": None, "signal": signal.SIGSEGV}, (Status.RUNTIME_ERROR, None)),
        # OOM beats the SIGKILL it caused, and any limit our kill enforced.
        ({"exit_code": None, "signal": 9, "oom_killed": True, "wall_exceeded": True}, (Status.MEMORY_LIMIT, None)),
        ({"exit_code": None, "signal": 9, "cpu_exceeded": True}, (Status.TIMEOUT, TimeoutKind.CPU)),
        ({"exit_code": None, "signal": 9, "wall_exceeded": True}, (Status.TIMEOUT, TimeoutKind.WALL)),
        ({"cpu_exceeded": True, "wall_exceeded": True}, (Status.TIMEOUT, TimeoutKind.CPU)),
        ({"exit_code": None, "signal": 9, "output_exceeded": True}, (Status.OUTPUT_LIMIT, None)),
        ({"wall_exceeded": True, "output_exceeded": True}, (Status.TIMEOUT, TimeoutKind.WALL)),
        # Signals a program can raise itself prove nothing without the kernel's fact behind them.
        ({"exit_code": None, "signal": signal.SIGXCPU}, (Status.RUNTIME_ERROR, None)),
        ({"exit_code": None, "signal": signal.SIGXCPU, "cpu_exceeded": True}, (Status.TIMEOUT, TimeoutKind.CPU)),
        ({"exit_code": None, "signal": signal.SIGXFSZ}, (Status.FILE_SIZE_LIMIT, None)),
        ({"exit_code": None, "signal": signal.SIGXFSZ, "file_at_size_limit": True}, (Status.FILE_SIZE_LIMIT, None)),
        ({"exit_code": None, "signal": signal.SIGSYS}, (Status.SYSCALL_BLOCKED, None)),
        ({"exit_code": 1, "file_at_size_limit": True}, (Status.FILE_SIZE_LIMIT, None)),
        ({"exit_code": 0, "file_at_size_limit": True}, (Status.OK, None)),
        ({"setup_error": "bwrap: x", "oom_killed": True}, (Status.INTERNAL_ERROR, None)),
    ],
)
def test_precedence(kw: dict[str, object], expected: tuple[Status, TimeoutKind | None]) -> None:
    assert decide(facts(**kw)) == expected
