"""A cluster's execution role: jobs taken from the Redis queue (queue.py) and run in this node's boxes.

`stockade worker` is a node with this and no HTTP API; `stockade serve --embedded-worker` adds one to
an API node. Each job is a POST /v1/submissions (or /v1/execute) body an API node checked, recorded as
queued in the shared store and queued. The worker plans it again (its own toolchains decide), then runs
it through submissions.Runner.execute: the one path of every queued submission, with its journal entry,
audit record, usage and quota hold release. Only then is the entry acknowledged, so a worker killed
mid-run leaves it pending; the others reclaim it once its heartbeat is older than `dead_after_s` and
run it again, up to `attempts` deliveries, after which it is recorded as an internal error (docs/cluster.md).

A worker takes a job only while one of its slots is free, so the jobs go to the workers with room.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Final

from pydantic import ValidationError

from stockade.service.db import SERVER_GONE
from stockade.service.errors import ApiError
from stockade.service.node import Caller
from stockade.service.plans import prepare
from stockade.service.queue import ERRORS, Delivery, JobQueue
from stockade.service.quota import QuotaHold
from stockade.service.store import NotFoundError
from stockade.service.submissions import V1_FORM, Job, Record, Runner, SubmissionStore
from stockade.service.tenants import Tenant
from stockade.service.wire import ExecuteIn

if TYPE_CHECKING:
    from stockade.service.node import Service

log = logging.getLogger("stockade.service")

TAKE_BLOCK_MS: Final = 1000  # a take waits this long for a job, then looks again (and at stopping)
RETRY_S: Final = 1.0  # after Redis refused a step
TENANT_TTL_S: Final = 2.0  # a tenant read for a job serves the next ones this long (a disable waits it out)


class StoreWait(Exception):
    """The node's storage is marked unavailable (a failed write, storage.py) until its probe succeeds."""


# What a job waits out, holding its slot: the store's server unreachable, or the node's storage marked down.
STORE_WAITS: Final[tuple[type[Exception], ...]] = (StoreWait, *SERVER_GONE)


