"""The soak's mix: each program with its limits, the verdict it must get every time, and its share."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Program:
    name: str
    language: str
    code: str
    expect: dict[str, Any]  # fields of the result that must have these values
    weight: int  # share of the mix, out of 100
    limits: dict[str, int] = field(default_factory=dict)
    stdin: str = ""
    stdout_bytes: int | None = None  # when the exact stdout is not given: its length

    def body(self) -> dict[str, Any]:
        out: dict[str, Any] = {"language": self.language, "code": self.code, "stdin": self.stdin}
        if self.limits:
            out["limits"] = self.limits
        return out


FORK_BOMB = """
import os
while True:
    try:
        os.fork()
    except OSError:
        pass
"""

PROGRAMS = [
    Program("hello", "python", "print('hello')", {"status": "ok", "stdout": "hello\n"}, 30),
    Program("sum", "python", "print(sum(range(100_000)))", {"status": "ok", "stdout": "4999950000\n"}, 10),
    Program(
        "stdin", "python", "import sys\nsys.stdout.write(sys.stdin.read()[::-1])",
        {"status": "ok", "stdout": "\ncba"}, 10, stdin="abc\n",
    ),
    Program("exit3", "python", "import sys\nsys.exit(3)", {"status": "runtime_error", "exit_code": 3}, 8),
    Program(
        "cpu_spin", "python", "while True:\n    pass",
        {"status": "timeout", "timeout_kind": "cpu"}, 6, limits={"cpu_ms": 300, "wall_ms": 30_000},
    ),
    Program(
        "sleeper", "python", "import time\ntime.sleep(60)",
        {"status": "timeout", "timeout_kind": "wall"}, 6, limits={"wall_ms": 300},
    ),
    Program(
        "memory_bomb", "python", "x = b'x' * (512 << 20)\nprint(len(x))",
        {"status": "memory_limit", "stdout": ""}, 8, limits={"memory_mb": 64},
    ),
    # Every process of the tree forks forever: the pids cap holds it, the tree's CPU limit ends it.
    Program(
        "fork_bomb", "python", FORK_BOMB, {"status": "timeout", "timeout_kind": "cpu"}, 8,
        limits={"processes": 32, "cpu_ms": 500, "wall_ms": 30_000, "memory_mb": 512},
    ),
    Program(
        "flood", "python", "import sys\nwhile True:\n    sys.stdout.write('y' * 4096)",
        {"status": "output_limit", "stdout_truncated": True}, 8, limits={"output_kb": 64}, stdout_bytes=64 * 1024,
    ),
    Program("c_broken", "c", "int main( { return 0; }\n", {"status": "compile_error", "stdout": ""}, 4),
    Program("c_ok", "c", '#include <stdio.h>\nint main(void) { puts("c ok"); return 0; }\n',
            {"status": "ok", "stdout": "c ok\n"}, 2),
]  # fmt: skip
assert sum(p.weight for p in PROGRAMS) == 100


def schedule(n: int, seed: int = 19) -> list[Program]:
    """`n` programs drawn by weight, in a fixed order for a given seed."""
    return random.Random(seed).choices(PROGRAMS, weights=[p.weight for p in PROGRAMS], k=n)
