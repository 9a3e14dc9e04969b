"""What the routes of every surface share: the request's service, its caller, the documented errors."""

from __future__ import annotations

from typing import Any, cast

from fastapi import Request

from stockade.service.errors import ApiError
from stockade.service.node import Caller, Service
from stockade.service.wire import ErrorOut

ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorOut} for code in (400, 401, 403, 404, 413, 422, 429, 500, 503)
}


def service_of(request: Request) -> Service:
    """The node's Service (app.state; create_app puts it there). A plain call, not a dependency: it is
    on every request's path, and FastAPI's dependency resolution costs more than the attribute read."""
    return cast(Service, request.app.state.service)


async def caller(request: Request) -> Caller:
    """authentication -> rate limit -> quota, before the body is even validated. (Admission has
    claimed an execution place already, or refused the request.) On the event loop: SQLite reads
    in WAL mode never wait for a writer, and the hop to a worker thread cost more than they do."""
    service = service_of(request)
    c = service.authenticate(request)
    if (place := getattr(request.state, "place", None)) is not None:
        place.who = c  # for the journal entry of its run (journal.py)
    request.state.rate_headers = await service.rate_limit(c)
    # Held until the request ends (Admission): after its usage is written, if it runs.
    request.state.quota_hold = service.check_quota(c)
    return c


def admin(request: Request) -> Caller:
    service = service_of(request)
    c = service.authenticate(request)
    if c.key_id is not None and c.tenant.id not in service.config.admin_tenants:
        raise ApiError("FORBIDDEN", "an admin key is required")
    return c


def rate_headers(request: Request) -> dict[str, str]:
    """The X-RateLimit-* headers of a request the rate limit has counted (none for the others)."""
    return cast(dict[str, str], getattr(request.state, "rate_headers", {}))
