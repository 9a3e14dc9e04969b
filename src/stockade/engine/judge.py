"""Judge mode: compile a submission once, run it against many tests, check each output, one verdict.

The submission is compiled in its own box (Engine.compile_stage); each test runs in a fresh box from
that artifact (Engine.run_stage: the carry-over of /v1/execute), up to `parallel` at a time. Its output
is compared by a built-in checker (checkers.py) or by a checker *program*: any supported language,
compiled once in its own box, then run per test in a fresh box with the test's files
`judge/input.txt`, `judge/output.txt` (the contestant's stdout) and `judge/expected.txt` as its
arguments, in testlib's order (input, output, answer). Its exit code decides, testlib's: 0 accepted,
1 wrong answer, 2 presentation error, 3 (or anything else: a crash, a limit) checker error. Its
message is its stdout, or its stderr when stdout is empty (testlib writes there).

An interactive test (an `interactor` instead of a checker) runs the submission and the interactor at
once, each in its own box, each one's stdout relayed to the other's stdin (interactive.py); the
interactor gets the test's files as arguments, in testlib's order, and its exit code decides, as a
checker's does (_pair_verdict: which side's verdict counts when both end badly).

Overall verdict, in this order (docs/judge.md): the compile's failure; a checker program's (or
interactor's) compile failure (checker_error); the first test, in test order, whose verdict is internal_error or
checker_error (the judgement itself failed); the first test, in test order, that is not accepted;
else accepted.
"""

from __future__ import annotations

import asyncio
import dataclasses
import enum
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Protocol, TypeVar

from stockade.engine import interactive
from stockade.engine.checkers import Checker, CheckResult, check
from stockade.engine.engine import Artifact, Engine, Plan
from stockade.engine.errors import InvalidRequest, PayloadTooLarge
from stockade.engine.model import ExecutionRequest, StageLimits, Verdict, verdict_of_run
from stockade.sandbox import BoxResult, InputFile, LiveIO
from stockade.sandbox.spec import Status, TimeoutKind

T = TypeVar("T")

CHECKER_DIR = "judge"
CHECKER_FILES = ("judge/input.txt", "judge/output.txt", "judge/expected.txt")  # testlib: input, output, answer
MAX_MESSAGE_CHARS = 1024
INLINE_CHECK_BYTES = 64 * 1024  # bigger outputs are compared in a worker thread, off the event loop
# An interactor's wall limit is at least the submission's plus this: in a deadlock the submission's
# ends first (interactive.py), and its box's wait for a slot is covered.
INTERACTOR_WALL_GRACE_MS = 2000


class JudgeVerdict(enum.StrEnum):
    ACCEPTED = "accepted"
    WRONG_ANSWER = "wrong_answer"
    PRESENTATION_ERROR = "presentation_error"
    COMPILE_ERROR = "compile_error"
    COMPILE_LIMIT = "compile_limit"
    RUNTIME_ERROR = "runtime_error"
    TIMEOUT = "timeout"
    MEMORY_LIMIT = "memory_limit"
    OUTPUT_LIMIT = "output_limit"
    FILE_SIZE_LIMIT = "file_size_limit"
    SYSCALL_BLOCKED = "syscall_blocked"
    CHECKER_ERROR = "checker_error"
    INTERNAL_ERROR = "internal_error"
    SKIPPED = "skipped"  # not run: an earlier failure stopped the judge (stop_on_first_failure)


_SYSTEM_FAULTS = (JudgeVerdict.INTERNAL_ERROR, JudgeVerdict.CHECKER_ERROR)
_TESTLIB = {0: JudgeVerdict.ACCEPTED, 1: JudgeVerdict.WRONG_ANSWER, 2: JudgeVerdict.PRESENTATION_ERROR}


@dataclass(frozen=True)
class JudgeLimits:
    """How much one judge request may carry (the service sets them from its configuration)."""

    max_tests: int = 256
    max_total_bytes: int = 32 * 1024 * 1024  # every test's stdin and expected output together


@dataclass(frozen=True)
class TestCase:
    __test__ = False  # not a pytest class
    stdin: bytes = b""
    expected: bytes = b""
    args: tuple[str, ...] = ()
    limits: StageLimits | None = None  # None: the submission's run limits


@dataclass(frozen=True)
class ProgramChecker:
    """A checker program: language, files, entry, version, limits and compile limits of its own
    (its request's stdin and args are not used: it gets the test's files as arguments)."""

    request: ExecutionRequest


@dataclass(frozen=True)
class JudgeRequest:
    submission: ExecutionRequest  # its limits are every test's default run limits; stdin and args unused
    tests: list[TestCase]
    checker: Checker | ProgramChecker = field(default_factory=lambda: Checker("lines"))
    stop_on_first_failure: bool = False
    # An interactive problem: this program talks with the submission and decides (the checker is unused).
    interactor: ProgramChecker | None = None


