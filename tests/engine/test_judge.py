"""Judge mode on real boxes: compile once, a fresh box per test, checkers, per-test verdicts."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest

from stockade.engine import Engine, ExecutionRequest, LimitOutOfRange, PayloadTooLarge, SourceFile, StageLimits
from stockade.engine.checkers import Checker
from stockade.engine.errors import InvalidRequest
from stockade.engine.judge import (
    Judge,
    JudgeLimits,
    JudgeRequest,
    JudgeResult,
    JudgeVerdict,
    ProgramChecker,
    TestCase,
)
from stockade.runtimes import Registry
from stockade.sandbox import BoxResult, BoxSpec, LiveIO, Sandbox

from .conftest import assert_nothing_left

V = JudgeVerdict
# a + b, wrong when a < 0 (prints a - b), never ends when a == 0.
C_SUM = b"""#include <stdio.h>
int main(void) {
    long a, b;
    if (scanf("%ld %ld", &a, &b) != 2) return 3;
    while (a == 0) {}
    printf("%ld\\n", a < 0 ? a - b : a + b);
    return 0;
}
"""
PY_SUM = b"""a, b = map(int, input().split())
if a == 0:
    raise SystemExit(f"zero: {b}")
print(a + b if a > 0 else a - b)
"""
FAST = StageLimits(cpu_ms=1000, wall_ms=3000)


def ab(a: int, b: int, **kw: Any) -> TestCase:
    return TestCase(stdin=f"{a} {b}\n".encode(), expected=f"{a + b}\n".encode(), **kw)


class CountingSandbox:
    """The engine's sandbox, with every box spec it was given."""

    def __init__(self, sandbox: Sandbox) -> None:
        self._sandbox = sandbox
        self.specs: list[BoxSpec] = []

    async def run(self, spec: BoxSpec, live: LiveIO | None = None) -> BoxResult:
        self.specs.append(spec)
        return await self._sandbox.run(spec, live)

    @property
    def compiles(self) -> int:
        return sum(1 for s in self.specs if s.collect_files)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sandbox, name)


@pytest.fixture
def counting(sandbox: Sandbox, registry: Registry) -> Iterator[tuple[Judge, CountingSandbox]]:
    boxes = CountingSandbox(sandbox)
    yield Judge(Engine(boxes, registry)), boxes  # type: ignore[arg-type]
    assert_nothing_left(sandbox)


def submission(language: str, code: bytes, limits: StageLimits = FAST) -> ExecutionRequest:
    return ExecutionRequest.from_code(language, code, limits=limits)


async def judge(j: Judge, req: JudgeRequest, parallel: int = 2) -> JudgeResult:
    return await j.run(await j.prepare(req), parallel=parallel)


def verdicts(result: JudgeResult) -> list[JudgeVerdict]:
    return [t.verdict for t in result.tests]


async def test_c_accepted_compiles_once_and_runs_each_test_in_its_own_box(counting: Any) -> None:
    j, boxes = counting
    tests = [ab(a, b) for a, b in [(1, 2), (5, 7), (100, -100), (3, 0), (9, 9)]]
    result = await judge(j, JudgeRequest(submission("c", C_SUM), tests))
    assert result.verdict is V.ACCEPTED, result
    assert verdicts(result) == [V.ACCEPTED] * 5
    assert result.failed_test is None
    assert boxes.compiles == 1
    assert len(boxes.specs) == 6  # one compile, five runs
    stdins = sorted(s.stdin for s in boxes.specs if not s.collect_files)
    assert stdins == sorted(t.stdin for t in tests)  # each test in a box of its own
    assert [t.run.stdout for t in result.tests if t.run] == [t.expected for t in tests]
    assert all(t.run and t.run.peak_memory_kb > 0 for t in result.tests)


async def test_per_test_verdicts_wrong_answer_and_timeout(counting: Any) -> None:
    j, _ = counting
    tests = [ab(1, 2), ab(-1, 2), ab(0, 1), ab(4, 4)]
    result = await judge(j, JudgeRequest(submission("c", C_SUM), tests))
    assert verdicts(result) == [V.ACCEPTED, V.WRONG_ANSWER, V.TIMEOUT, V.ACCEPTED]
    assert result.verdict is V.WRONG_ANSWER  # the first failing test decides
    assert result.failed_test == 1
    assert result.tests[1].message == "line 1: expected '1', got '-3'"
    assert result.tests[2].message == "cpu time limit exceeded"


