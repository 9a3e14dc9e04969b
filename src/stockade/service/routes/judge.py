"""POST /v1/judge (docs/judge.md): a submission against many tests, compiled once, one verdict per test.

The steps of v1.execute, in its order: `caller` (authentication, rate limit, one quota hold), the
body's translation (wire.to_request for the submission and a checker program: the tenant's languages
and maxima), one more quota hold per further test (a judge request counts its executions), the engine
Judge's prepare, the run on the place Admission claimed (Service.admitted), and one Service.record
per test run (each test is one execution: its log line, metrics, audit record and usage; the compile
is recorded with the first). Its wire models are here, beside it.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, model_validator

from stockade.engine import EngineError, ExecutionResult, StageLimits, Verdict
from stockade.engine.checkers import CHECKER_KINDS, DEFAULT_ABS_EPS, DEFAULT_REL_EPS, Checker
from stockade.engine.judge import (
    Judge,
    JudgeLimits,
    JudgePlan,
    JudgeProgress,
    JudgeRequest,
    JudgeResult,
    ProgramChecker,
    TestCase,
    TestResult,
)
from stockade.engine.model import verdict_of_run
from stockade.sandbox import BoxResult
from stockade.service.errors import ApiError
from stockade.service.node import AuditWrite, Caller, Service
from stockade.service.quota import QuotaHold
from stockade.service.routes.deps import ERROR_RESPONSES, caller, rate_headers, service_of
from stockade.service.tenants import Tenant
from stockade.service.wire import (
    CompileLimitsIn,
    CompileOut,
    Encoding,
    ExecuteIn,
    FileIn,
    RunLimitsIn,
    RuntimeRef,
    decode,
    encode,
    stage_limits,
    to_request,
)

router = APIRouter(prefix="/v1")
JUDGE_PATH = "/v1/judge"
# The fields of a submission or a checker program that make an ExecuteIn (stdin and args are per test).
SOURCE_FIELDS = {"language", "version", "code", "files", "entry", "limits", "compile_limits"}
MAX_TESTS = JudgeLimits().max_tests  # the schema's bound; the service's JudgeLimits decides


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TestIn(_Strict):
    stdin: str = Field("", max_length=8 * 1024 * 1024)
    expected: str = Field("", max_length=8 * 1024 * 1024, description="What the checker compares the stdout with")
    encoding: Encoding = Field("utf8", description="Of `stdin` and `expected`")
    args: list[str] = Field(default_factory=list, max_length=64)
    limits: RunLimitsIn | None = Field(None, description="This test's run limits; default: the request's `limits`")


class CheckerIn(_Strict):
    kind: Literal["exact", "lines", "tokens", "float", "program"] = "lines"
    abs_eps: float = Field(DEFAULT_ABS_EPS, ge=0, description="float: absolute tolerance")
    rel_eps: float = Field(DEFAULT_REL_EPS, ge=0, description="float: relative tolerance")
    language: str | None = Field(None, max_length=64, description="program: the checker's language")
    version: str | None = Field(None, max_length=64)
    code: str | None = Field(None, max_length=8 * 1024 * 1024)
    files: list[FileIn] | None = Field(None, max_length=64)
    entry: str | None = Field(None, max_length=512)
    limits: RunLimitsIn | None = None
    compile_limits: CompileLimitsIn | None = None

    @model_validator(mode="after")
    def _program_has_source(self) -> CheckerIn:
        program = (self.language, self.code, self.files, self.entry, self.version, self.limits, self.compile_limits)
        if self.kind == "program" and (self.language is None or (self.code is None) == (self.files is None)):
            raise ValueError("a program checker needs `language` and exactly one of `code` or `files`")
        if self.kind != "program" and any(v is not None for v in program):
            raise ValueError("only a program checker has a language, source or limits")
        return self


class JudgeIn(_Strict):
    language: str = Field(min_length=1, max_length=64, examples=["c"])
    version: str | None = Field(None, max_length=64)
    code: str | None = Field(None, max_length=8 * 1024 * 1024)
    files: list[FileIn] | None = Field(None, max_length=64)
    entry: str | None = Field(None, max_length=512)
    limits: RunLimitsIn | None = Field(None, description="Run limits of every test without its own")
    compile_limits: CompileLimitsIn | None = None
    tests: list[TestIn] = Field(min_length=1, max_length=MAX_TESTS)
    checker: CheckerIn = Field(default_factory=lambda: CheckerIn.model_validate({}))
    stop_on_first_failure: bool = False
    include_output: bool = Field(False, description="Return each test's stdout and stderr")
    output_encoding: Encoding = "utf8"

    @model_validator(mode="after")
    def _one_source(self) -> JudgeIn:
        if (self.code is None) == (self.files is None):
            raise ValueError("give exactly one of `code` or `files`")
        return self


class TestOut(BaseModel):
    index: int
    verdict: str = Field(description="accepted, wrong_answer, presentation_error, a run verdict, checker_error, "
                         "internal_error or skipped")  # fmt: skip
    message: str
    time_ms: int = Field(description="CPU time of the run, ms")
    wall_time_ms: int
    memory_kb: int
    exit_code: int | None
    signal: int | None
    stdout: str | None = Field(description="With include_output only")
    stderr: str | None = Field(description="With include_output only")
    checker_time_ms: int | None = Field(description="A program checker's CPU time, ms")


class JudgeOut(BaseModel):
    judge_id: str
    verdict: str = Field(description="The overall verdict (docs/judge.md: its precedence)")
    message: str
    failed_test: int | None = Field(description="Index of the test that decided a failing verdict")
    tests: list[TestOut]
    accepted: int
    compile: CompileOut | None
    checker_compile: CompileOut | None
    time_ms: int = Field(description="CPU time of every test run, ms")
    wall_time_ms: int = Field(description="Wall time of the whole judgement, ms")
    output_encoding: Encoding
    runtime: RuntimeRef


# -- request: body -> engine JudgeRequest ---------------------------------------------------------


def to_judge_request(body: JudgeIn, who: Caller, service: Service) -> JudgeRequest:
    policy, tenant = service.engine.policy, who.tenant
    submission = to_request(ExecuteIn(**body.model_dump(include=SOURCE_FIELDS)), tenant, service.registry, policy)
    tests = []
    for i, t in enumerate(body.tests):
        try:
            stdin = decode(t.stdin, t.encoding, f"test {i} stdin")
            expected = decode(t.expected, t.encoding, f"test {i} expected")
        except UnicodeEncodeError:
            raise ApiError("INVALID_REQUEST", "text fields must be valid Unicode (no lone surrogates)") from None
        tests.append(TestCase(stdin, expected, tuple(t.args), _test_limits(t, tenant, submission.limits, i)))
    c = body.checker
    checker: Checker | ProgramChecker
    if c.kind == "program":
        program = ExecuteIn(**c.model_dump(include=SOURCE_FIELDS))
        checker = ProgramChecker(to_request(program, tenant, service.registry, policy))
    else:
        assert c.kind in CHECKER_KINDS
        checker = Checker(c.kind, c.abs_eps, c.rel_eps)
    return JudgeRequest(submission, tests, checker, body.stop_on_first_failure)


def _test_limits(t: TestIn, tenant: Tenant, submission: StageLimits, i: int) -> StageLimits | None:
    """A test's own limits, within the tenant's maxima; the submission's where it sets none."""
    if t.limits is None:
        return None
    own = stage_limits(t.limits, tenant, submission, f"test {i} run")
    given = t.limits.model_dump()
    return StageLimits(**{n: getattr(own if given[n] is not None else submission, n) for n in StageLimits.names()})