@dataclass(frozen=True)
class JudgePlan:
    """A judge request that passed every check: one Plan per test (the submission with that test's
    stdin, args and limits: what /v1/execute would run), and the checker program's Plan if any."""

    request: JudgeRequest
    submission: Plan
    tests: list[Plan]
    checker: Plan | None  # the checker program's, or the interactor's


@dataclass
class TestResult:
    __test__ = False
    index: int
    verdict: JudgeVerdict
    message: str
    run: BoxResult | None = None  # None: skipped
    checker: BoxResult | None = None  # the checker program's box, or the interactor's


@dataclass
class JudgeResult:
    verdict: JudgeVerdict
    language: str
    version: str | None
    tests: list[TestResult]
    compile: BoxResult | None = None
    checker_compile: BoxResult | None = None  # the checker program's, or the interactor's
    interactive: bool = False
    failed_test: int | None = None  # index of the test that decided a failing verdict
    message: str = ""

    @property
    def boxes(self) -> list[BoxResult]:
        """Every box this judgement ran (compiles, test runs, checker runs)."""
        found = [self.compile, self.checker_compile]
        found += [b for t in self.tests for b in (t.run, t.checker)]
        return [b for b in found if b is not None]


class _Runs(Protocol):
    started: bool


class JudgeProgress:
    """Watched by the caller while run() goes on: whether any box has taken a slot, tests finished."""

    def __init__(self) -> None:
        self._blocks: list[_Runs] = []
        self.done = 0

    @property
    def started(self) -> bool:
        return any(b.started for b in self._blocks)


