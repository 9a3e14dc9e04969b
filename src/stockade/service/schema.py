"""The store's schema: one migration per version step (store.py applies them at open), in the SQL
SQLite and PostgreSQL share (db.py keeps the version).

Never edit a released entry; append a new one. Its tables: tenants, keys, daily usage, the audit log
and its signed head (audit.py owns their contents), the run journal (journal.py), the storage probe.
"""

from __future__ import annotations

from typing import Final

from stockade.service.db import Connection, Database
from stockade.service.tenants import StoreError

# Each entry migrates user_version i -> i+1.
_MIGRATIONS: Final[tuple[tuple[str, ...], ...]] = (
    (
        """CREATE TABLE tenants (
            id TEXT PRIMARY KEY,
            name TEXT NOT NULL,
            created_at TEXT NOT NULL,
            disabled INTEGER NOT NULL DEFAULT 0 CHECK (disabled IN (0, 1)),
            max_limits TEXT NOT NULL DEFAULT '{}',
            allowed_languages TEXT,
            rate_per_minute INTEGER NOT NULL CHECK (rate_per_minute > 0),
            executions_per_day INTEGER CHECK (executions_per_day >= 0),
            cpu_seconds_per_day REAL CHECK (cpu_seconds_per_day >= 0)
        )""",
        """CREATE TABLE api_keys (
            id TEXT PRIMARY KEY,
            tenant_id TEXT NOT NULL REFERENCES tenants(id),
            name TEXT NOT NULL,
            secret_hash TEXT NOT NULL,
            created_at TEXT NOT NULL,
            revoked_at TEXT
        )""",
        "CREATE INDEX api_keys_tenant ON api_keys(tenant_id)",
        """CREATE TABLE usage_daily (
            tenant_id TEXT NOT NULL REFERENCES tenants(id),
            day TEXT NOT NULL,
            executions INTEGER NOT NULL DEFAULT 0,
            cpu_ms INTEGER NOT NULL DEFAULT 0,
            PRIMARY KEY (tenant_id, day)
        )""",
        # Audit tables live here so one file holds all state; audit.py owns their contents.
        """CREATE TABLE audit_log (
            seq INTEGER PRIMARY KEY,
            time TEXT NOT NULL,
            body TEXT NOT NULL,
            hash TEXT NOT NULL,
            signature TEXT NOT NULL
        )""",
        "CREATE INDEX audit_log_time ON audit_log(time)",
        """CREATE TABLE audit_head (
            id INTEGER PRIMARY KEY CHECK (id = 1),
            seq INTEGER NOT NULL,
            hash TEXT NOT NULL,
            time TEXT NOT NULL,
            signature TEXT NOT NULL
        )""",
    ),
    (
        # Admitted executions not yet recorded (journal.py): written before any code runs, deleted in
        # the transaction of their audit record; what a restart finds here it records as interrupted.
        """CREATE TABLE runs_pending (
            id TEXT PRIMARY KEY,
            admitted_at TEXT NOT NULL,
            tenant TEXT,
            key_id TEXT,
            data TEXT NOT NULL,
            stage TEXT NOT NULL
        )""",
        # One row rewritten by the storage probe (storage.py): a real write, to learn the disk takes one.
        "CREATE TABLE storage_probe (id INTEGER PRIMARY KEY CHECK (id = 1), time TEXT NOT NULL)",
    ),
    # A tenant's egress allowlist (docs/network.md), a JSON list; '[]' = no network.
    ("ALTER TABLE tenants ADD COLUMN network_allow TEXT NOT NULL DEFAULT '[]'",),
    # The node that journaled a run (ServiceConfig.node_id), for nodes sharing one PostgreSQL database.
    ("ALTER TABLE runs_pending ADD COLUMN node TEXT NOT NULL DEFAULT ''",),
    # Executions past the quota check whose usage is not recorded yet, of nodes sharing the database
    # (quota.SharedHolds); a node on its own keeps these in memory.
    (
        """CREATE TABLE quota_holds (
            id TEXT PRIMARY KEY,
            tenant_id TEXT NOT NULL,
            node TEXT NOT NULL,
            since TEXT NOT NULL
        )""",
        "CREATE INDEX quota_holds_tenant ON quota_holds(tenant_id, since)",
    ),
)
SCHEMA_VERSION: Final = len(_MIGRATIONS)


def migrate(db: Database, conn: Connection) -> None:
    """Bring the database to SCHEMA_VERSION, inside the caller's transaction; a newer one is refused."""
    version = db.schema_version(conn)
    if version > SCHEMA_VERSION:
        raise StoreError(f"database schema version {version} is newer than this Stockade ({SCHEMA_VERSION})")
    for index in range(version, SCHEMA_VERSION):
        for statement in _MIGRATIONS[index]:
            conn.execute(db.ddl(statement))
        db.set_schema_version(conn, index + 1)