def _hold_each_test(service: Service, who: Caller, first: QuotaHold, tests: int) -> QuotaHold:
    """`caller` held one execution; a judge request holds one per test (QUOTA_EXCEEDED otherwise)."""
    holds = [first]
    try:
        for _ in range(tests - 1):  # no await: one step
            holds.append(service.check_quota(who))
    except ApiError:
        for h in holds[1:]:
            h.release()
        raise

    def release() -> None:
        for h in holds:
            h.release()

    return QuotaHold(release)


# -- the route ------------------------------------------------------------------------------------


@router.post("/judge", response_model=JudgeOut, responses=ERROR_RESPONSES, summary="Judge a program against tests")
async def judge(request: Request, body: JudgeIn, who: Annotated[Caller, Depends(caller)]) -> JSONResponse:
    service = service_of(request)
    judge_id = uuid.uuid4().hex
    try:
        req = to_judge_request(body, who, service)
    except (ApiError, EngineError) as e:
        service.reject(e.code.lower())
        raise e if isinstance(e, ApiError) else ApiError(e.code, e.message) from None
    request.state.quota_hold = _hold_each_test(service, who, request.state.quota_hold, len(req.tests))
    cfg = service.config
    judging = Judge(service.engine, JudgeLimits(cfg.judge_max_tests, cfg.judge_max_bytes))
    try:
        plan = await judging.prepare(req)
    except EngineError as e:
        service.reject(e.code.lower())
        raise ApiError(e.code, e.message) from None
    loop = asyncio.get_running_loop()
    started = loop.time()
    async with service.admitted(request.state.place):
        result, dropped = await _run_to_the_end(judging, plan, service.sandbox.slots_total)
    wall_ms = int((loop.time() - started) * 1000)
    if result.compile is not None:
        service.metrics.queue_wait.observe(result.compile.queue_ms / 1000)
    out = response_body(judge_id, result, wall_ms, body.include_output, body.output_encoding)
    request.state.audit_write = _record(service, who, plan, result, judge_id)
    if dropped:  # recorded: now Admission's handling of a client that left
        raise asyncio.CancelledError
    return JSONResponse(out, headers=rate_headers(request))


