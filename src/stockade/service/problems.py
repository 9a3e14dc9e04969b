"""Stored problems (docs/judge.md): a tenant's tests, checker or interactor and limits, kept once and
judged by id with only a submission's source.

A SQLite file of its own under the data dir (problems.db), so that its schema moves apart from the
service's store. A problem is kept as its validated JSON body; the routes translate it again at each
judgement (a tenant's languages or maxima may have changed since). Each tenant holds at most
`per_tenant` problems of at most `tenant_bytes` together; another tenant's problem is not found.
Blocking: the routes call it in worker threads (one connection per call: calls are rare and short).
"""

from __future__ import annotations

import contextlib
import sqlite3
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from stockade.service.errors import ApiError

_SCHEMA = """CREATE TABLE IF NOT EXISTS problems (
    id TEXT PRIMARY KEY,
    tenant TEXT NOT NULL,
    created_at REAL NOT NULL,
    bytes INTEGER NOT NULL,
    tests INTEGER NOT NULL,
    name TEXT NOT NULL,
    checker TEXT NOT NULL,
    body TEXT NOT NULL
)"""
_INDEX = "CREATE INDEX IF NOT EXISTS problems_tenant ON problems(tenant)"
_INFO = "id, created_at, bytes, tests, name, checker"
_BUSY_TIMEOUT_S = 5.0


@dataclass(frozen=True)
class ProblemLimits:
    per_tenant: int = 100
    tenant_bytes: int = 256 * 1024 * 1024  # every problem of a tenant together


@dataclass(frozen=True)
class ProblemInfo:
    id: str
    created_at: float
    bytes: int
    tests: int
    name: str
    checker: str  # its kind, or "interactor"

    def as_dict(self) -> dict[str, object]:
        return {
            "id": self.id,
            "name": self.name,
            "created_at": self.created_at,
            "bytes": self.bytes,
            "tests": self.tests,
            "interactive": self.checker == "interactor",
            "checker": self.checker,
        }


def _not_found(problem_id: str) -> ApiError:
    return ApiError("PROBLEM_NOT_FOUND", f"no problem {problem_id[:80]!r}")


class ProblemStore:
    def __init__(self, path: Path, limits: ProblemLimits | None = None) -> None:
        self.path = path
        self.limits = limits or ProblemLimits()
        with self._connect() as db:
            db.execute(_SCHEMA)
            db.execute(_INDEX)

    @contextlib.contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        db = sqlite3.connect(self.path, timeout=_BUSY_TIMEOUT_S, isolation_level=None)
        try:
            db.execute("PRAGMA journal_mode=WAL")
            yield db
        finally:
            db.close()

    def create(self, tenant: str, body: str, tests: int, name: str, checker: str) -> ProblemInfo:
        """Keep `body` for `tenant`; PROBLEM_QUOTA_EXCEEDED past its number or bytes (checked and
        written in one transaction, so concurrent creations cannot pass the caps together)."""
        size = len(body.encode())
        info = ProblemInfo(f"pb_{uuid.uuid4().hex}", time.time(), size, tests, name, checker)
        lim = self.limits
        with self._connect() as db:
            db.execute("BEGIN IMMEDIATE")
            try:
                have, used = db.execute(
                    "SELECT COUNT(*), COALESCE(SUM(bytes), 0) FROM problems WHERE tenant = ?", (tenant,)
                ).fetchone()
                if have >= lim.per_tenant:
                    raise ApiError(
                        "PROBLEM_QUOTA_EXCEEDED", f"tenant {tenant!r} has {have} problems, its maximum: delete one"
                    )
                if used + size > lim.tenant_bytes:
                    raise ApiError(
                        "PROBLEM_QUOTA_EXCEEDED",
                        f"tenant {tenant!r}'s problems would take {used + size} bytes, over its {lim.tenant_bytes}",
                    )
                db.execute(
                    "INSERT INTO problems VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (info.id, tenant, info.created_at, size, tests, name, checker, body),
                )
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
        return info

    def get(self, tenant: str, problem_id: str) -> tuple[ProblemInfo, str]:
        with self._connect() as db:
            row = db.execute(
                f"SELECT {_INFO}, body FROM problems WHERE id = ? AND tenant = ?",
                (problem_id, tenant),
            ).fetchone()
        if row is None:
            raise _not_found(problem_id)
        return ProblemInfo(*row[:-1]), row[-1]

    def all(self, tenant: str) -> list[ProblemInfo]:
        with self._connect() as db:
            rows = db.execute(
                f"SELECT {_INFO} FROM problems WHERE tenant = ? ORDER BY created_at", (tenant,)
            ).fetchall()
        return [ProblemInfo(*r) for r in rows]

    def delete(self, tenant: str, problem_id: str) -> None:
        with self._connect() as db:
            gone = db.execute("DELETE FROM problems WHERE id = ? AND tenant = ?", (problem_id, tenant)).rowcount
        if not gone:
            raise _not_found(problem_id)
