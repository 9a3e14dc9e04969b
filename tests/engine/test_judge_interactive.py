"""Interactive judge tests on real boxes: a guessing game whose interactor talks with the submission,
each in its own box, relayed live; right, wrong, deadlocking and garbage-printing solutions."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest

from stockade.engine import Engine, ExecutionRequest, StageLimits
from stockade.engine.errors import InvalidRequest
from stockade.engine.judge import Judge, JudgeRequest, JudgeVerdict, ProgramChecker, TestCase
from stockade.runtimes import Registry
from stockade.sandbox import Sandbox, TimeoutKind

from .conftest import assert_nothing_left
from .test_judge import CountingSandbox, judge, submission, verdicts

V = JudgeVerdict
# The secret is the test's input file; "higher"/"lower" until it is guessed, at most 30 guesses.
# testlib's conventions: the verdict is the exit code, the message goes to stderr.
INTERACTOR = b"""import sys
secret = int(open(sys.argv[1]).read())
if secret < 0:
    print("bad test", file=sys.stderr)
    sys.exit(3)
for n in range(1, 31):
    line = sys.stdin.readline()
    if not line:
        print("unexpected end of input", file=sys.stderr)
        sys.exit(2)
    try:
        guess = int(line)
    except ValueError:
        print(f"not a number: {line.strip()[:20]!r}", file=sys.stderr)
        sys.exit(2)
    if guess == secret:
        print("correct", flush=True)
        print(f"found {secret} in {n} guesses", file=sys.stderr)
        sys.exit(0)
    print("higher" if guess < secret else "lower", flush=True)
