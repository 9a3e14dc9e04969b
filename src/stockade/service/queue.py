"""The cluster's job queue: one Redis stream read by the workers' consumer group (docs/cluster.md).

Why Redis Streams through redis-py's asyncio client, and no task library: a consumer group is the
at-least-once queue the issue asks for as it is (entries stay pending until acknowledged; XPENDING and
XCLAIM hand a dead consumer's entries to another), and the pieces a task library would add (result
backends, retries, serialisers) Stockade already has in its store. Celery, RQ, arq or dramatiq would
each bring a second execution model and a worker process of their own around the one engine path.

- `enqueue`: a batch is added whole or refused whole, by one Lua script that checks the stream's length
  against the overall bound and the tenant's counter against its own, so nodes enqueuing at once cannot
  overrun either.
- `ack`: acknowledged and deleted from the stream, and the tenant's counter decreased, once (a second
  ack of the same entry changes nothing).
- Liveness: each worker writes its heartbeat into one sorted set; a worker whose heartbeat is older
  than `dead_after_s` is dead, and `reclaim` moves its pending entries to a live one. An entry delivered
  `attempts` times is given up rather than delivered again (worker.py): its job ends as an explicit
  internal error and `bury` moves the entry to the dead-letter stream.
- Results: a worker publishes the id of each finished submission; API nodes wake their waiters from it
  (a lost message only delays a waiter to its next poll of the store).
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

import redis.asyncio as aioredis
from redis.exceptions import RedisError, ResponseError

PREFIX: Final = "stockade:"
STREAM: Final = PREFIX + "jobs"
DEAD: Final = PREFIX + "dead"
WORKERS: Final = PREFIX + "workers"
DONE: Final = PREFIX + "done"
REDELIVERED: Final = PREFIX + "redelivered"  # a count of the entries reclaimed from dead workers
GROUP: Final = "workers"
DEAD_KEPT: Final = 10_000  # dead letters kept for inspection, the oldest dropped first
ANNOUNCED_MAX: Final = 64 << 10  # a final record larger than this is announced by id alone

ERRORS: Final = (RedisError, OSError)  # Redis unreachable, restarting, or refusing

_ENQUEUE: Final = """
local n = #ARGV - 2
if redis.call('XLEN', KEYS[1]) + n > tonumber(ARGV[1]) then return -1 end
if tonumber(redis.call('GET', KEYS[2]) or '0') + n > tonumber(ARGV[2]) then return -2 end
for i = 3, #ARGV do redis.call('XADD', KEYS[1], '*', 'job', ARGV[i]) end
redis.call('INCRBY', KEYS[2], n)
return n
"""
_ACK: Final = """
redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])
if redis.call('XDEL', KEYS[1], ARGV[2]) == 1 then
  if redis.call('DECR', KEYS[2]) <= 0 then redis.call('DEL', KEYS[2]) end
