"""Per-tenant request rate limiting (docs/tenants.md): in memory for one node, or in the cluster's Redis
so that its API nodes share each tenant's one budget (`limits`' Redis storage, through redis-py).

Moving window: a tenant gets at most `per_minute` hits in any 60-second span, so there is no
burst of 2x at a fixed-window boundary. Memory is O(per_minute) timestamps per active tenant.

The asyncio flavour of `limits`, used from the event loop: its memory storage expires old hits in a
background task, where the threaded one starts a timer thread whenever its last has finished, i.e.
on almost every request at a realistic pace (~0.7 ms each, measured, on the request's path). That
task still hops to a worker thread for each key it expires (limits 5.8), but off the request's path.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Final

from limits import RateLimitItemPerMinute
from limits.aio.storage import MemoryStorage, RedisStorage, Storage
from limits.aio.strategies import MovingWindowRateLimiter
from limits.errors import StorageError

_NAMESPACE: Final = "stockade-tenant"


class RateUnavailable(Exception):
    """The shared storage (Redis) cannot be reached: no request can be counted."""


@dataclass(frozen=True)
class RateDecision:
    allowed: bool
    limit: int
    remaining: int  # hits left in the current window after this one
    retry_after_s: int  # 0 when allowed; else whole seconds until a hit would be allowed (for Retry-After)


class RateLimiter:
    """For one event loop (the `limits` memory storage locks per key). In memory, state is lost on restart.
    With Redis unreachable a hit raises (redis-py's errors: the queue's refusal, cluster.py)."""

    def __init__(self, redis_url: str | None = None) -> None:
        self._storage: Storage = MemoryStorage()
        if redis_url is not None:
            self._storage = RedisStorage(
                "async+" + redis_url,
                implementation="redispy",
                key_prefix="stockade:rate",
                wrap_exceptions=True,
                socket_timeout=5,
                socket_connect_timeout=2,
            )
        self._limiter = MovingWindowRateLimiter(self._storage)

    async def hit(self, tenant_id: str, per_minute: int) -> RateDecision:
        """Count one request for the tenant if its budget allows it.

        The window is keyed by (tenant, per_minute), so changing a tenant's rate starts a fresh window.
        """
        if per_minute < 1:
            raise ValueError("per_minute must be >= 1")
        item = RateLimitItemPerMinute(per_minute, namespace=_NAMESPACE)
        try:
            allowed = await self._limiter.hit(item, tenant_id)
            stats = await self._limiter.get_window_stats(item, tenant_id)
        except StorageError as e:
            raise RateUnavailable(str(e)) from e
        remaining = max(0, stats.remaining)
        if allowed:
            return RateDecision(True, per_minute, remaining, 0)
        # reset_time is when the oldest hit in the window expires, freeing one slot.
        retry_after = max(1, math.ceil(stats.reset_time - time.time()))
        return RateDecision(False, per_minute, remaining, retry_after)

    async def reset(self) -> None:
        """Forget every hit (tests, or an operator clearing throttles)."""
        await self._storage.reset()