async def test_stop_on_first_failure_skips_the_rest(counting: Any) -> None:
    j, boxes = counting
    tests = [ab(1, 2), ab(-1, 2), ab(2, 2), ab(3, 3)]
    req = JudgeRequest(submission("c", C_SUM), tests, stop_on_first_failure=True)
    result = await judge(j, req, parallel=1)
    assert verdicts(result) == [V.ACCEPTED, V.WRONG_ANSWER, V.SKIPPED, V.SKIPPED]
    assert result.verdict is V.WRONG_ANSWER and result.failed_test == 1
    assert len(boxes.specs) == 3  # the compile and two runs
    assert result.tests[3].run is None


async def test_compile_error_once_for_all_tests(counting: Any) -> None:
    j, boxes = counting
    result = await judge(j, JudgeRequest(submission("c", b"int main(void) { return x; }"), [ab(1, 1)] * 7))
    assert result.verdict is V.COMPILE_ERROR
    assert result.compile is not None and b"x" in result.compile.stderr
    assert verdicts(result) == [V.SKIPPED] * 7
    assert len(boxes.specs) == 1


async def test_python_submission_runtime_error_per_test(counting: Any) -> None:
    j, boxes = counting
    result = await judge(j, JudgeRequest(submission("python", PY_SUM), [ab(2, 3), ab(0, 7), ab(-2, 1)]))
    assert verdicts(result) == [V.ACCEPTED, V.RUNTIME_ERROR, V.WRONG_ANSWER]
    assert result.tests[1].message == "exit code 1"
    assert result.tests[1].run is not None and b"zero: 7" in result.tests[1].run.stderr
    assert boxes.compiles == 0  # Python has no compile stage
    assert result.verdict is V.RUNTIME_ERROR and result.failed_test == 1


@pytest.mark.parametrize(
    ("kind", "output", "expected", "verdict"),
    [
        ("exact", b"1 2\n", b"1 2\n", V.ACCEPTED),
        ("exact", b"1 2 \n", b"1 2\n", V.WRONG_ANSWER),
        ("lines", b"1 2 \n\n", b"1 2\n", V.ACCEPTED),
        ("tokens", b"1\n2", b"1 2\n", V.ACCEPTED),
        ("tokens", b"2 1", b"1 2\n", V.WRONG_ANSWER),
    ],
)
async def test_builtin_checkers_on_real_output(
    counting: Any, kind: str, output: bytes, expected: bytes, verdict: JudgeVerdict
) -> None:
    j, _ = counting
    echo = b"import sys; sys.stdout.write(sys.stdin.read())"
    req = JudgeRequest(submission("python", echo), [TestCase(stdin=output, expected=expected)], Checker(kind))
    assert verdicts(await judge(j, req)) == [verdict]


async def test_float_checker_edge_of_epsilon(counting: Any) -> None:
    j, _ = counting
    third = b'#include <stdio.h>\nint main(void){ printf("%.7f\\n", 1.0/3); return 0; }\n'
    tests = [TestCase(expected=b"0.3333333333"), TestCase(expected=b"0.33334")]
    result = await judge(j, JudgeRequest(submission("c", third), tests, Checker("float", 1e-6, 0.0)))
    assert verdicts(result) == [V.ACCEPTED, V.WRONG_ANSWER]  # 3.3e-8 off, then 6.7e-6 off


# Any permutation of the expected tokens; "PE" when they are right but on one line each.
CHECKER_PY = b"""import sys
inp, out, ans = (open(p).read() for p in sys.argv[1:4])
if inp.startswith("fail"):
    print("bad test data")
    sys.exit(3)
if sorted(out.split()) != sorted(ans.split()):
    print(f"got {sorted(out.split())}")
    sys.exit(1)
if out.count("\\n") > 1:
    sys.exit(2)
print("ok, permutation")
"""


async def test_program_checker_in_python(counting: Any) -> None:
    j, boxes = counting
    echo = b"import sys; sys.stdout.write(sys.stdin.read())"
    tests = [
        TestCase(stdin=b"3 1 2\n", expected=b"1 2 3\n"),
        TestCase(stdin=b"3 1 1\n", expected=b"1 2 3\n"),
        TestCase(stdin=b"1\n2\n3\n", expected=b"1 2 3\n"),
    ]
    checker = ProgramChecker(ExecutionRequest.from_code("python", CHECKER_PY, limits=FAST))
    result = await judge(j, JudgeRequest(submission("python", echo), tests, checker))
    assert verdicts(result) == [V.ACCEPTED, V.WRONG_ANSWER, V.PRESENTATION_ERROR]
    assert result.tests[0].message == "ok, permutation"
    assert result.tests[1].message == "got ['1', '1', '3']"
    assert all(t.checker is not None for t in result.tests)
    assert len(boxes.specs) == 6  # a run and a checker run per test; Python compiles nothing
    files = ["judge/input.txt", "judge/output.txt", "judge/expected.txt"]
    assert len([s for s in boxes.specs if s.argv[-3:] == files]) == 3


