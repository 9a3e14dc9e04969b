"""POST /v1/judge (docs/judge.md): a submission against many tests, compiled once, one verdict per test.

The steps of v1.execute, in its order: `caller` (authentication, rate limit, one quota hold), the
body's translation (judge_wire.py: the submission, a checker program or interactor, within the
tenant's languages and maxima), one more quota hold per further execution (each test is one, and one
more for a checker program's or interactor's run on it), the engine Judge's prepare, the run on the
place Admission claimed (Service.admitted), and one Service.record per box that ran a program (its
log line, metrics, audit record and usage; a compile is recorded with its program's first run).
A stored problem's judgement (problems.py) goes through `judged` too.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from typing import Annotated, TypeVar

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse

from stockade.engine import EngineError, ExecutionResult, Plan, Verdict
from stockade.engine.judge import (
    Judge,
    JudgeLimits,
    JudgePlan,
    JudgeProgress,
    JudgeRequest,
    JudgeResult,
    ProgramChecker,
    TestResult,
)
from stockade.engine.model import verdict_of_compile, verdict_of_run
from stockade.sandbox import BoxResult
from stockade.service.errors import ApiError
from stockade.service.node import AuditWrite, Caller, Service
from stockade.service.quota import QuotaHold
from stockade.service.routes.deps import ERROR_RESPONSES, caller, rate_headers, service_of
from stockade.service.routes.judge_wire import JudgeIn, JudgeOut, response_body, split_files, to_judge_request

router = APIRouter(prefix="/v1")
T = TypeVar("T")
JUDGE_PATH = "/v1/judge"


def translated(service: Service, build: Callable[[], T]) -> T:
    """A body's translation, its refusals counted and typed."""
    try:
        return build()
    except (ApiError, EngineError) as e:
        service.reject(e.code.lower())
        raise e if isinstance(e, ApiError) else ApiError(e.code, e.message) from None


def _hold_each(service: Service, who: Caller, first: QuotaHold, executions: int) -> QuotaHold:
    """`caller` held one execution; a judge request holds one per execution (QUOTA_EXCEEDED otherwise)."""
    holds = [first]
    try:
        for _ in range(executions - 1):  # no await: one step
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

    def build() -> JudgeRequest:
        source, data = split_files(body)
        return to_judge_request(body, source, data, who, service)

    req = translated(service, build)
    return await judged(request, who, req, body.include_output, body.output_encoding)


async def judged(
    request: Request, who: Caller, req: JudgeRequest, include_output: bool, encoding: str, problem_id: str | None = None
) -> JSONResponse:
    """A translated judge request, from its quota holds to its answer (its records follow it)."""
    service = service_of(request)
    judge_id = uuid.uuid4().hex
    programs = 2 if req.interactor is not None or isinstance(req.checker, ProgramChecker) else 1
    request.state.quota_hold = _hold_each(service, who, request.state.quota_hold, len(req.tests) * programs)
    cfg = service.config
    judging = Judge(service.engine, JudgeLimits(cfg.judge_max_tests, cfg.judge_max_bytes))

    async def prepare() -> JudgePlan:
        try:
            return await judging.prepare(req)
        except EngineError as e:
            service.reject(e.code.lower())
            raise ApiError(e.code, e.message) from None

    plan = await prepare()
    loop = asyncio.get_running_loop()
    started = loop.time()
    async with service.admitted(request.state.place):
        result, dropped = await _run_to_the_end(judging, plan, service.sandbox.slots_total)
    wall_ms = int((loop.time() - started) * 1000)
    if result.compile is not None:
        service.metrics.queue_wait.observe(result.compile.queue_ms / 1000)
    out = response_body(judge_id, result, wall_ms, include_output, encoding, problem_id)
    request.state.audit_write = _record(service, who, plan, result, judge_id, problem_id)
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


def _record(
    service: Service, who: Caller, plan: JudgePlan, result: JudgeResult, judge_id: str, problem_id: str | None
) -> list[AuditWrite]:
    """One Service.record per program box that ran: each test run (the compile goes with the first),
    and each checker program or interactor run (its compile with its first). A judgement that ran no
    test (a compile failed) is one execution of the submission's compile, and one of the checker's
    when that compile ran."""
    role = "interactor" if result.interactive else "checker"
    extra = {"judge_id": judge_id, **({"problem_id": problem_id} if problem_id else {})}
    writes = []
    compiled, checker_compiled = result.compile, result.checker_compile
    for t in result.tests:
        if t.run is not None:
            ran = ExecutionResult(verdict_of_run(t.run.status), result.language, result.version, compiled, t.run)
            writes.append(_one(service, who, plan.tests[t.index], ran, f"{judge_id}-{t.index}", extra, t.index, t))
            compiled = None
        if t.checker is not None and plan.checker is not None:
            box = t.checker
            ran = _of_program(plan.checker, box, checker_compiled)
            name = f"{judge_id}-{t.index}-{role}"
            writes.append(_one(service, who, plan.checker, ran, name, {**extra, "role": role}, t.index, t))
            checker_compiled = None
    if compiled is not None or not writes:  # no test ran: the compile's execution
        status = verdict_of_compile(compiled.status) if compiled else None
        ran = ExecutionResult(status or Verdict.OK, result.language, result.version, compiled)
        writes.append(_one(service, who, plan.tests[0], ran, f"{judge_id}-0", extra, 0, result.tests[0]))
    if checker_compiled is not None and plan.checker is not None:
        ran = _of_program(plan.checker, None, checker_compiled)
        writes.append(_one(service, who, plan.checker, ran, f"{judge_id}-{role}", {**extra, "role": role}, 0, None))
    return writes


def _of_program(plan: Plan, box: BoxResult | None, compiled: BoxResult | None) -> ExecutionResult:
    status = verdict_of_compile(compiled.status) if compiled is not None else None
    if status is None:
        status = verdict_of_run(box.status) if box is not None else Verdict.OK
    return ExecutionResult(status, plan.language.id, plan.toolchain.version, compiled, box)


def _one(
    service: Service,
    who: Caller,
    plan: Plan,
    ran: ExecutionResult,
    execution_id: str,
    extra: dict[str, str],
    index: int,
    test: TestResult | None,
) -> AuditWrite:
    wall = sum(b.wall_time_ms for b in (ran.compile, ran.run) if b is not None)
    judged_as = {"judged": test.verdict.value} if test is not None else {}
    return service.record(
        who, plan, ran, execution_id, {"wall_time_ms": wall}, audit_extra={**extra, "test": index, **judged_as}
    )
