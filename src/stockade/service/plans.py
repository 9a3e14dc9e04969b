"""An execution body's engine plan: the step every surface takes before a run, the workers' too (they plan
again what an API node checked, from the body it queued)."""

from __future__ import annotations

import asyncio
import dataclasses
from typing import TYPE_CHECKING

from stockade.engine import EngineError, ExecutionRequest, Plan
from stockade.service.errors import ApiError
from stockade.service.wire import ExecuteIn, to_request

if TYPE_CHECKING:
    from stockade.service.node import Caller, Service
    from stockade.service.workspaces import Lease


async def prepare(service: Service, who: Caller, body: ExecuteIn, lease: Lease | None = None) -> Plan:
    """The engine plan of the body (with the workspace's files), or ApiError counted as a rejection."""
    try:
        request: ExecutionRequest = to_request(body, who.tenant, service.registry, service.engine.policy)
        if lease is not None:
            files = await asyncio.to_thread(lease.files)
            request = dataclasses.replace(request, box_files=tuple(files))
        return await service.engine.prepare(request)
    except EngineError as e:
        service.reject(e.code.lower())
        raise ApiError(e.code, e.message) from None
    except ApiError as e:
        service.reject(e.code.lower())
        raise