async def test_checker_failure_and_hostile_checker_are_checker_errors(counting: Any) -> None:
    j, _ = counting
    echo = b"import sys; sys.stdout.write(sys.stdin.read())"
    checker = ProgramChecker(ExecutionRequest.from_code("python", CHECKER_PY, limits=FAST))
    failing = await judge(j, JudgeRequest(submission("python", echo), [ab(1, 1), TestCase(stdin=b"fail")], checker))
    assert verdicts(failing) == [V.WRONG_ANSWER, V.CHECKER_ERROR]
    assert failing.verdict is V.CHECKER_ERROR and failing.failed_test == 1  # a failed judgement comes first
    assert failing.tests[1].message == "checker failed: exit code 3: bad test data"
    # A checker is boxed like any program: its loop is a limit, its writes stay in its box.
    hostile = b"open('/box/judge/expected.txt', 'w').write('x'); import os; os.system('id')\nwhile True: pass\n"
    boxed = ProgramChecker(ExecutionRequest.from_code("python", hostile, limits=StageLimits(cpu_ms=300)))
    result = await judge(j, JudgeRequest(submission("python", echo), [TestCase(stdin=b"1")], boxed))
    assert verdicts(result) == [V.CHECKER_ERROR]
    assert result.tests[0].message.startswith("checker failed: cpu time limit exceeded")


async def test_checker_compile_error_stops_before_any_test(counting: Any) -> None:
    j, boxes = counting
    checker = ProgramChecker(ExecutionRequest.from_code("c", b"int main( {"))
    result = await judge(j, JudgeRequest(submission("c", C_SUM), [ab(1, 1), ab(2, 2)], checker))
    assert result.verdict is V.CHECKER_ERROR
    assert result.message.startswith("the checker program did not compile")
    assert verdicts(result) == [V.SKIPPED, V.SKIPPED]
    assert boxes.compiles == 2


async def test_more_workers_than_slots_inside_a_deferring_caller(counting: Any, sandbox: Sandbox) -> None:
    """The service defers recycling to the end of the request: the judge's boxes must not hold their
    slots meanwhile, or its own waiting runs would never get one (2 slots here, 4 workers)."""
    j, _ = counting
    req = JudgeRequest(submission("c", C_SUM), [ab(i, i) for i in range(1, 9)])
    with sandbox.recycling_deferred():
        result = await asyncio.wait_for(judge(j, req, parallel=4), 120)  # a deadlock fails, not hangs
    assert verdicts(result) == [V.ACCEPTED] * 8, result.compile


async def test_two_hundred_tests_one_compile(counting: Any) -> None:
    j, boxes = counting
    tests = [ab(i, 2 * i) for i in range(1, 201)]
    result = await judge(j, JudgeRequest(submission("c", C_SUM), tests))
    assert result.verdict is V.ACCEPTED
    assert len(result.tests) == 200 and boxes.compiles == 1 and len(boxes.specs) == 201


async def test_typed_refusals_before_any_box(counting: Any) -> None:
    j, boxes = counting
    small = Judge(j.engine, JudgeLimits(max_tests=3, max_total_bytes=100))
    sub = submission("c", C_SUM)
    with pytest.raises(InvalidRequest, match="at least one test"):
        await small.prepare(JudgeRequest(sub, []))
    with pytest.raises(PayloadTooLarge, match="at most 3 tests"):
        await small.prepare(JudgeRequest(sub, [ab(1, 1)] * 4))
    with pytest.raises(PayloadTooLarge, match="exceed 100 bytes"):
        await small.prepare(JudgeRequest(sub, [TestCase(stdin=b"x" * 60, expected=b"y" * 41)]))
    with pytest.raises(LimitOutOfRange):
        await small.prepare(JudgeRequest(sub, [ab(1, 1, limits=StageLimits(cpu_ms=10**9))]))
    with pytest.raises(InvalidRequest, match="args"):
        await small.prepare(JudgeRequest(sub, [ab(1, 1, args=("a\0b",))]))
    bad = ProgramChecker(ExecutionRequest(language="python", files=[SourceFile("judge/expected.txt", b"")]))
    with pytest.raises(InvalidRequest, match="checker files"):
        await small.prepare(JudgeRequest(sub, [ab(1, 1)], bad))
    assert boxes.specs == []