async def _run_to_the_end(judging: Judge, plan: JudgePlan, parallel: int) -> tuple[JudgeResult, bool]:
    """(the result, whether the request was cancelled meanwhile). Admission drops a request whose
    client left before its run took a slot, but each box of a judge is in a recycling block of its own,
    which Admission cannot see: a judge whose boxes have started runs to its end and is recorded, as a
    started execution is; one that has not is dropped here."""
    progress = JudgeProgress()
    task = asyncio.ensure_future(judging.run(plan, parallel=parallel, progress=progress))
    try:
        return await asyncio.shield(task), False
    except asyncio.CancelledError:
        if not progress.started:
            task.cancel()
            raise
        return await task, True


def _record(service: Service, who: Caller, plan: JudgePlan, result: JudgeResult, judge_id: str) -> list[AuditWrite]:
    """One Service.record per test that ran (one execution each; the compile goes with the first). A
    judgement that ran no test (a compile failed) is one execution: its compile's."""
    ran = [t for t in result.tests if t.run is not None]
    if not ran:
        try:
            status = Verdict(result.verdict.value)
        except ValueError:  # checker_error: the submission compiled, the checker program did not
            status = Verdict.OK
        return [_record_one(service, who, plan, result, judge_id, result.tests[0], status, result.compile)]
    writes = []
    for n, t in enumerate(ran):
        assert t.run is not None
        compiled = result.compile if n == 0 else None
        writes.append(_record_one(service, who, plan, result, judge_id, t, verdict_of_run(t.run.status), compiled))
    return writes


def _record_one(
    service: Service,
    who: Caller,
    plan: JudgePlan,
    result: JudgeResult,
    judge_id: str,
    test: TestResult,
    status: Verdict,
    compiled: BoxResult | None,
) -> AuditWrite:
    execution = ExecutionResult(status, result.language, result.version, compile=compiled, run=test.run)
    wall = sum(b.wall_time_ms for b in (compiled, test.run) if b is not None)
    return service.record(
        who,
        plan.tests[test.index],
        execution,
        f"{judge_id}-{test.index}",
        {"wall_time_ms": wall},
        audit_extra={"judge_id": judge_id, "test": test.index, "judged": test.verdict.value},
    )


# -- response: engine JudgeResult -> body ---------------------------------------------------------


def _compile_out(box: BoxResult | None, encoding: str) -> dict[str, Any] | None:
    if box is None:
        return None
    return {
        "status": box.status.value,
        "stdout": encode(box.stdout, encoding)[0],
        "stderr": encode(box.stderr, encoding)[0],
        "exit_code": box.exit_code,
        "signal": box.signal,
        "time_ms": box.cpu_time_ms,
        "wall_time_ms": box.wall_time_ms,
        "memory_kb": box.peak_memory_kb,
        "stdout_truncated": box.stdout_truncated,
        "stderr_truncated": box.stderr_truncated,
    }


def _test_out(t: TestResult, include_output: bool, encoding: str) -> dict[str, Any]:
    run = t.run
    return {
        "index": t.index,
        "verdict": t.verdict.value,
        "message": t.message,
        "time_ms": run.cpu_time_ms if run else 0,
        "wall_time_ms": run.wall_time_ms if run else 0,
        "memory_kb": run.peak_memory_kb if run else 0,
        "exit_code": run.exit_code if run else None,
        "signal": run.signal if run else None,
        "stdout": encode(run.stdout, encoding)[0] if run and include_output else None,
        "stderr": encode(run.stderr, encoding)[0] if run and include_output else None,
        "checker_time_ms": t.checker.cpu_time_ms if t.checker else None,
    }


def response_body(
    judge_id: str, result: JudgeResult, wall_ms: int, include_output: bool, encoding: str
) -> dict[str, Any]:
    return {
        "judge_id": judge_id,
        "verdict": result.verdict.value,
        "message": result.message,
        "failed_test": result.failed_test,
        "tests": [_test_out(t, include_output, encoding) for t in result.tests],
        "accepted": sum(1 for t in result.tests if t.verdict.value == "accepted"),
        "compile": _compile_out(result.compile, encoding),
        "checker_compile": _compile_out(result.checker_compile, encoding),
        "time_ms": sum(t.run.cpu_time_ms for t in result.tests if t.run),
        "wall_time_ms": wall_ms,
        "output_encoding": encoding,
        "runtime": {"language": result.language, "version": result.version},
    }
