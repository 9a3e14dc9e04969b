"""An API node's side of the cluster queue (docs/cluster.md): submissions recorded in the shared store,
queued in Redis (queue.py) for the workers (worker.py), and their results awaited.

`Clustered` takes the place of a node's own submissions.Runner when `--redis-url` is set: the same
`enqueue` and `finished`, over the shared store. POST /v1/execute rides it too (`execute`): queued, then
awaited, and answered with the body the run's record holds, so on a cluster every run is a worker's.

Waiting: every API node subscribes to the channel the workers announce finished submissions on (with
the final record, unless it is large), and wakes the requests waiting for one. A message lost (a Redis
restart, a reconnect) only delays a waiter to its next poll of the store, every POLL_S.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

from stockade.service.errors import ApiError
from stockade.service.queue import DONE, ERRORS, JobQueue, QueueFull
from stockade.service.storage import WRITE_ERRORS
from stockade.service.submissions import Job, Record, SubmissionStore
from stockade.service.worker import Worker

if TYPE_CHECKING:
    from stockade.service.node import Service

log = logging.getLogger("stockade.service")

POLL_S: Final = 0.5  # a waiter reads the store this often, whatever the channel says
WAIT_MARGIN_S: Final = 30.0  # /v1/execute waits for its run's limits plus this (queue wait, a redelivery)
TABLE: Final = "submission_records"  # POST /v1/submissions' records in the shared database


def queue_of(service: Service) -> JobQueue:
    cfg = service.config
    assert cfg.redis_url is not None
    return JobQueue(
        cfg.redis_url,
        size=cfg.submission_queue_size,
        tenant_size=cfg.tenant_queue_size,
        attempts=cfg.job_attempts,
        dead_after_s=cfg.worker_dead_after_s,
    )


def shared_store(service: Service) -> SubmissionStore:
    cfg = service.config
    assert cfg.database_url is not None
    return SubmissionStore(
        cfg.database_url, table=TABLE, keep_seconds=cfg.submission_keep_seconds, keep_rows=cfg.submission_keep_rows
    )


class Clustered:
    """The cluster's submissions as one API node sees them (module doc)."""

    def __init__(self, service: Service, store: SubmissionStore, queue: JobQueue) -> None:
        self.service = service
        self.store = store
        self.queue = queue
        # By (tenant, id): a request for another tenant's id never shares, nor ends, its owner's wait.
        self._waiting: dict[tuple[str, str], _Waiter] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._figures: dict[str, Any] = {"available": False}

    async def start(self) -> None:
        self._tasks = [
            asyncio.create_task(self._listen(), name="cluster-listen"),
        ]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def describe(self) -> dict[str, Any]:
        """The queue's figures as `refresh` last read them; `queued` counts the jobs not acknowledged."""
        figures = self._figures
        return {**figures, "queued": figures.get("depth", 0), "oldest_queued_s": figures.get("oldest_s", 0.0)}

    async def refresh(self) -> None:
        """Read the queue's figures now (for /v1/diagnostics and /metrics)."""
        self._figures = await self.queue.describe()

    async def ping(self) -> bool:
        return await self.queue.ping()

    async def enqueue(self, jobs: list[Job]) -> None:
        """Record the jobs as queued and queue them, all or none (ApiError when refused)."""
        tenant = jobs[0].caller.tenant.id
        specs = [_spec(job) for job in jobs]
        for job in jobs:
            await asyncio.to_thread(self.store.put, tenant, job.key, "queued", job.record)
        try:
            await self.queue.enqueue(tenant, specs)
        except (QueueFull, *ERRORS) as e:
            for job in jobs:
                await asyncio.to_thread(self.store.delete, tenant, job.key)
            if isinstance(e, QueueFull):
                if e.tenant:
                    self.service.reject("tenant_queue_full")
                    raise ApiError("TENANT_QUEUE_FULL", "the tenant's queued submissions are at their bound",
                                   retry_after=1) from None  # fmt: skip
                self.service.reject("overloaded")
                raise ApiError("OVERLOADED", "the submission queue is full", retry_after=1) from None
            self.service.reject("queue_unavailable")
            error_id = self.service.internal_failure("the queue (Redis) refused the submissions:", e)
            raise ApiError("QUEUE_UNAVAILABLE", "the job queue cannot be reached", retry_after=1,
                           error_id=error_id) from None  # fmt: skip
        if holds := [job.hold.id for job in jobs if job.hold.id is not None]:
            assert self.service.store is not None
            try:
                await asyncio.to_thread(self.service.store.queue_holds, holds)
            except WRITE_ERRORS as e:  # they stay this node's: its restart would drop them early
                log.warning("could not hand quota holds to the queue: %s: %s", type(e).__name__, e)

    async def final(self, key: str, timeout: float, tenant: str, *, fresh: bool = False) -> Record | None:
        """The record of submission `key` once final, or as it is after `timeout` seconds. `fresh`: the
        caller queued it just now, so the store is not read before a first wait."""
        deadline = time.monotonic() + timeout
        waiter = self._waiting.setdefault((tenant, key), _Waiter())
        try:
            while True:
                if waiter.record is not None:  # the announcement carried it
                    return waiter.record
                if not fresh:
                    record = await asyncio.to_thread(self.store.get, tenant, key)
                    if record is None or record["state"] == "finished" or deadline <= time.monotonic():
                        return record
                fresh = False
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(waiter.event.wait(), min(POLL_S, max(0.0, deadline - time.monotonic())))
                waiter.event.clear()
        finally:
            self._waiting.pop((tenant, key), None)

    async def execute(self, job: Job) -> dict[str, Any]:
        """POST /v1/execute on a cluster: the job queued, its record awaited; the answer its run's body."""
        tenant = job.caller.tenant.id
        self._waiting[tenant, job.key] = _Waiter()  # before the job is out: its announcement may come at once
        try:
            await self.enqueue([job])
        except ApiError:
            self._waiting.pop((tenant, job.key), None)
            raise
        assert job.plan is not None
        limits = job.plan.limits
        wait = sum((stage or {}).get("wall_ms", 0) for stage in limits.values()) / 1000
        record = await self.final(job.key, wait + WAIT_MARGIN_S, tenant, fresh=True)
        if record is None or record["state"] != "finished":
            raise ApiError("INTERRUPTED", "the run did not finish in time on the cluster; it may still finish",
                           retry_after=1)  # fmt: skip
        if record.get("error"):
            error = record["error"]
            raise ApiError(error["error"], error["message"])
        return dict(record["result"])

    async def _listen(self) -> None:
        while True:
            try:
                async with self.queue.redis.pubsub() as channel:
                    await channel.subscribe(DONE)
                    async for message in channel.listen():
                        if message.get("type") == "message":
                            self._announced(json.loads(message["data"]))
            except ERRORS as e:
                log.warning("cluster: not subscribed to results: %s: %s", type(e).__name__, e)
                await asyncio.sleep(POLL_S)

    def _announced(self, done: dict[str, Any]) -> None:
        waiter = self._waiting.get((done["tenant"], done["key"]))
        if waiter is None:
            return
        waiter.record = done.get("record")
        waiter.event.set()


@dataclass
class _Waiter:
    """The requests of one node waiting for one submission of one tenant."""

    event: asyncio.Event = field(default_factory=asyncio.Event)
    record: Record | None = None  # its final record, when its announcement carried it


def _spec(job: Job) -> dict[str, Any]:
    """What a worker gets of a job: who, which record, the body to plan again, the quota hold's id."""
    assert job.body is not None
    return {
        "key": job.key,
        "tenant": job.caller.tenant.id,
        "key_id": job.caller.key_id,
        "body": job.body.model_dump(mode="json", exclude_unset=True),
        "hold": job.hold.id,
        "record": job.record,  # as queued: a first delivery need not read it back
    }


def worker_of(service: Service, store: SubmissionStore, queue: JobQueue, on_final: Any = None) -> Worker:
    """A worker on this node, running the queue's jobs through a Runner of its own (no local queue)."""
    return Worker(service, queue, store, on_final)
