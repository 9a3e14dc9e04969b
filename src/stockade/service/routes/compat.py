"""What the compatible surfaces (judge0.py, piston.py) share: the steps of v1.execute as functions, and a
route class that words every refusal in the surface's own error shape.

The steps are v1.execute's, in its order: `caller` (deps.py: authentication, rate limit, quota hold),
`plans.prepare` (wire.to_request, then Engine.prepare), `run` (Service.admitted around Engine.run, on the
place Admission claimed), `record` (Service.record; Admission writes the audit record once the
response is written). A surface adds only its translation on either side.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse, Response
from fastapi.routing import APIRoute

from stockade.engine import ExecutionResult, Plan
from stockade.service.errors import ApiError
from stockade.service.node import Caller
from stockade.service.routes.deps import rate_headers, service_of

# How a surface answers an exception its routes raised (None: not one it words; the app's handlers then do).
Wording = Callable[[Request, Exception], Response | None]


async def run(request: Request, plan: Plan) -> ExecutionResult:
    """Run on the place Admission claimed for this request."""
    service = service_of(request)
    async with service.admitted(request.state.place):
        result = await service.engine.run(plan)
    waited = sum(b.queue_ms for b in (result.compile, result.run) if b is not None)
    service.metrics.queue_wait.observe(waited / 1000)
    return result


def record(request: Request, who: Caller, plan: Plan, result: ExecutionResult, execution_id: str) -> None:
    """Telemetry now; the audit record and usage by Admission once the response is written."""
    wall = sum(b.wall_time_ms for b in (result.compile, result.run) if b is not None)
    request.state.audit_write = service_of(request).record(who, plan, result, execution_id, {"wall_time_ms": wall})


async def identify(request: Request) -> Caller:
    """Authentication and rate limit, for the routes that run nothing (so take no quota hold)."""
    service = service_of(request)
    who = service.authenticate(request)
    request.state.rate_headers = await service.rate_limit(who)
    return who


class BadJson(Exception):
    """The body is not JSON."""


async def json_body(request: Request) -> Any:
    """The body as JSON (None when empty), or BadJson."""
    raw = await request.body()
    try:
        return json.loads(raw) if raw else None
    except (ValueError, RecursionError):
        raise BadJson("the body is not valid JSON") from None


def answer(body: Any, status: int = 200, request: Request | None = None) -> JSONResponse:
    return JSONResponse(body, status_code=status, headers=rate_headers(request) if request is not None else None)


def error_headers(request: Request, e: ApiError) -> dict[str, str]:
    headers = {**rate_headers(request), **e.headers}
    if e.retry_after is not None:
        headers["Retry-After"] = str(e.retry_after)
    return headers


def worded_route(wording: Wording, before: Callable[[Request], None] | None = None) -> type[APIRoute]:
    """An APIRoute whose handler (dependencies included) words the exceptions `wording` knows;
    `before` may adjust the request first (Judge0's auth headers)."""

    class WordedRoute(APIRoute):
        def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
            handler = super().get_route_handler()

            async def worded(request: Request) -> Response:
                if before is not None:
                    before(request)
                try:
                    return await handler(request)
                except Exception as exc:
                    response = wording(request, exc)
                    if response is None:
                        raise
                    return response

            return worded

    return WordedRoute
