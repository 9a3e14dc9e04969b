"""A + B in ten languages, each with a right, a wrong, a slow and a crashing solution: judge mode gives
each its verdict (accepted, wrong_answer, timeout, runtime_error), compiling each solution once."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest

from stockade.engine import Engine, ExecutionRequest, StageLimits
from stockade.engine.judge import Judge, JudgeRequest, JudgeVerdict, TestCase
from stockade.runtimes import Registry
from stockade.sandbox import Sandbox

from .conftest import assert_nothing_left
from .test_judge import CountingSandbox, judge, verdicts

V = JudgeVerdict
KINDS = {"right": V.ACCEPTED, "wrong": V.WRONG_ANSWER, "slow": V.TIMEOUT, "crash": V.RUNTIME_ERROR}
# Each language: how its solution reads a and b, and then the four endings (printing a+b, a-b,
# looping for ever, failing).
SOLUTIONS: dict[str, dict[str, str]] = {
    "c": {
        "head": "#include <stdio.h>\nint main(void) {\n    long a, b;\n"
        '    if (scanf("%ld %ld", &a, &b) != 2) return 9;\n',
        "right": '    printf("%ld\\n", a + b);\n}\n',
        "wrong": '    printf("%ld\\n", a - b);\n}\n',
        "slow": "    volatile unsigned long x = 0;\n    for (;;) x++;\n}\n",
        "crash": '    volatile long zero = 0;\n    printf("%ld\\n", a / zero);\n}\n',  # SIGFPE
    },
    "cpp": {
        "head": "#include <iostream>\n#include <stdexcept>\nint main() {\n    long a, b;\n    std::cin >> a >> b;\n",
        "right": '    std::cout << a + b << "\\n";\n}\n',
        "wrong": '    std::cout << a - b << "\\n";\n}\n',
        "slow": "    volatile unsigned long x = 0;\n    for (;;) x++;\n}\n",
        "crash": '    throw std::runtime_error("boom");\n}\n',
    },
    "python": {
        "head": "a, b = map(int, input().split())\n",
        "right": "print(a + b)\n",
        "wrong": "print(a - b)\n",
        "slow": "while True:\n    pass\n",
        "crash": "raise RuntimeError('boom')\n",
    },
    "java": {
        "head": "import java.util.Scanner;\npublic class Main {\n    public static void main(String[] args) {\n"
        "        Scanner in = new Scanner(System.in);\n        long a = in.nextLong(), b = in.nextLong();\n",
        "right": "        System.out.println(a + b);\n    }\n}\n",
        "wrong": "        System.out.println(a - b);\n    }\n}\n",
        "slow": "        while (true) { }\n    }\n}\n",
        "crash": '        throw new RuntimeException("boom");\n    }\n}\n',
    },
    "go": {
        "head": 'package main\n\nimport "fmt"\n\nfunc main() {\n\tvar a, b int64\n\tfmt.Scan(&a, &b)\n',
        "right": "\tfmt.Println(a + b)\n}\n",
        "wrong": "\tfmt.Println(a - b)\n}\n",
        "slow": "\tfor {\n\t}\n}\n",
        "crash": '\tpanic("boom")\n}\n',
    },
    "rust": {
        "head": "use std::io::Read;\nfn main() {\n    let mut s = String::new();\n"
        "    std::io::stdin().read_to_string(&mut s).unwrap();\n"
        "    let v: Vec<i64> = s.split_whitespace().map(|x| x.parse().unwrap()).collect();\n",
        "right": '    println!("{}", v[0] + v[1]);\n}\n',
        "wrong": '    println!("{}", v[0] - v[1]);\n}\n',
        "slow": "    let _ = v;\n    loop {}\n}\n",
        "crash": '    let _ = v;\n    panic!("boom");\n}\n',
    },
    "javascript": {
        "head": 'const [a, b] = require("fs").readFileSync(0, "utf8").trim().split(/\\s+/).map(BigInt);\n',
        "right": "console.log((a + b).toString());\n",
        "wrong": "console.log((a - b).toString());\n",
        "slow": "for (;;) {}\n",
        "crash": 'throw new Error("boom");\n',
    },
    "ruby": {
        "head": "a, b = gets.split.map(&:to_i)\n",
        "right": "puts a + b\n",
        "wrong": "puts a - b\n",
        "slow": "loop {}\n",
        "crash": "raise 'boom'\n",
    },
    "lua": {
        "head": 'local a, b = io.read("n", "n")\n',
        "right": "print(a + b)\n",
        "wrong": "print(a - b)\n",
        "slow": "while true do end\n",
        "crash": 'error("boom")\n',
    },
    "pascal": {
        "head": "program ab;\nvar a, b: int64; p: ^longint;\nbegin\n  readln(a, b);\n",
        "right": "  writeln(a + b);\nend.\n",
        "wrong": "  writeln(a - b);\nend.\n",
        "slow": "  while true do ;\nend.\n",
        "crash": "  p := nil;\n  p^ := a;\nend.\n",
    },
}
TESTS = [TestCase(stdin=f"{a} {b}\n".encode(), expected=f"{a + b}\n".encode()) for a, b in [(1, 2), (40, 2), (-5, 10)]]
LIMITS = StageLimits(cpu_ms=1000, wall_ms=5000)


@pytest.fixture
def counting(sandbox: Sandbox, registry: Registry) -> Iterator[tuple[Judge, CountingSandbox]]:
    boxes = CountingSandbox(sandbox)
    yield Judge(Engine(boxes, registry)), boxes  # type: ignore[arg-type]
    assert_nothing_left(sandbox)


@pytest.mark.parametrize("language", sorted(SOLUTIONS))
async def test_right_wrong_slow_and_crashing_solutions(counting: Any, registry: Registry, language: str) -> None:
    j, boxes = counting
    parts = SOLUTIONS[language]

    def request(kind: str) -> JudgeRequest:
        code = (parts["head"] + parts[kind]).encode()
        sub = ExecutionRequest.from_code(language, code, limits=LIMITS)
        return JudgeRequest(sub, TESTS, stop_on_first_failure=kind != "right")

    results = await asyncio.gather(*(judge(j, request(kind)) for kind in KINDS))
    for (kind, wanted), result in zip(KINDS.items(), results, strict=True):
        assert result.verdict is wanted, (kind, result.message, result.compile and result.compile.stderr)
        assert result.compile is None or result.compile.status.value == "ok"
    assert verdicts(results[0]) == [V.ACCEPTED] * 3
    assert results[1].tests[0].message.startswith("line 1: expected '3', got '-1'")
    assert results[2].tests[0].message == "cpu time limit exceeded"
    compiled = registry.get(language).compile is not None
    assert boxes.compiles == (len(KINDS) if compiled else 0)  # one compile per solution, whatever its tests