class Judge:
    def __init__(self, engine: Engine, limits: JudgeLimits | None = None) -> None:
        self.engine = engine
        self.limits = limits or JudgeLimits()

    async def prepare(self, req: JudgeRequest) -> JudgePlan:
        """Every check that can refuse the request, before any box is built: the engine's for the
        submission with each test's stdin, args and limits, and for the checker program."""
        if not req.tests:
            raise InvalidRequest("give at least one test")
        if len(req.tests) > self.limits.max_tests:
            raise PayloadTooLarge(f"at most {self.limits.max_tests} tests, not {len(req.tests)}")
        size = sum(len(t.stdin) + len(t.expected) for t in req.tests)
        if size > self.limits.max_total_bytes:
            raise PayloadTooLarge(f"the tests' inputs and outputs exceed {self.limits.max_total_bytes} bytes")
        sub = dataclasses.replace(req.submission, stdin=b"", args=[])
        submission = await self.engine.prepare(sub)
        tests = []
        for t in req.tests:
            one = dataclasses.replace(sub, stdin=t.stdin, args=list(t.args), limits=t.limits or sub.limits)
            # The same checks; the toolchain's detection is cached after the first.
            tests.append(await self.engine.prepare(one))
        program = req.interactor or req.checker
        if req.interactor is not None:
            if isinstance(req.checker, ProgramChecker):
                raise InvalidRequest("an interactive problem's interactor decides: give no checker program")
            if self.engine.sandbox.slots_total < 2:
                raise InvalidRequest("an interactive test needs two boxes at once; this node has one slot")
        checker = None
        if isinstance(program, ProgramChecker):
            checker = await self.engine.prepare(dataclasses.replace(program.request, stdin=b"", args=[]))
            if any(f.name == CHECKER_DIR or f.name.startswith(CHECKER_DIR + "/") for f in checker.files):
                what = "interactor" if req.interactor is not None else "checker"
                raise InvalidRequest(f"{what} files may not be named {CHECKER_DIR!r} or be under it")
        return JudgePlan(req, submission, tests, checker)

    async def run(self, plan: JudgePlan, *, parallel: int = 1, progress: JudgeProgress | None = None) -> JudgeResult:
        progress = progress or JudgeProgress()
        sub = plan.submission
        unrun = [TestResult(i, JudgeVerdict.SKIPPED, "not run: a compile failed") for i in range(len(plan.tests))]
        result = JudgeResult(JudgeVerdict.INTERNAL_ERROR, sub.language.id, sub.toolchain.version, tests=unrun)
        result.interactive = plan.request.interactor is not None
        compiles = [self._boxed(progress, lambda: self.engine.compile_stage(sub))]
        if plan.checker is not None:
            checker_plan = plan.checker
            compiles.append(self._boxed(progress, lambda: self.engine.compile_stage(checker_plan)))
        stages = await asyncio.gather(*compiles)
        result.compile, stop, artifact = stages[0]
        if stop is not None:
            result.verdict = JudgeVerdict(stop.value)
            result.message = "the submission did not compile" if stop is Verdict.COMPILE_ERROR else stop.value
            return result
        checker_artifact = None
        if plan.checker is not None:
            result.checker_compile, stop, checker_artifact = stages[1]
            if stop is not None:
                result.verdict = JudgeVerdict.CHECKER_ERROR
                what = "interactor" if result.interactive else "checker program"
                result.message = f"the {what} did not compile ({stop.value})"
                return result
            checker_artifact = _without_checker_files(checker_artifact)
        workers = max(1, parallel // 2 if result.interactive else parallel)  # a pair takes two slots
        result.tests = await self._tests(plan, artifact, checker_artifact, workers, progress)
        _decide(result)
        return result

    async def _tests(
        self, plan: JudgePlan, artifact: Artifact, checker: Artifact | None, parallel: int, progress: JudgeProgress
    ) -> list[TestResult]:
        results: list[TestResult | None] = [None] * len(plan.tests)
        pending = iter(range(len(plan.tests)))
        stopped = False

        async def worker() -> None:
            nonlocal stopped
            while not stopped and (i := next(pending, None)) is not None:
                results[i] = one = await self._test(plan, i, artifact, checker, progress)
                progress.done += 1
                if plan.request.stop_on_first_failure and one.verdict is not JudgeVerdict.ACCEPTED:
                    stopped = True

        async with asyncio.TaskGroup() as group:
            for _ in range(min(parallel, len(plan.tests))):
                group.create_task(worker())
        skipped = "not run: an earlier test failed (stop_on_first_failure)"
        return [r or TestResult(i, JudgeVerdict.SKIPPED, skipped) for i, r in enumerate(results)]

    async def _test(
        self, plan: JudgePlan, i: int, artifact: Artifact, checker: Artifact | None, progress: JudgeProgress
    ) -> TestResult:
        test = plan.tests[i].request
        if plan.request.interactor is not None:
            assert plan.checker is not None and checker is not None
            return await self._interactive(plan, i, artifact, plan.checker, checker, progress)
        ran = await self._boxed(
            progress,
            lambda: self.engine.run_stage(
                plan.submission, artifact, stdin=test.stdin, args=test.args, limits=test.limits
            ),
        )
        verdict = verdict_of_run(ran.status)
        if verdict is not Verdict.OK:
            return TestResult(i, JudgeVerdict(verdict.value), _run_message(ran), ran)
        expected = plan.request.tests[i].expected
        if plan.checker is None or checker is None:
            builtin = plan.request.checker
            assert isinstance(builtin, Checker)
            if len(expected) + len(ran.stdout) > INLINE_CHECK_BYTES:
                checked = await asyncio.to_thread(check, builtin, expected, ran.stdout)
            else:
                checked = check(builtin, expected, ran.stdout)
            return TestResult(i, _of(checked), checked.message, ran)
        files = [InputFile(n, c) for n, c in zip(CHECKER_FILES, (test.stdin, ran.stdout, expected), strict=True)]
        checker_plan = plan.checker
        box = await self._boxed(
            progress,
            lambda: self.engine.run_stage(
                checker_plan,
                checker,
                stdin=b"",
                args=CHECKER_FILES,
                limits=checker_plan.request.limits,
                extra_files=files,
            ),
        )
        verdict_of_checker, message = _checker_verdict(box, box.stdout.strip() or box.stderr.strip())
        return TestResult(i, verdict_of_checker, message, ran, box)

    async def _interactive(
        self,
        plan: JudgePlan,
        i: int,
        artifact: Artifact,
        inter: Plan,
        inter_artifact: Artifact,
        progress: JudgeProgress,
    ) -> TestResult:
        """One interactive test: the submission and the interactor at once, connected (interactive.py)."""
        test, sub = plan.tests[i].request, plan.submission
        expected = plan.request.tests[i].expected
        files = [InputFile(n, c) for n, c in zip(CHECKER_FILES, (test.stdin, b"", expected), strict=True)]
        policy = self.engine.policy.run
        sub_wall = policy.resolve(test.limits, sub.language.limits).wall_ms
        own = inter.request.limits
        wall = max(own.wall_ms or policy.default.wall_ms or 0, sub_wall + INTERACTOR_WALL_GRACE_MS)
        inter_limits = dataclasses.replace(own, wall_ms=min(wall, policy.bounds["wall_ms"][1]))

        def start_submission(live: LiveIO) -> Awaitable[BoxResult]:
            return self._boxed(
                progress,
                lambda: self.engine.run_stage(sub, artifact, stdin=b"", args=test.args, limits=test.limits, live=live),
            )

        def start_interactor(live: LiveIO) -> Awaitable[BoxResult]:
            return self._boxed(
                progress,
                lambda: self.engine.run_stage(
                    inter, inter_artifact, stdin=b"", args=CHECKER_FILES, limits=inter_limits,
                    extra_files=files, live=live,
                ),
            )  # fmt: skip

        async with interactive.pair_gate(self.engine.sandbox, self.engine.sandbox.slots_total):
            pair = await interactive.run_pair(start_submission, start_interactor)
        verdict, message = _pair_verdict(pair)
        return TestResult(i, verdict, message, pair.submission, pair.interactor)

    async def _boxed(self, progress: JudgeProgress, start: Callable[[], Awaitable[T]]) -> T:
        """One box's run in a recycling block of its own: its box goes to the builder as soon as it is
        done. In the caller's block (the service defers recycling until the response is written) a
        finished box would hold its slot while the judge's other runs wait for one."""
        with self.engine.sandbox.recycling_deferred() as runs:
            progress._blocks.append(runs)
            return await start()


def _without_checker_files(artifact: Artifact) -> Artifact:
    """The test's files win over anything the checker's compiler left at their paths."""
    keep = [f for f in artifact.files if f.path != CHECKER_DIR and not f.path.startswith(CHECKER_DIR + "/")]
    return Artifact(keep, [f.path for f in keep], artifact.main)


def _of(checked: CheckResult) -> JudgeVerdict:
    return JudgeVerdict.ACCEPTED if checked.ok else JudgeVerdict.WRONG_ANSWER


def _run_message(box: BoxResult) -> str:
    if box.status is Status.RUNTIME_ERROR:
        return f"killed by signal {box.signal}" if box.signal else f"exit code {box.exit_code}"
    if box.status is Status.TIMEOUT and box.timeout_kind is not None:
        return f"{box.timeout_kind.value} time limit exceeded"
    return box.error or box.status.value.replace("_", " ")


def _checker_verdict(box: BoxResult, message: bytes) -> tuple[JudgeVerdict, str]:
    """A checker's or interactor's verdict by testlib's exit codes, with `message` (what it said)."""
    said = message.decode("utf-8", "replace")
    said = said if len(said) <= MAX_MESSAGE_CHARS else said[:MAX_MESSAGE_CHARS] + "…"
    if box.status is Status.OK:
        return JudgeVerdict.ACCEPTED, said
    if box.status is Status.RUNTIME_ERROR and box.signal is None and box.exit_code in _TESTLIB:
        return _TESTLIB[box.exit_code], said
    how = f"exit code {box.exit_code}" if box.status is Status.RUNTIME_ERROR else _run_message(box)
    return JudgeVerdict.CHECKER_ERROR, f"checker failed: {how}" + (f": {said}" if said else "")


def _pair_verdict(pair: interactive.PairResult) -> tuple[JudgeVerdict, str]:
    """An interactive test's verdict. The submission's failure counts when its box ended first (the
    interactor's complaint is then about an input that stopped: a deadlock is the submission's wall
    timeout); otherwise the interactor's verdict (its stderr: testlib writes there; its stdout was the
    channel), and if it accepted, the submission must have ended well too."""
    sub, box = pair.submission, pair.interactor
    ran = verdict_of_run(sub.status)
    said, how = _checker_verdict(box, box.stderr.strip())
    if not pair.interactor_first and ran is not Verdict.OK:
        return JudgeVerdict(ran.value), _pair_run_message(pair)
    if said is not JudgeVerdict.ACCEPTED:
        return said, how
    if ran is not Verdict.OK:
        return JudgeVerdict(ran.value), _pair_run_message(pair)
    return JudgeVerdict.ACCEPTED, how


def _pair_run_message(pair: interactive.PairResult) -> str:
    sub, ex = pair.submission, pair.exchange
    message = _run_message(sub)
    if sub.timeout_kind is TimeoutKind.WALL and sub.cpu_time_ms * 2 < sub.wall_time_ms:
        wrote = f"the {ex.last} wrote last" if ex.last else "neither wrote anything"
        message += f" while idle: both sides waiting for input, a deadlock ({wrote})"
    return message


def _decide(result: JudgeResult) -> None:
    """The overall verdict (module docstring): a failed judgement first, then the first failing test."""
    faulty = next((t for t in result.tests if t.verdict in _SYSTEM_FAULTS), None)
    failed = faulty or next(
        (t for t in result.tests if t.verdict not in (JudgeVerdict.ACCEPTED, JudgeVerdict.SKIPPED)), None
    )
    if failed is None:
        result.verdict = JudgeVerdict.ACCEPTED
        result.message = f"{len(result.tests)} test(s) accepted"
        return
    result.verdict, result.failed_test = failed.verdict, failed.index
    result.message = f"test {failed.index}: {failed.verdict.value}" + (f": {failed.message}" if failed.message else "")
