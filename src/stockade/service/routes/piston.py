"""Piston v2's API (docs/compat.md) at /api/v2, and at /api/v2/piston as the public Piston host lays it
out (clients such as pistonpy have that path built in). POST /execute runs like POST /v1/execute (the
steps of routes/compat.py); refusals are Piston's `{"message": ...}`.
"""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from stockade.runtimes.model import Language
from stockade.service import plans
from stockade.service.compat import piston as pi
from stockade.service.errors import ApiError
from stockade.service.node import Service
from stockade.service.routes import compat
from stockade.service.routes.deps import caller, service_of
from stockade.service.wire import ExecuteIn

PREFIXES = ("/api/v2", "/api/v2/piston")
EXECUTE_PATHS = tuple(f"{p}/execute" for p in PREFIXES)
VALIDATION = {"INVALID_REQUEST", "UNKNOWN_LANGUAGE", "TOOLCHAIN_MISSING", "VERSION_UNAVAILABLE", "LIMIT_OUT_OF_RANGE"}


def refusal(e: ApiError) -> Response:
    """Admission's refusals (overloaded, draining) in Piston's words."""
    headers = {"Retry-After": str(e.retry_after)} if e.retry_after is not None else None
    return JSONResponse({"message": e.message}, status_code=e.status, headers=headers)


def wording(request: Request, exc: Exception) -> Response | None:
    if isinstance(exc, (pi.PistonInvalid, compat.BadJson)):
        return compat.answer({"message": str(exc)}, 400, request)
    if isinstance(exc, ApiError):
        status = 400 if exc.code in VALIDATION else exc.status
        return JSONResponse({"message": exc.message}, status_code=status, headers=compat.error_headers(request, exc))
    return None


async def translate(service: Service, body: Any) -> tuple[Language, ExecuteIn]:
    """A Piston request's language and our request, on the newest available toolchain whose version
    satisfies its range (Piston's rule, not ours); PistonInvalid otherwise."""
    language, version, files = pi.check_shape(body)
    try:
        lang = service.registry.get(language)
    except LookupError:
        raise pi.PistonInvalid(f"{language}-{version} runtime is unknown") from None
    toolchains = await service.registry.detect_versions(lang)
    tc = next((t for t in toolchains if t.available and pi.version_matches(version, t.version)), None)
    if tc is None or tc.version is None:
        raise pi.PistonInvalid(f"{language}-{version} runtime is unknown")
    return lang, pi.to_execute_in(body, lang, tc.version, files, service.engine.policy)


def _router(prefix: str) -> APIRouter:
    router = APIRouter(prefix=prefix, route_class=compat.worded_route(wording), include_in_schema=False)

    @router.post("/execute")
    async def execute(request: Request) -> Response:
        content_type = request.headers.get("content-type")
        # text/plain too: the npm piston-client posts its JSON so (node-fetch's type for a string body).
        if content_type is not None and not content_type.startswith(("application/json", "text/plain")):
            return compat.answer({"message": "requests must be of type application/json"}, 415)
        service = service_of(request)
        who = await caller(request)
        lang, execute_in = await translate(service, await compat.json_body(request))
        plan = await plans.prepare(service, who, execute_in)
        result = await compat.run(request, plan)
        out: dict[str, Any] = {"language": lang.id, "version": result.version}
        if result.compile is not None:
            out["compile"] = pi.stage(result.compile)
        # Piston's answer when the compile stage failed: its result as the run stage too.
        final = result.run or result.compile
        out["run"] = pi.stage(final) if final is not None else None
        compat.record(request, who, plan, result, uuid.uuid4().hex)
        return compat.answer(out, 200, request)

    @router.get("/runtimes")
    async def runtimes(request: Request) -> Response:
        await compat.identify(request)
        service = service_of(request)
        every = await service.registry.detect_all_versions()
        out = [  # a runtime per available version, newest first, as Piston lists them
            {"language": lang.id, "version": tc.version, "aliases": list(lang.aliases)}
            for lang in service.registry.languages
            for tc in every[lang.id]
            if tc.available
        ]
        return compat.answer(out, 200, request)

    @router.get("/packages")
    async def packages(request: Request) -> Response:
        await compat.identify(request)
        service = service_of(request)
        every = await service.registry.detect_all_versions()
        out = [
            {"language": lang.id, "language_version": tc.version, "installed": tc.available}
            for lang in service.registry.languages
            for tc in every[lang.id]
        ]
        return compat.answer(out, 200, request)

    @router.api_route("/packages", methods=["POST", "DELETE"])
    async def install(request: Request) -> Response:
        await compat.identify(request)
        message = "packages are read-only here: an operator installs toolchains (stockade toolchains install)"
        return JSONResponse({"message": message}, status_code=405, headers={"Allow": "GET"})

    return router


def routers() -> list[APIRouter]:
    return [_router(p) for p in PREFIXES]