class Worker:
    def __init__(
        self,
        service: Service,
        queue: JobQueue,
        store: SubmissionStore,
        on_final: Callable[[str, str, Record], None] | None = None,
        *,
        beat_s: float = 1.0,
    ) -> None:
        self.service = service
        self.queue = queue
        self.runner = Runner(service, store, V1_FORM, 0, "worker", on_final=self._final)
        self.on_final = on_final  # (tenant, id, record) of a final record (webhooks)
        self._announcing: set[asyncio.Task[None]] = set()
        self._tenants: dict[str, tuple[float, Tenant | None]] = {}  # read at (monotonic), TENANT_TTL_S
        self.beat_s = beat_s
        self.consumer = service.config.node_id
        self.slots = max(1, service.sandbox.slots_total)
        self._free = asyncio.Semaphore(self.slots)
        self._running: set[asyncio.Task[None]] = set()
        self._unacked: list[Delivery] = []  # run and recorded, their ack refused by Redis: acked again later
        self._tasks: list[asyncio.Task[None]] = []
        self.stopping = False
        self.redeliveries = 0
        self.given_up = 0
        self.store_waits = 0  # times a job found the store's server unreachable

    async def start(self) -> None:
        """Join the consumer group (created if need be) and take jobs; Redis must answer now."""
        await self.queue.ensure_group()
        await self.queue.beat(self.consumer)
        self._tasks = [
            asyncio.create_task(self._take_loop(), name="worker-take"),
            asyncio.create_task(self._beat_loop(), name="worker-beat"),
        ]
        # What this node's previous process had taken (a kill -9, a restart under the same id).
        for delivery in await self.queue.reclaim(self.consumer, self.slots, mine=True):
            await self._free.acquire()
            self._spawn(delivery)

    async def stop(self, timeout: float) -> None:
        """Take no more jobs; let the running ones finish (the node's drain kills them past its deadline)."""
        self.stopping = True
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._running:
            await asyncio.wait(list(self._running), timeout=timeout)
        await asyncio.gather(*self._announcing, return_exceptions=True)  # before the queue closes
        with contextlib.suppress(*ERRORS):
            await self._ack_left()
            await self.queue.leave(self.consumer)

    def describe(self) -> dict[str, int]:
        return {
            "slots": self.slots,
            "running": len(self._running),
            "redeliveries": self.redeliveries,
            "given_up": self.given_up,
            "store_waits": self.store_waits,
        }

    async def _take_loop(self) -> None:
        """While a slot is free: a dead worker's job (looked for every beat), else the next new one."""
        next_reclaim = 0.0
        while not self.stopping:
            await self._free.acquire()
            try:
                delivery = None
                if time.monotonic() >= next_reclaim:
                    next_reclaim = time.monotonic() + self.beat_s
                    if reclaimed := await self.queue.reclaim(self.consumer, 1):
                        delivery = reclaimed[0]
                        self.redeliveries += 1
                delivery = delivery or await self.queue.take(self.consumer, TAKE_BLOCK_MS)
            except ERRORS as e:
                self._free.release()
                log.warning("worker %s cannot take jobs: %s: %s", self.consumer, type(e).__name__, e)
                await asyncio.sleep(RETRY_S)
                continue
            if delivery is None:
                self._free.release()
            else:
                self._spawn(delivery)

    async def _beat_loop(self) -> None:
        """The heartbeat, and the acks Redis refused before."""
        while not self.stopping:
            try:
                await self.queue.beat(self.consumer)
                await self._ack_left()
            except ERRORS as e:
                log.warning("worker %s: Redis: %s: %s", self.consumer, type(e).__name__, e)
            await asyncio.sleep(self.beat_s)

    async def _ack_left(self) -> None:
        while self._unacked:
            await self._acknowledge(self._unacked[0])
            self._unacked.pop(0)

    def _spawn(self, delivery: Delivery) -> None:
        task = asyncio.create_task(self._handle(delivery), name=f"job-{delivery.job.get('key')}")
        self._running.add(task)
        task.add_done_callback(self._running.discard)

    async def _handle(self, delivery: Delivery) -> None:
        """Run the job; while the store's server is unreachable it waits, holding its slot, and is
        handled again once it answers (a run whose end was not stored runs again; one result is kept)."""
        fresh = delivery.attempt == 1  # its record is the one in the job, as the API node queued it
        try:
            while not self.stopping:  # stopping: left pending, for this node's next start or another worker
                try:
                    if problem := self.service.storage.check():  # admitted() would refuse it for good
                        self.service.watch_storage()  # its probe clears the problem once it can
                        raise StoreWait(problem)
                    await self._deliver(delivery, fresh)
                    return
                except STORE_WAITS as exc:
                    self.store_waits += 1
                    log.warning("worker %s job %s waits for the store: %s", self.consumer, delivery.entry, exc)
                    fresh = False  # a run may have ended meanwhile: its record is read back
                    await asyncio.sleep(RETRY_S)
        except Exception as exc:  # the worker outlives any one job; the entry stays pending
            self.service.internal_failure(f"worker {self.consumer} job {delivery.entry} failed:", exc)
        finally:
            self._free.release()

    async def _deliver(self, delivery: Delivery, fresh: bool) -> None:
        if delivery.attempt > self.queue.attempts:
            await self._give_up(delivery)
            return
        job = await self._job(delivery, fresh)
        if job is not None:
            await self.runner.execute(job)
        try:
            await self._acknowledge(delivery)
        except ERRORS:
            self._unacked.append(delivery)

    async def _acknowledge(self, delivery: Delivery) -> None:
        await self.queue.ack(delivery)

    def _final(self, tenant: str, key: str, record: Record) -> None:
        """A record stored final: its waiters are told at once, before the run's audit write."""
        task = asyncio.get_running_loop().create_task(self._announce(tenant, key, record))
        self._announcing.add(task)
        task.add_done_callback(self._announcing.discard)
        if self.on_final is not None:
            self.on_final(tenant, key, record)

    async def _announce(self, tenant: str, key: str, record: Record) -> None:
        try:
            await self.queue.announce(tenant, key, record)
        except ERRORS as e:  # a lost message only delays a waiter to its next poll of the store
            log.warning("worker %s could not announce %s: %s: %s", self.consumer, key, type(e).__name__, e)

    async def _job(self, delivery: Delivery, fresh: bool) -> Job | None:
        """The job to run, or None when there is nothing to run: its record is final already (a second
        delivery), gone (expired), or it cannot run here (then recorded as failed, with why)."""
        spec = delivery.job
        tenant_id, key = spec["tenant"], spec["key"]
        record = spec.get("record") if fresh else None
        if record is None:  # a later delivery's (or a retried one's) may be final already
            record = await asyncio.to_thread(self.runner.store.get, tenant_id, key)
        hold = self.service.adopt_hold(spec.get("hold"))
        if record is None or record["state"] == "finished":
            hold.release()
            return None
        tenant = await self._tenant(tenant_id)
        if tenant is None or tenant.disabled:
            self._refuse(spec, record, hold, "UNAUTHENTICATED", "the tenant is gone or disabled")
            return None
        caller = Caller(tenant, spec.get("key_id"))
        try:
            plan = await prepare(self.service, caller, ExecuteIn.model_validate(spec["body"]), None)
        except ApiError as e:  # e.g. TOOLCHAIN_MISSING on this worker
            self._refuse(spec, record, hold, e.code, e.message)
            return None
        except ValidationError as e:
            self._refuse(spec, record, hold, "INVALID_REQUEST", f"the queued body is not valid here: {e}")
            return None
        return Job(key, caller, plan, hold, record)

    async def _tenant(self, tenant_id: str) -> Tenant | None:
        """The tenant, read at most every TENANT_TTL_S (None: gone)."""
        now = time.monotonic()
        kept = self._tenants.get(tenant_id)
        if kept is not None and now - kept[0] < TENANT_TTL_S:
            return kept[1]
        assert self.service.store is not None
        try:
            tenant: Tenant | None = await asyncio.to_thread(self.service.store.get_tenant, tenant_id)
        except NotFoundError:
            tenant = None
        self._tenants[tenant_id] = (now, tenant)
        return tenant

    def _refuse(self, spec: dict[str, Any], record: Record, hold: QuotaHold, code: str, message: str) -> None:
        self.runner.end(spec["tenant"], spec["key"], self.runner.form.failed(record, message, code))
        hold.release()

    async def _give_up(self, delivery: Delivery) -> None:
        """Delivered `attempts` times, each to a worker that died with it: recorded as an internal
        error, kept as a dead letter."""
        self.given_up += 1
        n = delivery.attempt - 1
        message = f"internal error: its worker stopped during each of {n} attempts; it will not be run again"
        log.error("submission %s given up after %d attempts", delivery.job["key"], n)
        spec = delivery.job
        record = await asyncio.to_thread(self.runner.store.get, spec["tenant"], spec["key"])
        hold = self.service.adopt_hold(spec.get("hold"))
        if record is not None and record["state"] != "finished":
            self._refuse(spec, record, hold, "INTERNAL_ERROR", message)
        hold.release()
        await self.queue.bury(delivery, message)