print("no more guesses", file=sys.stderr)
sys.exit(1)
"""
BINARY_SEARCH_C = b"""#include <stdio.h>
#include <string.h>
int main(void) {
    long lo = 1, hi = 1000000;
    char reply[16];
    while (lo <= hi) {
        long mid = (lo + hi) / 2;
        printf("%ld\\n", mid);
        fflush(stdout);
        if (scanf("%15s", reply) != 1) return 1;
        if (strcmp(reply, "correct") == 0) return 0;
        if (strcmp(reply, "higher") == 0) lo = mid + 1; else hi = mid - 1;
    }
    return 0;
}
"""
# Waits for a line before its first guess: both sides wait for input.
DEADLOCK_PY = b"input()\nprint(500000, flush=True)\n"
# Forgets to flush: its guess stays in its stdio buffer, and both sides wait.
NO_FLUSH_C = b'#include <stdio.h>\nint main(void){ char r[16]; printf("1\\n"); scanf("%15s", r); return 0; }\n'
GARBAGE_PY = b"print('hello there', flush=True)\ninput()\n"
ALWAYS_ONE_PY = b"while True:\n    print(1, flush=True)\n    input()\n"
QUICK = StageLimits(cpu_ms=1000, wall_ms=1500)


@pytest.fixture
def counting(sandbox: Sandbox, registry: Registry) -> Iterator[tuple[Judge, CountingSandbox]]:
    boxes = CountingSandbox(sandbox)
    yield Judge(Engine(boxes, registry)), boxes  # type: ignore[arg-type]
    assert_nothing_left(sandbox)


def game(*secrets: int) -> list[TestCase]:
    return [TestCase(stdin=str(s).encode()) for s in secrets]


def guessing(language: str, code: bytes, tests: list[TestCase], **kw: Any) -> JudgeRequest:
    interactor = ProgramChecker(ExecutionRequest.from_code("python", INTERACTOR, limits=StageLimits(cpu_ms=2000)))
    return JudgeRequest(submission(language, code, QUICK), tests, interactor=interactor, **kw)


async def test_a_correct_solution_talks_its_way_to_accepted(counting: Any) -> None:
    j, boxes = counting
    result = await judge(j, guessing("c", BINARY_SEARCH_C, game(1, 777_777, 1_000_000, 500_000)))
    assert result.verdict is V.ACCEPTED, result
    assert verdicts(result) == [V.ACCEPTED] * 4
    assert result.interactive and boxes.compiles == 1  # the C submission; the interactor is Python
    first = result.tests[0]
    assert first.message.startswith("found 1 in ")
    # Each side in its own box, accounted apart: the guesses went one way, the replies the other.
    assert first.run is not None and first.checker is not None
    assert first.run.box_id != first.checker.box_id
    assert first.run.stdout.split()[0] == b"500000" and first.checker.stdout.endswith(b"correct\n")
    assert first.run.peak_memory_kb > 0 and first.checker.peak_memory_kb > 0
    # The secret reaches the interactor as its input file, never the submission.
    runs = [s for s in boxes.specs if not s.collect_files]
    assert all(s.stdin == b"" for s in runs)
    assert sum(1 for s in runs if s.argv[-3:] == ["judge/input.txt", "judge/output.txt", "judge/expected.txt"]) == 4


@pytest.mark.parametrize(
    ("language", "code"), [("python", DEADLOCK_PY), ("c", NO_FLUSH_C)], ids=["reads-first", "no-flush"]
)
async def test_a_deadlock_is_the_waiting_submissions_wall_timeout(counting: Any, language: str, code: bytes) -> None:
    j, _ = counting
    result = await judge(j, guessing(language, code, game(42)))
    assert verdicts(result) == [V.TIMEOUT], result.tests[0].message
    test = result.tests[0]
    assert test.run is not None and test.run.timeout_kind is TimeoutKind.WALL
    assert "deadlock" in test.message
    assert test.checker is not None and test.checker.status.value != "timeout"  # the interactor was let go


async def test_garbage_and_wrong_guesses_are_the_interactors_verdicts(counting: Any) -> None:
    j, _ = counting
    garbage = await judge(j, guessing("python", GARBAGE_PY, game(5)))
    assert verdicts(garbage) == [V.PRESENTATION_ERROR]
    assert garbage.tests[0].message == "not a number: 'hello there'"
    wrong = await judge(j, guessing("python", ALWAYS_ONE_PY, game(5)))
    assert verdicts(wrong) == [V.WRONG_ANSWER]
    assert wrong.tests[0].message == "no more guesses"
    assert wrong.tests[0].run is not None and wrong.tests[0].run.stdout == b"1\n" * 31  # the 31st, then EOF


async def test_a_crashing_solution_and_a_failing_interactor(counting: Any) -> None:
    j, _ = counting
    crash = b"print(1, flush=True)\ninput()\nraise SystemExit(4)\n"
    result = await judge(j, guessing("python", crash, [*game(9), TestCase(stdin=b"-1")]))
    assert verdicts(result) == [V.RUNTIME_ERROR, V.CHECKER_ERROR]
    assert result.tests[0].message == "exit code 4"
    assert result.tests[1].message == "checker failed: exit code 3: bad test"
    assert result.verdict is V.CHECKER_ERROR and result.failed_test == 1


async def test_an_interactor_that_does_not_compile_stops_before_any_test(counting: Any) -> None:
    j, boxes = counting
    broken = ProgramChecker(ExecutionRequest.from_code("c", b"int main( {"))
    req = JudgeRequest(submission("c", BINARY_SEARCH_C), game(1, 2), interactor=broken)
    result = await judge(j, req)
    assert result.verdict is V.CHECKER_ERROR and result.message.startswith("the interactor did not compile")
    assert verdicts(result) == [V.SKIPPED, V.SKIPPED] and boxes.compiles == 2


async def test_an_interactor_with_a_checker_program_is_refused(counting: Any) -> None:
    j, boxes = counting
    program = ProgramChecker(ExecutionRequest.from_code("python", b"pass"))
    req = JudgeRequest(submission("python", b"pass"), game(1), program, interactor=program)
    with pytest.raises(InvalidRequest, match="interactor decides"):
        await j.prepare(req)
    assert boxes.specs == []


async def test_two_interactive_judgements_at_once_share_two_slots(counting: Any) -> None:
    """Each pair needs both slots: two judgements whose pairs each held one box would wait for each other."""
    j, _ = counting
    both = asyncio.gather(*(judge(j, guessing("c", BINARY_SEARCH_C, game(3, 30, 300)), parallel=4) for _ in range(2)))
    results = await asyncio.wait_for(both, 120)  # a deadlock fails, not hangs
    assert [verdicts(r) for r in results] == [[V.ACCEPTED] * 3] * 2
