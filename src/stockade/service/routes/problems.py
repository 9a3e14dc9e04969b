"""/v1/problems (docs/judge.md): a tenant's stored problems, and their judgement by id with a source.

POST /v1/problems checks a problem as a judgement would (its files, the tenant's languages and maxima,
the engine's bounds, the checker's or interactor's toolchain) and keeps it (problems.py); GET and
DELETE read and remove it. These take authentication and the rate limit and run nothing (no quota
hold). POST /v1/problems/{id}/judge is a judgement (routes/judge.py `judged`): Admission claims its
place as for /v1/judge, `caller` holds its quota; the stored problem is translated again, for the
tenant as it is now.
"""

from __future__ import annotations

import asyncio
import json
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field

from stockade.engine import EngineError
from stockade.engine.judge import JudgeLimits, ProgramChecker
from stockade.service.errors import ApiError
from stockade.service.node import Caller, Service
from stockade.service.problems import ProblemLimits, ProblemStore
from stockade.service.routes.compat import identify
from stockade.service.routes.deps import ERROR_RESPONSES, caller, rate_headers, service_of
from stockade.service.routes.judge import judged, translated
from stockade.service.routes.judge_wire import (
    JudgeOut,
    ProblemIn,
    ProblemJudgeIn,
    ProblemOut,
    data_files,
    problem_parts,
    to_judge_request,
)
from stockade.service.wire import stage_limits

router = APIRouter(prefix="/v1/problems", tags=["problems"])
Who = Annotated[Caller, Depends(identify)]


class ProblemsOut(BaseModel):
    problems: list[ProblemOut]
    limits: dict[str, int] = Field(description="per_tenant (problems), tenant_bytes (all of them together)")


class ProblemDetailOut(ProblemOut):
    problem: dict[str, Any] = Field(description="The problem as it was stored (ProblemIn)")


def problems_of(request: Request) -> ProblemStore:
    """The node's problem store, opened at its first use (its file is under the data dir)."""
    store = getattr(request.app.state, "problems", None)
    if store is None:
        cfg = service_of(request).config
        store = ProblemStore(cfg.problems_db_path, ProblemLimits(cfg.problems_per_tenant, cfg.problems_tenant_bytes))
        request.app.state.problems = store
    return store


async def _store(request: Request) -> ProblemStore:
    store = getattr(request.app.state, "problems", None)
    return store if store is not None else await asyncio.to_thread(problems_of, request)


def _json(request: Request, body: Any, status: int = 200) -> JSONResponse:
    return JSONResponse(body, status_code=status, headers=rate_headers(request))


async def _checked(problem: ProblemIn, who: Caller, service: Service) -> None:
    """What a judgement of it would refuse, before any submission: typed ApiErrors."""
    policy = service.engine.policy
    limits = stage_limits(problem.limits, who.tenant, policy.run.default, "run")
    tests, checker, interactor = problem_parts(problem, data_files(problem.files), who.tenant, service, limits)
    cfg = service.config
    most = JudgeLimits(cfg.judge_max_tests, cfg.judge_max_bytes)
    if len(tests) > most.max_tests:
        raise ApiError("PAYLOAD_TOO_LARGE", f"at most {most.max_tests} tests, not {len(tests)}")
    if sum(len(t.stdin) + len(t.expected) for t in tests) > most.max_total_bytes:
        raise ApiError("PAYLOAD_TOO_LARGE", f"the tests' inputs and outputs exceed {most.max_total_bytes} bytes")
    try:
        policy.run.check(limits, "run")
        for i, t in enumerate(tests):
            if t.limits is not None:
                policy.run.check(t.limits, f"test {i} run")
        for program in (checker, interactor):
            if isinstance(program, ProgramChecker):
                await service.engine.prepare(program.request)
    except EngineError as e:
        raise ApiError(e.code, e.message) from None


@router.post("", status_code=201, response_model=ProblemOut, responses=ERROR_RESPONSES, summary="Store a problem")
async def create(request: Request, body: ProblemIn, who: Who) -> JSONResponse:
    service = service_of(request)
    try:
        await _checked(body, who, service)
    except ApiError as e:
        service.reject(e.code.lower())
        raise
    store = await _store(request)
    text = body.model_dump_json(exclude_unset=True)  # unset stays unset: the checker of an interactor
    kind = "interactor" if body.interactor is not None else body.checker.kind
    info = await asyncio.to_thread(store.create, who.tenant.id, text, len(body.tests), body.name, kind)
    return _json(request, info.as_dict(), 201)


@router.get("", response_model=ProblemsOut, responses=ERROR_RESPONSES, summary="The tenant's problems")
async def listing(request: Request, who: Who) -> JSONResponse:
    store = await _store(request)
    found = await asyncio.to_thread(store.all, who.tenant.id)
    limits = {"per_tenant": store.limits.per_tenant, "tenant_bytes": store.limits.tenant_bytes}
    return _json(request, {"problems": [i.as_dict() for i in found], "limits": limits})


@router.get("/{problem_id}", response_model=ProblemDetailOut, responses=ERROR_RESPONSES, summary="A problem")
async def show(request: Request, problem_id: str, who: Who) -> JSONResponse:
    store = await _store(request)
    info, body = await asyncio.to_thread(store.get, who.tenant.id, problem_id)
    return _json(request, {**info.as_dict(), "problem": json.loads(body)})


@router.delete("/{problem_id}", status_code=204, responses=ERROR_RESPONSES, summary="Delete a problem")
async def delete(request: Request, problem_id: str, who: Who) -> Response:
    store = await _store(request)
    await asyncio.to_thread(store.delete, who.tenant.id, problem_id)
    return Response(status_code=204, headers=rate_headers(request))


@router.post(
    "/{problem_id}/judge", response_model=JudgeOut, responses=ERROR_RESPONSES, summary="Judge a source on a problem"
)
async def judge(
    request: Request, problem_id: str, body: ProblemJudgeIn, who: Annotated[Caller, Depends(caller)]
) -> JSONResponse:
    service = service_of(request)
    store = await _store(request)
    try:
        _, text = await asyncio.to_thread(store.get, who.tenant.id, problem_id)
    except ApiError as e:
        service.reject(e.code.lower())
        raise
    problem = _load(text)
    req = translated(service, lambda: to_judge_request(problem, body, data_files(problem.files), who, service))
    return await judged(request, who, req, body.include_output, body.output_encoding, problem_id)


def _load(text: str) -> ProblemIn:
    return ProblemIn.model_validate_json(text)
