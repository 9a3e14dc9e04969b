"""The store of tenants, API keys and daily quotas (docs/tenants.md), in SQLite or PostgreSQL (db.py).

Its tables are schema.py's (the migrations).

One database holds everything the service persists, including the audit tables used by audit.py and
the journal's. Each thread gets its own connection; writes are one at a time (db.py says how).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, Final

from stockade.service.db import ERRORS, INTEGRITY_ERRORS, Connection, Pool, open_database, transaction
from stockade.service.schema import migrate
from stockade.service.tenants import (
    UNSET,
    ApiKey,
    AuthContext,
    ConflictError,
    NotFoundError,
    QuotaName,
    QuotaState,
    StoreError,
    Tenant,
    TenantLimits,
    _Unset,
    as_limits,
    check_tenant_fields,
)

__all__ = [
    "UNSET",
    "ApiKey",
    "AuthContext",
    "ConflictError",
    "NotFoundError",
    "QuotaName",
    "QuotaState",
    "Store",
    "StoreError",
    "Tenant",
    "TenantLimits",
]

KEY_PREFIX: Final = "sk"
_SLUG_RE: Final = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?$")
_KEY_ID_RE: Final = re.compile(r"^[0-9a-f]{16}$")
QUEUED_HOLDS: Final = ":queued"  # the quota_holds node of the holds of jobs in the cluster queue
# A hold left by a node that lost the database before releasing it stops counting after this long,
# which is longer than any admitted run lasts.
HOLD_LAPSES: Final = timedelta(hours=1)
_UNAVAILABLE: Final[tuple[type[Exception], ...]] = (StoreError, *ERRORS)


def _now() -> datetime:
    return datetime.now(UTC)


def _utc_day(now: datetime | None) -> date:
    return (now or _now()).astimezone(UTC).date()


def _hash_token(token: str) -> str:
    # Tokens carry 256 random bits, so a fast unsalted hash cannot be brute-forced; a slow KDF
    # would only add latency to every request (docs/tenants.md).
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def _languages_json(langs: Sequence[str] | None) -> str | None:
    return None if langs is None else json.dumps(sorted(set(langs)))


class Store:
    """Tenants, API keys and quotas in one database: a SQLite file's path or a PostgreSQL URL. Safe to
    share between threads."""

    def __init__(self, location: Path | str) -> None:
        self.db = open_database(location)
        self._pool = Pool(self.db)
        self._migrate()

    @property
    def path(self) -> Path:
        """The SQLite file (for tools that open it directly); not on PostgreSQL."""
        return self.db.path

    # -- connections and transactions -------------------------------------------------------

    def connection(self) -> Connection:
        """This thread's connection (created on first use)."""
        if self._pool.closed:
            raise StoreError("store is closed")
        return self._pool.connection()

    def transaction(self) -> AbstractContextManager[Connection]:
        """A write transaction, holding the one write lock from its start so read-then-write is atomic."""
        return transaction(self.db, self.connection())

    def snapshot(self) -> AbstractContextManager[Connection]:
        """A read-only transaction that sees one state of the database throughout."""
        return transaction(self.db, self.connection(), snapshot=True)

    def close(self) -> None:
        self._pool.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _migrate(self) -> None:
        with self.transaction() as conn:
            migrate(self.db, conn)

    @property
    def schema_version(self) -> int:
        return self.db.schema_version(self.connection())

    def ping(self) -> bool:
        """Readiness: the database answers a query."""
        try:
            return bool(self.connection().execute("SELECT 1").fetchone()[0] == 1)
        except _UNAVAILABLE:
            return False

    def probe_write(self) -> None:
        """A real write (one row rewritten): raises unless the database takes writes now."""
        with self.transaction() as conn:
            conn.execute(
                "INSERT INTO storage_probe (id, time) VALUES (1, ?)"
                " ON CONFLICT (id) DO UPDATE SET time = excluded.time",
                (_now().isoformat(),),
            )

    # -- tenants ---------------------------------------------------------------------------

    @staticmethod
    def _tenant_from_row(row: Any) -> Tenant:
        langs = row["allowed_languages"]
        return Tenant(
            id=row["id"],
            name=row["name"],
            created_at=datetime.fromisoformat(row["created_at"]),
            disabled=bool(row["disabled"]),
            max_limits=TenantLimits.from_mapping(json.loads(row["max_limits"])),
            allowed_languages=tuple(json.loads(langs)) if langs is not None else None,
            rate_per_minute=row["rate_per_minute"],
            executions_per_day=row["executions_per_day"],
            cpu_seconds_per_day=row["cpu_seconds_per_day"],
            network_allow=tuple(json.loads(row["network_allow"])),
        )

    def create_tenant(
        self,
        tenant_id: str,
        name: str,
        *,
        max_limits: TenantLimits | Mapping[str, int | None] | None = None,
        allowed_languages: Sequence[str] | None = None,
        rate_per_minute: int = 60,
        executions_per_day: int | None = None,
        cpu_seconds_per_day: float | None = None,
        disabled: bool = False,
        network_allow: Sequence[str] = (),
    ) -> Tenant:
        if not _SLUG_RE.fullmatch(tenant_id):
            raise ValueError("tenant id must be a slug: 1-64 of [a-z0-9-], not starting or ending with '-'")
        check_tenant_fields(
            name=name,
            rate_per_minute=rate_per_minute,
            executions_per_day=executions_per_day,
            cpu_seconds_per_day=cpu_seconds_per_day,
            allowed_languages=allowed_languages,
            network_allow=network_allow,
        )
        limits = as_limits(max_limits)
        try:
            with self.transaction() as conn:
                conn.execute(
                    """INSERT INTO tenants (id, name, created_at, disabled, max_limits, allowed_languages,
                        rate_per_minute, executions_per_day, cpu_seconds_per_day, network_allow)
                       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
                    (
                        tenant_id,
                        name.strip(),
                        _now().isoformat(),
                        int(disabled),
                        json.dumps(limits.to_dict()),
                        _languages_json(allowed_languages),
                        rate_per_minute,
                        executions_per_day,
                        None if cpu_seconds_per_day is None else float(cpu_seconds_per_day),
                        json.dumps(list(network_allow)),
                    ),
                )
        except INTEGRITY_ERRORS as e:
            raise ConflictError(f"tenant {tenant_id!r} already exists") from e
        return self.get_tenant(tenant_id)

    def get_tenant(self, tenant_id: str) -> Tenant:
        row = self.connection().execute("SELECT * FROM tenants WHERE id = ?", (tenant_id,)).fetchone()
        if row is None:
            raise NotFoundError(f"no tenant {tenant_id!r}")
        return self._tenant_from_row(row)

    def list_tenants(self, *, include_disabled: bool = True) -> list[Tenant]:
        sql = "SELECT * FROM tenants" + ("" if include_disabled else " WHERE disabled = 0") + " ORDER BY id"
        return [self._tenant_from_row(r) for r in self.connection().execute(sql)]

    def update_tenant(
        self,
        tenant_id: str,
        *,
        name: str | _Unset = UNSET,
        disabled: bool | _Unset = UNSET,
        max_limits: TenantLimits | Mapping[str, int | None] | _Unset | None = UNSET,
        allowed_languages: Sequence[str] | _Unset | None = UNSET,
        rate_per_minute: int | _Unset = UNSET,
        executions_per_day: int | _Unset | None = UNSET,
        cpu_seconds_per_day: float | _Unset | None = UNSET,
        network_allow: Sequence[str] | _Unset = UNSET,
    ) -> Tenant:
        """Change only the given fields. None clears a limit (= unlimited / server maximum).

        max_limits is replaced as a whole; merge with dataclasses.replace() to change one entry.
        """
        changes: dict[str, Any] = {}
        if not isinstance(name, _Unset):
            check_tenant_fields(name=name)
            changes["name"] = name.strip()
        if not isinstance(disabled, _Unset):
            changes["disabled"] = int(disabled)
        if not isinstance(max_limits, _Unset):
            changes["max_limits"] = json.dumps(as_limits(max_limits).to_dict())
        if not isinstance(allowed_languages, _Unset):
            check_tenant_fields(allowed_languages=allowed_languages)
            changes["allowed_languages"] = _languages_json(allowed_languages)
        if not isinstance(rate_per_minute, _Unset):
            check_tenant_fields(rate_per_minute=rate_per_minute)
            changes["rate_per_minute"] = rate_per_minute
        if not isinstance(executions_per_day, _Unset):
            check_tenant_fields(executions_per_day=executions_per_day)
            changes["executions_per_day"] = executions_per_day
        if not isinstance(cpu_seconds_per_day, _Unset):
            check_tenant_fields(cpu_seconds_per_day=cpu_seconds_per_day)
            changes["cpu_seconds_per_day"] = None if cpu_seconds_per_day is None else float(cpu_seconds_per_day)
        if not isinstance(network_allow, _Unset):
            check_tenant_fields(network_allow=network_allow)
            changes["network_allow"] = json.dumps(list(network_allow))
        with self.transaction() as conn:
            if conn.execute("SELECT 1 FROM tenants WHERE id = ?", (tenant_id,)).fetchone() is None:
                raise NotFoundError(f"no tenant {tenant_id!r}")
            if changes:
                # Column names come from the fixed keys above, never from the caller.
                assignments = ", ".join(f"{column} = ?" for column in changes)
                conn.execute(f"UPDATE tenants SET {assignments} WHERE id = ?", (*changes.values(), tenant_id))
        return self.get_tenant(tenant_id)

    # -- API keys --------------------------------------------------------------------------

    def create_key(self, tenant_id: str, name: str) -> tuple[str, str]:
        """Create a key; returns (key_id, token). The token is shown once and never stored."""
        if not name.strip():
            raise ValueError("key name must not be empty")
        key_id = secrets.token_hex(8)
        token = f"{KEY_PREFIX}_{key_id}_{secrets.token_urlsafe(32)}"
        with self.transaction() as conn:
            if conn.execute("SELECT 1 FROM tenants WHERE id = ?", (tenant_id,)).fetchone() is None:
                raise NotFoundError(f"no tenant {tenant_id!r}")
            try:
                conn.execute(
                    "INSERT INTO api_keys (id, tenant_id, name, secret_hash, created_at) VALUES (?, ?, ?, ?, ?)",
                    (key_id, tenant_id, name.strip(), _hash_token(token), _now().isoformat()),
                )
            except INTEGRITY_ERRORS as e:  # 64-bit id collision: astronomically unlikely
                raise ConflictError("key id collision, try again") from e
        return key_id, token

    def authenticate(self, token: str) -> AuthContext | None:
        """The tenant behind a token, or None if unknown, wrong, revoked, or the tenant is disabled."""
        parts = token.split("_", 2)  # the secret itself may contain '_'
        if len(parts) != 3 or parts[0] != KEY_PREFIX or not _KEY_ID_RE.fullmatch(parts[1]):
            return None
        row = (
            self.connection()
            .execute("SELECT tenant_id, secret_hash, revoked_at FROM api_keys WHERE id = ?", (parts[1],))
            .fetchone()
        )
        if row is None:
            return None
        if not hmac.compare_digest(_hash_token(token), row["secret_hash"]):
            return None
        if row["revoked_at"] is not None:
            return None
        tenant = self.get_tenant(row["tenant_id"])
        if tenant.disabled:
            return None
        return AuthContext(tenant=tenant, key_id=parts[1])

    def revoke_key(self, key_id: str) -> ApiKey:
        """Revoke a key (idempotent: the first revocation time is kept)."""
        with self.transaction() as conn:
            cur = conn.execute(
                "UPDATE api_keys SET revoked_at = COALESCE(revoked_at, ?) WHERE id = ?",
                (_now().isoformat(), key_id),
            )
            if cur.rowcount == 0:
                raise NotFoundError(f"no key {key_id!r}")
        return self.get_key(key_id)

    @staticmethod
    def _key_from_row(row: Any) -> ApiKey:
        revoked = row["revoked_at"]
        return ApiKey(
            key_id=row["id"],
            tenant_id=row["tenant_id"],
            name=row["name"],
            created_at=datetime.fromisoformat(row["created_at"]),
            revoked_at=datetime.fromisoformat(revoked) if revoked is not None else None,
        )

    def get_key(self, key_id: str) -> ApiKey:
        row = self.connection().execute("SELECT * FROM api_keys WHERE id = ?", (key_id,)).fetchone()
        if row is None:
            raise NotFoundError(f"no key {key_id!r}")
        return self._key_from_row(row)

    def list_keys(self, tenant_id: str | None = None, *, include_revoked: bool = True) -> list[ApiKey]:
        where = ["revoked_at IS NULL"] if not include_revoked else []
        if tenant_id is not None:
            where.append("tenant_id = ?")
        sql = "SELECT * FROM api_keys" + (" WHERE " + " AND ".join(where) if where else "")
        rows = self.connection().execute(sql + " ORDER BY created_at, id", () if tenant_id is None else (tenant_id,))
        return [self._key_from_row(r) for r in rows]

    def has_any_keys(self) -> bool:
        """Whether any unrevoked key exists (e.g. to warn that the service is unreachable)."""
        row = self.connection().execute("SELECT 1 FROM api_keys WHERE revoked_at IS NULL LIMIT 1").fetchone()
        return row is not None

    # -- quotas ----------------------------------------------------------------------------

    @staticmethod
    def _quota_state(conn: Connection, tenant_id: str, day: date, pending: int = 0) -> QuotaState:
        limits = conn.execute(
            "SELECT executions_per_day, cpu_seconds_per_day FROM tenants WHERE id = ?", (tenant_id,)
        ).fetchone()
        if limits is None:
            raise NotFoundError(f"no tenant {tenant_id!r}")
        usage = conn.execute(
            "SELECT executions, cpu_ms FROM usage_daily WHERE tenant_id = ? AND day = ?",
            (tenant_id, day.isoformat()),
        ).fetchone()
        executions, cpu_ms = (usage["executions"], usage["cpu_ms"]) if usage else (0, 0)
        exec_limit: int | None = limits["executions_per_day"]
        cpu_limit: float | None = limits["cpu_seconds_per_day"]
        cpu_used = cpu_ms / 1000
        exceeded: QuotaName | None = None
        if exec_limit is not None and executions + pending >= exec_limit:
            exceeded = "executions"
        elif cpu_limit is not None and cpu_used >= cpu_limit:
            exceeded = "cpu_seconds"
        return QuotaState(
            tenant_id=tenant_id,
            day=day,
            executions_used=executions,
            executions_limit=exec_limit,
            cpu_seconds_used=cpu_used,
            cpu_seconds_limit=cpu_limit,
            exceeded_by=exceeded,
        )

    def check_quota(self, tenant_id: str, *, now: datetime | None = None, pending: int = 0) -> QuotaState:
        """Today's (UTC) usage against the tenant's daily quotas; read-only. `pending` executions, admitted
        but not yet recorded, count against the executions quota (not in `executions_used`)."""
        return self._quota_state(self.connection(), tenant_id, _utc_day(now), pending)

    def reserve_execution(self, tenant_id: str, *, now: datetime | None = None) -> QuotaState:
        """Atomically check the quotas and, if not exceeded, count one execution.

        Returns the state before counting; when `exceeded` is set nothing was counted. Pair with
        record_usage(..., executions=0, day=state.day) once the CPU time is known.
        """
        day = _utc_day(now)
        with self.transaction() as conn:
            state = self._quota_state(conn, tenant_id, day)
            if not state.exceeded:
                self._add_usage(conn, tenant_id, day, executions=1, cpu_ms=0)
        return state

    def hold_execution(self, tenant_id: str, node: str) -> tuple[QuotaState, str | None]:
        """Check the quotas counting every node's holds and, unless one is exceeded, add a hold for
        `node`: one write transaction, so atomic across nodes (quota.SharedHolds). Returns the state and
        the hold's id (None when refused)."""
        now = _now()
        with self.transaction() as conn:
            held = conn.execute(
                "SELECT count(*) FROM quota_holds WHERE tenant_id = ? AND since > ?",
                (tenant_id, (now - HOLD_LAPSES).isoformat()),
            ).fetchone()[0]
            state = self._quota_state(conn, tenant_id, _utc_day(now), pending=int(held))
            if state.exceeded:
                return state, None
            hold_id = secrets.token_hex(12)
            conn.execute(
                "INSERT INTO quota_holds (id, tenant_id, node, since) VALUES (?, ?, ?, ?)",
                (hold_id, tenant_id, node, now.isoformat()),
            )
        return state, hold_id

    def release_hold(self, hold_id: str) -> None:
        with self.transaction() as conn:
            conn.execute("DELETE FROM quota_holds WHERE id = ?", (hold_id,))

    def queue_holds(self, hold_ids: list[str]) -> None:
        """The holds of jobs now in the cluster's queue: no node's any more, so no node's restart drops
        them; the worker that runs each job releases its hold (or it lapses, HOLD_LAPSES)."""
        with self.transaction() as conn:
            for hold_id in hold_ids:
                conn.execute("UPDATE quota_holds SET node = ? WHERE id = ?", (QUEUED_HOLDS, hold_id))

    def drop_holds(self, node: str) -> None:
        """At a node's start: the holds its previous process left (a crash) are released."""
        with self.transaction() as conn:
            conn.execute("DELETE FROM quota_holds WHERE node = ?", (node,))

    def record_usage(self, tenant_id: str, cpu_ms: int, *, executions: int = 1, day: date | None = None) -> QuotaState:
        """Add usage to the tenant's counters for `day` (default: today, UTC) in one transaction."""
        with self.transaction() as conn:
            return self.count_usage(conn, tenant_id, cpu_ms, executions=executions, day=day)

    @classmethod
    def count_usage(
        cls, conn: Connection, tenant_id: str, cpu_ms: int, *, executions: int = 1, day: date | None = None
    ) -> QuotaState:
        """record_usage inside a write transaction the caller holds (the service's audit record's)."""
        if cpu_ms < 0 or executions < 0:
            raise ValueError("usage must not be negative")
        day = day or _utc_day(None)
        if conn.execute("SELECT 1 FROM tenants WHERE id = ?", (tenant_id,)).fetchone() is None:
            raise NotFoundError(f"no tenant {tenant_id!r}")
        cls._add_usage(conn, tenant_id, day, executions=executions, cpu_ms=int(cpu_ms))
        return cls._quota_state(conn, tenant_id, day)

    @staticmethod
    def _add_usage(conn: Connection, tenant_id: str, day: date, *, executions: int, cpu_ms: int) -> None:
        conn.execute(
            """INSERT INTO usage_daily (tenant_id, day, executions, cpu_ms) VALUES (?, ?, ?, ?)
               ON CONFLICT (tenant_id, day) DO UPDATE SET
                 executions = usage_daily.executions + excluded.executions,
                 cpu_ms = usage_daily.cpu_ms + excluded.cpu_ms""",
            (tenant_id, day.isoformat(), executions, cpu_ms),
        )
