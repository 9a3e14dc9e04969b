"""Engine request and result: one program, one language, an optional compile stage and a run stage."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field, fields
from typing import Any

from stockade.engine.explain import explain, signal_name
from stockade.engine.outputs import Outputs
from stockade.sandbox.netpolicy import NetworkPolicy
from stockade.sandbox.spec import BoxResult, InputFile, Status


class Verdict(enum.StrEnum):
    """Overall verdict of an execution: the sandbox statuses plus the two compile outcomes. Apart from
    sandbox.Status because a box knows nothing of compiling: compile_error and compile_limit are the
    engine's reading of a compile box's status (verdict_of_compile); every Status is a Verdict by value."""

    OK = "ok"
    COMPILE_ERROR = "compile_error"
    COMPILE_LIMIT = "compile_limit"
    RUNTIME_ERROR = "runtime_error"
    TIMEOUT = "timeout"
    MEMORY_LIMIT = "memory_limit"
    OUTPUT_LIMIT = "output_limit"
    FILE_SIZE_LIMIT = "file_size_limit"
    SYSCALL_BLOCKED = "syscall_blocked"
    INTERNAL_ERROR = "internal_error"


def _limit(doc: str) -> Any:
    return field(default=None, metadata={"doc": doc})


@dataclass(frozen=True)
class StageLimits:
    """What a caller may set for one stage; None means the default. Bounded by LimitPolicy.

    The one declaration of these fields on the server: the service's tenant maxima (store.TenantLimits)
    and its wire model (wire.LimitsIn, described by `doc`) are derived from it. A new one is a field
    here, its default and bounds in limits.py, and its enforcement in the sandbox's Limits."""

    cpu_ms: int | None = _limit("CPU time of the whole process tree, ms")
    wall_ms: int | None = _limit("Wall-clock time, ms")
    memory_mb: int | None = _limit("Memory (RAM, no swap), MiB")
    processes: int | None = _limit("Processes and threads")
    output_kb: int | None = _limit("stdout and stderr cap, each, KiB")
    file_size_kb: int | None = _limit("Largest file the program may write, KiB")

    @classmethod
    def names(cls) -> tuple[str, ...]:
        return tuple(f.name for f in fields(cls))

    @classmethod
    def docs(cls) -> dict[str, str]:
        """Each field's one-line description (the API documents it)."""
        return {f.name: f.metadata["doc"] for f in fields(cls)}

    def as_dict(self) -> dict[str, int | None]:
        return {n: getattr(self, n) for n in self.names()}


@dataclass(frozen=True)
class SourceFile:
    name: str  # relative path inside /box
    content: bytes


@dataclass(frozen=True)
class ExecutionRequest:
    language: str
    files: list[SourceFile]
    entry: str | None = None  # defaults to the only file, or the language's source_file
    # Exact, a prefix ("3.11" matches "3.11.2") or a semver range ("^3.9", ">=3.8 <3.12"): runtimes.versions.
    # None: the newest available. ExecutionResult.version says which one ran.
    version: str | None = None
    stdin: bytes = b""
    args: list[str] = field(default_factory=list)
    limits: StageLimits = field(default_factory=StageLimits)
    compile_limits: StageLimits = field(default_factory=StageLimits)
    # Options for the compiler, each allowed by the language's compile.options (Engine.prepare checks).
    compile_options: tuple[str, ...] = ()
    # Files out (engine/outputs.py): glob patterns of the files under /box the result returns, and a
    # workspace's files for the run box's /box (None: no workspace; the result then has no `box`).
    collect: tuple[str, ...] = ()
    box_files: tuple[InputFile, ...] | None = None
    stderr_to_stdout: bool = False  # the run stage's stderr goes to its stdout (Judge0's redirect)
    # The run box's egress allowlist (docs/network.md); None: no network. A compile box never has one.
    network: NetworkPolicy | None = None

    @classmethod
    def from_code(cls, language: str, code: str | bytes, **kw: object) -> ExecutionRequest:
        """A one-file program; its name is filled in from the language by the engine."""
        content = code.encode() if isinstance(code, str) else code
        return cls(language=language, files=[SourceFile("", content)], **kw)  # type: ignore[arg-type]


@dataclass
class ExecutionResult:
    status: Verdict
    language: str
    version: str | None
    compile: BoxResult | None = None
    run: BoxResult | None = None
    outputs: Outputs | None = None  # with `collect` or `box_files`: what the run box left

    @property
    def final(self) -> BoxResult | None:
        """The stage that decided the verdict."""
        return self.run or self.compile

    @property
    def signal_name(self) -> str | None:
        """The signal that ended the deciding stage, named ("SIGSEGV"), or None."""
        return signal_name(self.final.signal if self.final else None)

    @property
    def explanation(self) -> str | None:
        """One line on what that signal means (engine.explain), or None: also when the signal was the
        sandbox's own kill for a limit, which the status names."""
        final = self.final
        if final is None or final.status not in (Status.RUNTIME_ERROR, Status.SYSCALL_BLOCKED):
            return None
        return explain(final.signal, self.language)


def verdict_of_run(status: Status) -> Verdict:
    return Verdict(status.value)


def verdict_of_compile(status: Status) -> Verdict | None:
    """None: the compile succeeded, go on and run."""
    if status is Status.OK:
        return None
    if status is Status.RUNTIME_ERROR:
        return Verdict.COMPILE_ERROR
    if status in (Status.INTERNAL_ERROR, Status.SYSCALL_BLOCKED):
        return Verdict(status.value)
    return Verdict.COMPILE_LIMIT  # time, memory, output or file-size limit of the compiler
