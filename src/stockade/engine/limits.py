"""Defaults and bounds of per-stage limits, and how a language's floors apply on top."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from stockade.engine.errors import LimitOutOfRange
from stockade.engine.model import ExecutionRequest, StageLimits
from stockade.runtimes.model import Language, LanguageFloors
from stockade.sandbox.spec import Limits

Bounds = dict[str, tuple[int, int]]

# pids.max counts the box's own two processes (bubblewrap and init) too. Every language's echo program
# ran at 10 (ada, cobol, nim and ocaml compiles need 7 to 10; at 3 or less the box could not start its
# command: internal_error), so 16 leaves room. A program that needs more is told so by its verdict.
MIN_PROCESSES = 16

RUN_DEFAULT = StageLimits(cpu_ms=5_000, wall_ms=10_000, memory_mb=256, processes=64, output_kb=1024, file_size_kb=16384)
RUN_BOUNDS: Bounds = {
    "cpu_ms": (1, 60_000),
    "wall_ms": (1, 120_000),
    "memory_mb": (16, 4096),
    "processes": (MIN_PROCESSES, 512),
    "output_kb": (1, 65_536),
    "file_size_kb": (1, 1_048_576),
}
COMPILE_DEFAULT = StageLimits(
    cpu_ms=30_000, wall_ms=60_000, memory_mb=1024, processes=128, output_kb=256, file_size_kb=262_144
)
COMPILE_BOUNDS: Bounds = {
    "cpu_ms": (1, 120_000),
    "wall_ms": (1, 240_000),
    "memory_mb": (16, 4096),
    "processes": (MIN_PROCESSES, 512),
    "output_kb": (1, 4096),
    "file_size_kb": (1, 1_048_576),
}


@dataclass(frozen=True)
class StagePolicy:
    default: StageLimits
    bounds: Bounds
    cpu_cores: float
    open_files: int
    stack_mb: int
    tmpfs_mb: int
    tmpfs_inodes: int

    @property
    def maximum(self) -> StageLimits:
        return StageLimits(**{k: hi for k, (_lo, hi) in self.bounds.items()})

    def check(self, requested: StageLimits, stage: str) -> None:
        for name, value in requested.as_dict().items():
            if value is None:
                continue
            lo, hi = self.bounds[name]
            if not lo <= value <= hi:
                raise LimitOutOfRange(f"{stage} limit {name}={value} is outside [{lo}, {hi}]")

    def resolve(self, requested: StageLimits, floors: LanguageFloors) -> Limits:
        """Requested (already checked) over defaults, then the language's floors: a JVM gets the memory
        and threads it needs even when asked for less; the caller's program gets what was asked."""
        chosen = {n: v if v is not None else getattr(self.default, n) for n, v in requested.as_dict().items()}
        extra = floors.cpu_ms_extra or 0
        return Limits(
            cpu_ms=chosen["cpu_ms"] + extra,
            wall_ms=chosen["wall_ms"] + 2 * extra,
            memory_mb=max(chosen["memory_mb"], floors.memory_mb or 0),
            processes=max(chosen["processes"], floors.processes or 0),
            output_kb=chosen["output_kb"],
            file_size_kb=chosen["file_size_kb"],
            cpu_cores=_cores(max(self.cpu_cores, floors.cpu_cores or 0)),
            open_files=max(self.open_files, floors.open_files or 0),
            stack_mb=max(self.stack_mb, floors.stack_mb or 0),
            # tmpfs pages are charged to the box's memory cgroup as well, so this is a cap within it.
            tmpfs_mb=self.tmpfs_mb,
            tmpfs_inodes=self.tmpfs_inodes,
        )


_HOST_CORES = os.cpu_count() or 1  # read once: glibc reads /sys for it on every call, twice a request


def _cores(wanted: float) -> float:
    return float(min(wanted, _HOST_CORES))


@dataclass(frozen=True)
class LimitPolicy:
    run: StagePolicy = field(default_factory=lambda: StagePolicy(RUN_DEFAULT, RUN_BOUNDS, _cores(1), 256, 64, 64, 4096))
    compile: StagePolicy = field(
        default_factory=lambda: StagePolicy(COMPILE_DEFAULT, COMPILE_BOUNDS, _cores(2), 1024, 64, 512, 16384)
    )

    def effective(self, req: ExecutionRequest, lang: Language) -> dict[str, dict[str, int] | None]:
        """What each stage's box gets of the limits a request can set (its values over the defaults, then
        the language's floors): the audit record's and the journal's `limits`. No compile stage: None."""

        def shown(limits: Limits) -> dict[str, int]:
            return {name: getattr(limits, name) for name in StageLimits().as_dict()}

        compiled = shown(self.compile.resolve(req.compile_limits, lang.compile_limits)) if lang.compile else None
        return {"run": shown(self.run.resolve(req.limits, lang.limits)), "compile": compiled}
