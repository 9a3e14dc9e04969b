"""`create_app`: the HTTP service composed from its rooms. Middleware, outermost first: BodyLimit
(body_limit.py), Admission (admission.py); then the routers of each API surface (routes/), the
playground at every other path, the exception handlers (one JSON error shape) and the lifespan.

A request to POST /v1/execute, in order, each step observable in metrics and logs: body cap ->
admission's claim of a place -> authentication -> rate limit -> quota (routes/deps.py, node.py) ->
validation and translation (wire.py) -> engine prepare -> admitted run -> result -> telemetry ->
response -> audit record (Admission, once the response is written).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
from collections.abc import AsyncIterator
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Route

import stockade
from stockade.service.admission import Admission
from stockade.service.body_limit import BodyLimit
from stockade.service.config import ServiceConfig
from stockade.service.db import SERVER_GONE
from stockade.service.errors import ApiError
from stockade.service.node import Service, StartupRefused
from stockade.service.routes import (
    judge,
    judge0,
    mcp,
    piston,
    piston_connect,
    playground,
    problems,
    stream,
    submissions,
    unversioned,
    v1,
    workspaces,
)
from stockade.service.routes.deps import rate_headers, service_of
from stockade.service.wire import LIMIT_FIELDS

__all__ = ["Service", "StartupRefused", "create_app", "freeze_startup_heap"]


def freeze_startup_heap() -> None:
    """Leave what start-up built (FastAPI, pydantic, the registry and its detections: most of the
    heap) out of every later full garbage collection: each one walked all of it, stopping the event
    loop for 40–90 ms under load, where a refusal should take a few (docs/benchmarks.md)."""
    gc.collect()
    gc.freeze()


def create_app(config: ServiceConfig | None = None, *, service: Service | None = None) -> FastAPI:
    service = service or Service(config or ServiceConfig())
    mcp_endpoint = mcp.McpEndpoint(service) if service.config.mcp else None  # /mcp (docs/agents.md)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if not service.started:  # `stockade serve` starts it first, to refuse with a plain message
            await asyncio.to_thread(service.start)
        detection = asyncio.create_task(service.registry.detect_all())
        detection.add_done_callback(lambda _: freeze_startup_heap())
        app.state.detection = detection  # /readyz: ready once every toolchain is known
        try:
            async with contextlib.AsyncExitStack() as stack:
                if mcp_endpoint is not None:  # the MCP transport's task group, for the server's life
                    await stack.enter_async_context(mcp_endpoint.running())
                yield
        finally:
            detection.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await detection
            await service.registry.cancel_probes()
            await service.stop()

    app = FastAPI(
        title="Stockade",
        version=stockade.__version__,
        description="Self-hosted, polyglot, secure code execution. See docs/api.md.",
        lifespan=lifespan,
        redirect_slashes=False,  # `/v1/runtimes/` is not found, not redirected
        docs_url=None,  # routes/unversioned.py serves /docs from the package
        redoc_url=None,  # ReDoc loads from a CDN: not offered
    )
    app.state.service = service
    cfg = service.config
    surfaces = {
        **({f"{cfg.judge0_prefix}/submissions": judge0.refusal} if cfg.judge0 else {}),
        **({f"{cfg.judge0_prefix}/submissions/batch": judge0.refusal} if cfg.judge0 else {}),
        **(dict.fromkeys(piston.EXECUTE_PATHS, piston.refusal) if cfg.piston else {}),
    }
    app.add_middleware(Admission, service=service, surfaces=surfaces)
    app.add_middleware(  # outermost: an oversized body is refused whatever the load
        BodyLimit, max_bytes=service.config.max_body_bytes, on_reject=lambda: service.reject("payload_too_large")
    )
    app.add_exception_handler(ApiError, api_error)
    app.add_exception_handler(RequestValidationError, invalid_request)
    app.add_exception_handler(StarletteHTTPException, http_error)
    for gone in SERVER_GONE:
        app.add_exception_handler(gone, store_gone)
    app.add_exception_handler(Exception, internal_error)
    app.include_router(v1.router)
    app.include_router(stream.router)  # GET /v1/execute/stream, a WebSocket (docs/api.md)
    app.include_router(judge.router)  # POST /v1/judge (docs/judge.md)
    app.include_router(problems.router)  # /v1/problems: stored problems (docs/judge.md)
    app.include_router(workspaces.router)  # /v1/workspaces (docs/agents.md)
    app.include_router(submissions.router)  # /v1/submissions: queued executions (docs/api.md)
    app.include_router(unversioned.router)
    if cfg.judge0:  # Judge0 CE and Piston v2 compatibility (docs/compat.md)
        app.include_router(judge0.build(service, cfg.judge0_prefix))
    if cfg.piston:
        for router in piston.routers():
            app.include_router(router)
        app.include_router(piston_connect.router)  # its interactive WebSocket
    if mcp_endpoint is not None:  # MCP over streamable HTTP, the API's bearer keys (docs/agents.md)
        app.router.routes.append(Route("/mcp", mcp_endpoint, methods=["GET", "POST", "DELETE"]))
    app.router.default = playground.Playground()  # what no route matches, even by path alone
    return app


# -- exception handlers: every refusal has the one JSON shape of errors.py -----------------------------


async def api_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    return exc.response(rate_headers(request))


async def invalid_request(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    service = service_of(request)
    if request.method == "POST" and "json" not in request.headers.get("content-type", ""):
        service.reject("invalid_request")
        return ApiError("INVALID_REQUEST", "send a JSON body with `Content-Type: application/json`").response()
    errors = exc.errors()
    parts = []
    for e in errors[:5]:
        loc = ".".join(str(x) for x in e.get("loc", ()) if x != "body")
        parts.append(f"{loc or 'body'}: {e.get('msg', 'invalid')}")
    # A limit that is not an integer (`true`, "100", 1.5) is a bad limit, not a bad shape.
    code = "LIMIT_OUT_OF_RANGE" if all(_not_an_integer_limit(e) for e in errors) else "INVALID_REQUEST"
    service.reject(code.lower())
    return ApiError(code, "; ".join(parts) or "invalid request").response(rate_headers(request))


def _not_an_integer_limit(error: Any) -> bool:
    loc = tuple(error.get("loc", ()))
    return len(loc) == 3 and loc[:2] in {("body", f) for f in LIMIT_FIELDS} and error.get("type") == "int_type"


async def http_error(request: Request, exc: Exception) -> Response:
    """Starlette's own refusals (no route, a wrong method, a bad request line) in the one error shape."""
    assert isinstance(exc, StarletteHTTPException)
    code = {404: "NOT_FOUND", 405: "METHOD_NOT_ALLOWED"}.get(exc.status_code, "INVALID_REQUEST")
    return ApiError(code, str(exc.detail), headers=exc.headers).response(rate_headers(request))


async def store_gone(request: Request, exc: Exception) -> Response:
    return service_of(request).store_gone(exc).response(rate_headers(request))


async def internal_error(request: Request, exc: Exception) -> Response:
    service = service_of(request)
    error_id = service.internal_failure("internal error", exc)
    service.failures.add(type(exc).__name__)
    error = ApiError("INTERNAL_ERROR", "internal error; quote this id to the operator", error_id=error_id)
    return error.response(rate_headers(request))
