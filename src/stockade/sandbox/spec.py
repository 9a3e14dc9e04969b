"""What a box is asked to do (BoxSpec) and what it reports (BoxResult)."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any

from stockade.sandbox.netpolicy import NetworkPolicy, NetworkUsage


class Status(enum.StrEnum):
    """Verdict of one box run. Precedence is documented in docs/sandbox.md and decided in verdict.py."""

    OK = "ok"
    RUNTIME_ERROR = "runtime_error"
    TIMEOUT = "timeout"
    MEMORY_LIMIT = "memory_limit"
    OUTPUT_LIMIT = "output_limit"
    FILE_SIZE_LIMIT = "file_size_limit"
    SYSCALL_BLOCKED = "syscall_blocked"
    INTERNAL_ERROR = "internal_error"


class TimeoutKind(enum.StrEnum):
    CPU = "cpu"
    WALL = "wall"


@dataclass(frozen=True)
class Limits:
    """Kernel-enforced limits of one box. Every field is always set: there is no unlimited box."""

    cpu_ms: int = 5_000  # CPU time of the whole tree (user+sys), cgroup-accounted
    wall_ms: int = 10_000
    memory_mb: int = 256  # cgroup memory, swap 0; tmpfs pages count too
    processes: int = 64  # pids controller: processes and threads of the tree
    cpu_cores: float = 1.0  # CPU bandwidth (cfs quota / cpu.max)
    output_kb: int = 1024  # stdout and stderr, each
    file_size_kb: int = 16 * 1024  # RLIMIT_FSIZE: largest file one write may make
    open_files: int = 256  # RLIMIT_NOFILE
    stack_mb: int = 64  # RLIMIT_STACK
    tmpfs_mb: int = 64  # /box + /tmp + /dev/shm share one tmpfs of this size
    tmpfs_inodes: int = 4096

    def with_overrides(self, **changes: Any) -> Limits:
        values = {**self.__dict__, **{k: v for k, v in changes.items() if v is not None}}
        return Limits(**values)


@dataclass(frozen=True)
class InputFile:
    """A file written into /box before the box starts. `path` is relative to /box."""

    path: str
    content: bytes
    executable: bool = False


@dataclass(frozen=True)
class BoxSpec:
    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)  # added to the fixed, clean base environment
    stdin: bytes = b""
    files: list[InputFile] = field(default_factory=list)
    limits: Limits = field(default_factory=Limits)
    # Extra host paths bound read-only at the same place (toolchain configs under /etc, e.g. a JVM's).
    ro_paths: list[str] = field(default_factory=list)
    # Collect every regular file under /box after the run (for compile artifacts), capped by these.
    collect_files: bool = False
    collect_max_bytes: int = 256 * 1024 * 1024
    collect_max_files: int = 4096
    stderr_to_stdout: bool = False  # the command's stderr is its stdout (one stream, in write order)
    # None: no network at all (the box's own namespace holds only loopback). A policy: its egress proxy.
    network: NetworkPolicy | None = None


@dataclass(frozen=True)
class OutputFile:
    path: str
    content: bytes
    executable: bool


@dataclass
class BoxResult:
    status: Status
    exit_code: int | None = None
    signal: int | None = None
    timeout_kind: TimeoutKind | None = None
    cpu_time_ms: int = 0
    wall_time_ms: int = 0
    peak_memory_kb: int = 0
    stdout: bytes = b""
    stderr: bytes = b""
    stdout_truncated: bool = False
    stderr_truncated: bool = False
    oom_killed: bool = False
    pids_limit_hit: bool = False
    files: list[OutputFile] = field(default_factory=list)
    files_skipped: list[str] = field(default_factory=list)  # not regular files, or over the caps
    error: str | None = None  # internal_error only: what failed (never box output)
    box_id: str = ""
    queue_ms: int = 0  # time spent waiting for a free slot before the box was built
    network: NetworkUsage | None = None  # what its egress proxy let through, when it had a policy

    def to_json(self, *, text: bool = True) -> dict[str, Any]:
        """JSON-ready view; bytes are decoded as UTF-8 with replacement when `text`."""

        def enc(b: bytes) -> str:
            return b.decode("utf-8", "replace") if text else b.hex()

        return {
            "status": self.status.value,
            "exit_code": self.exit_code,
            "signal": self.signal,
            "timeout_kind": self.timeout_kind.value if self.timeout_kind else None,
            "cpu_time_ms": self.cpu_time_ms,
            "wall_time_ms": self.wall_time_ms,
            "peak_memory_kb": self.peak_memory_kb,
            "stdout": enc(self.stdout),
            "stderr": enc(self.stderr),
            "stdout_truncated": self.stdout_truncated,
            "stderr_truncated": self.stderr_truncated,
            "oom_killed": self.oom_killed,
            "pids_limit_hit": self.pids_limit_hit,
            "files": [f.path for f in self.files],
            "files_skipped": self.files_skipped,
            "error": self.error,
            "box_id": self.box_id,
            "queue_ms": self.queue_ms,
            "network": None if self.network is None else self.network.to_json(),
        }
