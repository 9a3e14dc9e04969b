"""Judge0 submissions of one node: their records (SQLite, `judge0.db` under the data dir) and the runner
of the asynchronous ones (wait=false, batches).

A record is readable by its token, only by its tenant, for `keep_seconds` and among the newest
`keep_rows`. What survives a restart: every finished record (within those bounds). What does not: a
queued or running submission; its plan and quota hold lived in memory, so at start it is marked
Internal Error ("the node restarted ...") rather than run later under a key that may since be revoked.

The runner is a few tasks (one per sandbox slot) taking queued submissions in order. Each takes an
execution place like any request (admission.Places; it waits while all are taken), runs through
Service.admitted and Engine.run, and is recorded and audited by Service.record and write_audit, then
its quota hold is released: the same path as POST /v1/execute, without an HTTP request around it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import sqlite3
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from stockade.engine import ExecutionResult, Plan
from stockade.service.compat.judge0 import PROCESSING, failed, finish, now
from stockade.service.errors import ApiError
from stockade.service.quota import QuotaHold

if TYPE_CHECKING:
    from stockade.service.admission import Place
    from stockade.service.node import Caller, Service

log = logging.getLogger("stockade.service")

PLACE_POLL_S = 0.01  # a queued submission looks for a free place this often while all are taken
PRUNE_EVERY = 100  # records written between two prunes


class SubmissionStore:
    """Records by (tenant, token), as JSON; the store keeps no order but creation time."""

    def __init__(self, path: Path, *, keep_seconds: int, keep_rows: int) -> None:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.keep_seconds = keep_seconds
        self.keep_rows = keep_rows
        self._writes = 0
        self.db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        path.chmod(0o600)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.execute(
            "CREATE TABLE IF NOT EXISTS submissions (token TEXT PRIMARY KEY, tenant TEXT NOT NULL,"
            " created REAL NOT NULL, status INTEGER NOT NULL, record TEXT NOT NULL)"
        )
        self.db.execute("CREATE INDEX IF NOT EXISTS submissions_created ON submissions (created)")

    def close(self) -> None:
        self.db.close()

    def put(self, tenant: str, record: dict[str, Any]) -> None:
        self.db.execute(
            "INSERT INTO submissions (token, tenant, created, status, record) VALUES (?, ?, ?, ?, ?)"
            " ON CONFLICT (token) DO UPDATE SET status = excluded.status, record = excluded.record",
            (record["token"], tenant, time.time(), record["status_id"], json.dumps(record)),
        )
        self._writes += 1
        if self._writes % PRUNE_EVERY == 0:
            self.prune()

    def get(self, tenant: str, token: str) -> dict[str, Any] | None:
        sql = "SELECT record FROM submissions WHERE token = ? AND tenant = ?"
        row = self.db.execute(sql, (token, tenant)).fetchone()
        return json.loads(row[0]) if row else None

    def get_many(self, tenant: str, tokens: Iterable[str]) -> dict[str, dict[str, Any]]:
        wanted = list(dict.fromkeys(tokens))
        marks = ",".join("?" * len(wanted))
        rows = self.db.execute(
            f"SELECT token, record FROM submissions WHERE tenant = ? AND token IN ({marks})", (tenant, *wanted)
        ).fetchall()
        return {token: json.loads(record) for token, record in rows}

    def delete(self, tenant: str, token: str) -> None:
        self.db.execute("DELETE FROM submissions WHERE token = ? AND tenant = ?", (token, tenant))

    def prune(self) -> None:
        self.db.execute("DELETE FROM submissions WHERE created < ?", (time.time() - self.keep_seconds,))
        self.db.execute(
            "DELETE FROM submissions WHERE token NOT IN (SELECT token FROM submissions ORDER BY created DESC LIMIT ?)",
            (self.keep_rows,),
        )

    def fail_unfinished(self, message: str) -> int:
        """At start: what was queued or running when the node stopped will not run (module doc)."""
        rows = self.db.execute("SELECT tenant, record FROM submissions WHERE status IN (1, 2)").fetchall()
        for tenant, record in rows:
            self.put(tenant, failed(json.loads(record), message))
        return len(rows)


@dataclass
class Job:
    caller: Caller
    plan: Plan
    hold: QuotaHold
    record: dict[str, Any]


class QueueFull(Exception):
    pass


class Runner:
    """The tasks that run queued submissions (module doc)."""

    def __init__(self, service: Service, store: SubmissionStore, queue_size: int) -> None:
        self.service = service
        self.store = store
        self.queue_size = queue_size
        self.queue: asyncio.Queue[Job] = asyncio.Queue()
        self._workers: list[asyncio.Task[None]] = []

    @property
    def waiting(self) -> int:
        return self.queue.qsize()

    def submit(self, jobs: list[Job]) -> None:
        """Queue these submissions, all or none: QueueFull when they do not fit."""
        if self.queue.qsize() + len(jobs) > self.queue_size:
            raise QueueFull
        for job in jobs:
            self.store.put(job.caller.tenant.id, job.record)
            self.queue.put_nowait(job)

    def start(self) -> None:
        n = max(1, self.service.sandbox.slots_total)
        self._workers = [asyncio.create_task(self._work(), name=f"judge0-runner-{i}") for i in range(n)]

    async def stop(self, timeout: float) -> None:
        """Let the queue empty (while the node drains, each queued submission fails at once), then stop."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.queue.join(), timeout)
        for task in self._workers:
            task.cancel()
        await asyncio.gather(*self._workers, return_exceptions=True)
        while not self.queue.empty():
            self._fail(self.queue.get_nowait(), "the node shut down before this submission ran")

    async def _work(self) -> None:
        while True:
            job = await self.queue.get()
            try:
                await self._run(job)
            except Exception as exc:  # a runner must outlive any one submission
                error_id = self.service.internal_failure("judge0 submission failed:", exc)
                self._fail(job, f"internal error {error_id}")
            finally:
                self.queue.task_done()

    async def _place(self) -> Place | None:
        """An execution place, waiting while all are taken; None once the node drains. Through Places
        itself, not Service.claim: a wait is not a refusal, so no rejection is counted."""
        while not self.service.draining:
            place = self.service.places.claim()
            if place is not None:
                return place
            await asyncio.sleep(PLACE_POLL_S)
        return None

    async def _run(self, job: Job) -> None:
        place = await self._place()
        if place is None:
            self._fail(job, "the node shut down before this submission ran")
            return
        place.who = job.caller  # its run's journal entry names who asked
        tenant = job.caller.tenant.id
        job.record = {**job.record, "status_id": PROCESSING, "started_at": now(), "updated_at": now()}
        self.store.put(tenant, job.record)
        try:
            async with self.service.admitted(place):
                result: ExecutionResult = await self.service.engine.run(job.plan)
        except ApiError as e:  # the node began to drain meanwhile
            self._fail(job, e.message)
            return
        finally:
            place.release()
        execution_id = uuid.uuid4().hex
        wall = sum(b.wall_time_ms for b in (result.compile, result.run) if b is not None)
        write = self.service.record(job.caller, job.plan, result, execution_id, {"wall_time_ms": wall})
        self.store.put(tenant, finish(job.record, result))
        try:
            await self.service.write_audit(write)
        finally:
            job.hold.release()

    def _fail(self, job: Job, message: str) -> None:
        self.store.put(job.caller.tenant.id, failed(job.record, message))
        job.hold.release()