end
return 1
"""


class QueueFull(Exception):
    """The batch would pass the queue's bound (`tenant`: the tenant's own)."""

    def __init__(self, tenant: bool) -> None:
        super().__init__("tenant" if tenant else "overall")
        self.tenant = tenant


@dataclass(frozen=True)
class Delivery:
    """One job delivered to this worker: its stream entry, its payload, and how often it was delivered."""

    entry: str
    job: dict[str, Any]
    attempt: int


def _tenant_key(tenant: str) -> str:
    return f"{PREFIX}queued:{tenant}"


class JobQueue:
    def __init__(self, url: str, *, size: int, tenant_size: int, attempts: int, dead_after_s: float) -> None:
        self.url = url
        self.size = size
        self.tenant_size = tenant_size
        self.attempts = attempts
        self.dead_after_s = dead_after_s
        # Short timeouts: a stopped Redis must turn into a typed refusal, not a hung request.
        self.redis = aioredis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=2, health_check_interval=5)
        self._enqueue = self.redis.register_script(_ENQUEUE)
        self._ack = self.redis.register_script(_ACK)

    async def close(self) -> None:
        await self.redis.aclose()

    async def ping(self) -> bool:
        try:
            return bool(await self.redis.ping())
        except ERRORS:
            return False

    # -- API nodes ----------------------------------------------------------------------------
    async def enqueue(self, tenant: str, jobs: Sequence[dict[str, Any]]) -> None:
        """Add the jobs, all or none; QueueFull past a bound, ERRORS when Redis cannot take them."""
        payloads = [json.dumps(job, separators=(",", ":")) for job in jobs]
        added = await self._enqueue(keys=[STREAM, _tenant_key(tenant)], args=[self.size, self.tenant_size, *payloads])
        if int(added) < 0:
            raise QueueFull(tenant=int(added) == -2)

    # -- workers ------------------------------------------------------------------------------
    async def ensure_group(self) -> bool:
        """Create the consumer group (and the stream) unless it exists; whether it was created."""
        try:
            await self.redis.xgroup_create(STREAM, GROUP, id="0", mkstream=True)
        except ResponseError as e:
            if "BUSYGROUP" in str(e):
                return False
            raise
        return True

    async def take(self, consumer: str, block_ms: int) -> Delivery | None:
        """The next new job for `consumer`, waiting up to `block_ms` for one."""
        try:
            got: Any = await self.redis.xreadgroup(GROUP, consumer, {STREAM: ">"}, count=1, block=block_ms)
        except ResponseError as e:
            if "NOGROUP" not in str(e):
                raise
            await self.ensure_group()  # Redis lost its data (a restart without persistence)
            return None
        for _stream, entries in got or ():
            for entry, fields in entries:
                return Delivery(_text(entry), json.loads(fields[b"job"]), 1)
        return None

    async def ack(self, delivery: Delivery) -> None:
        await self._ack(keys=[STREAM, _tenant_key(delivery.job["tenant"])], args=[GROUP, delivery.entry])

    async def beat(self, consumer: str) -> None:
        await self.redis.zadd(WORKERS, {consumer: time.time()})

    async def leave(self, consumer: str) -> None:
        """A worker stopping cleanly: no longer counted alive (its pending entries, if any, are reclaimed)."""
        await self.redis.zrem(WORKERS, consumer)

    async def alive(self) -> list[str]:
        members = await self.redis.zrangebyscore(WORKERS, time.time() - self.dead_after_s, "+inf")
        return [_text(m) for m in members]

    async def reclaim(self, consumer: str, limit: int, *, mine: bool = False) -> list[Delivery]:
        """Up to `limit` entries pending with dead workers, moved to `consumer`, each with its attempt.
        `mine`: instead, those pending with `consumer` itself (its previous process's, at a start)."""
        idle_ms = 0 if mine else int(self.dead_after_s * 1000)
        pending: Any = await self.redis.xpending_range(
            STREAM, GROUP, min="-", max="+", count=100, idle=idle_ms or None, consumername=consumer if mine else None
        )
        alive = set() if mine else set(await self.alive())
        claimed: list[Delivery] = []
        for p in pending:
            if len(claimed) >= limit or _text(p["consumer"]) in alive:
                continue
            got: Any = await self.redis.xclaim(STREAM, GROUP, consumer, idle_ms, [_text(p["message_id"])])
            attempt = int(p["times_delivered"]) + 1
            # An entry deleted meanwhile (another worker acked it) comes back without fields.
            claimed += [Delivery(_text(e), json.loads(f[b"job"]), attempt) for e, f in got if f]
        if claimed:
            await self.redis.incrby(REDELIVERED, len(claimed))
        return claimed

    async def bury(self, delivery: Delivery, reason: str) -> None:
        """A job given up: kept in the dead-letter stream, then acknowledged."""
        await self.redis.xadd(
            DEAD,
            {"job": json.dumps(delivery.job), "reason": reason, "attempts": str(delivery.attempt - 1)},
            maxlen=DEAD_KEPT,
            approximate=True,
        )
        await self.ack(delivery)

    async def announce(self, tenant: str, key: str, record: dict[str, Any]) -> None:
        """Tell the API nodes that submission `key` is final, with its record unless that is large."""
        message = json.dumps({"key": key, "tenant": tenant, "record": record})
        if len(message) > ANNOUNCED_MAX:
            message = json.dumps({"key": key, "tenant": tenant})  # its waiters read it from the store
        await self.redis.publish(DONE, message)

    # -- operators ----------------------------------------------------------------------------
    async def describe(self) -> dict[str, Any]:
        """Depth (jobs queued or running), the oldest one's age, workers alive, redeliveries and dead
        letters since the queue began; `available: false` without Redis."""
        try:
            depth = await self.redis.xlen(STREAM)
            first = await self.redis.xrange(STREAM, count=1)
            dead = await self.redis.xlen(DEAD)
            alive = await self.alive()
            redelivered = int(await self.redis.get(REDELIVERED) or 0)
        except ERRORS:
            return {"available": False}
        # An entry id starts with its creation time in ms.
        oldest = time.time() - int(_text(first[0][0]).split("-")[0]) / 1000 if first else 0.0
        return {
            "available": True,
            "depth": depth,
            "oldest_s": round(max(0.0, oldest), 3),
            "workers_alive": len(alive),
            "redelivered": redelivered,
            "dead_letters": dead,
            "size": self.size,
            "tenant_size": self.tenant_size,
        }


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
