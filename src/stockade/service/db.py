"""The store's database: SQLite (the embedded default) or PostgreSQL (a cluster's), one interface.

Store, AuditLog and Journal speak one small SQL subset (`?` parameters, `ON CONFLICT ... DO UPDATE`,
rows read by column name or position) over a connection from `open_database`. What differs lives here:
- the write transaction: SQLite's BEGIN IMMEDIATE takes the file's one write lock up front. PostgreSQL
  gets the same one-writer semantics from a transaction-scoped advisory lock, so read-then-write (a
  quota check and its count, the audit chain's head and the next record) is atomic across every node
  sharing the database (docs/cluster.md);
- a read snapshot (audit verify): BEGIN on SQLite, REPEATABLE READ on PostgreSQL;
- the schema version: SQLite's user_version, a one-row table on PostgreSQL;
- the driver's error classes (ERRORS, INTEGRITY_ERRORS).

psycopg is imported only when a PostgreSQL URL is opened: the embedded node never loads it.
"""

from __future__ import annotations

import re
import select
import sqlite3
import threading
import urllib.parse
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any, Final, Protocol

_BUSY_TIMEOUT_S: Final = 5.0
# One advisory lock key for every write transaction of the store (an arbitrary constant: "stockade").
_WRITE_LOCK: Final = 0x73746F636B616465


class DriverMissing(Exception):
    """A PostgreSQL URL was given where psycopg is not installed."""


def _driver_errors() -> tuple[tuple[type[Exception], ...], ...]:
    errors: list[type[Exception]] = [sqlite3.Error, DriverMissing]
    integrity: list[type[Exception]] = [sqlite3.IntegrityError]
    gone: list[type[Exception]] = []
    try:  # only present where the cluster extra is installed
        import psycopg
    except ImportError:
        pass
    else:
        errors.append(psycopg.Error)
        integrity.append(psycopg.errors.IntegrityError)
        gone.append(psycopg.OperationalError)
    return tuple(errors), tuple(integrity), tuple(gone)


ERRORS: tuple[type[Exception], ...]  # any failure of the database
INTEGRITY_ERRORS: tuple[type[Exception], ...]  # a constraint refused the write
SERVER_GONE: tuple[type[Exception], ...]  # the database server cannot be reached (down, restarting)
ERRORS, INTEGRITY_ERRORS, SERVER_GONE = _driver_errors()


class Connection(Protocol):
    """What the store's modules use of a connection (sqlite3.Connection has it as is)."""

    @property
    def in_transaction(self) -> bool: ...

    def execute(self, sql: str, parameters: Sequence[Any] = ..., /) -> Any: ...

    def close(self) -> None: ...


def is_url(location: str | Path) -> bool:
    return isinstance(location, str) and location.startswith(("postgresql://", "postgres://"))


class Database:
    """How to connect, begin a write or a snapshot, and keep the schema version; SQLite by default."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    def __str__(self) -> str:
        return str(self.path)

    def connect(self) -> Connection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # isolation_level=None: no implicit transactions; writes use explicit BEGIN IMMEDIATE.
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=_BUSY_TIMEOUT_S)
        conn.row_factory = sqlite3.Row
        conn.execute("PRAGMA journal_mode=WAL")
        # NORMAL (with WAL): a commit survives the service crashing, without an fsync on every request
        # (~2 ms each here); a power loss may roll back the last commits, in order, never corrupt them.
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA foreign_keys=ON")
        return conn

    def ddl(self, statement: str) -> str:
        """A migration's statement in this dialect (schema.py writes SQLite's)."""
        return statement

    def usable(self, conn: Connection) -> bool:
        """Whether `conn` may still be used (False: open a new one)."""
        return True

    def begin_write(self, conn: Connection) -> None:
        conn.execute("BEGIN IMMEDIATE")

    def begin_snapshot(self, conn: Connection) -> None:
        conn.execute("BEGIN")

    def schema_version(self, conn: Connection) -> int:
        return int(conn.execute("PRAGMA user_version").fetchone()[0])

    def set_schema_version(self, conn: Connection, version: int) -> None:
        conn.execute(f"PRAGMA user_version = {int(version)}")  # PRAGMA takes no parameters


class Row(tuple[Any, ...]):
    """A PostgreSQL row readable by position and by column name, as sqlite3.Row is."""

    names: dict[str, int]

    def __getitem__(self, key: Any) -> Any:
        return tuple.__getitem__(self, self.names[key] if isinstance(key, str) else key)


class _PgConnection:
    """A psycopg connection in autocommit mode, taking the store's `?` parameters."""

    def __init__(self, url: str) -> None:
        import psycopg

        def rows(cursor: Any) -> Any:
            names = {d.name: i for i, d in enumerate(cursor.description or ())}

            def make(values: Sequence[Any]) -> Row:
                row = Row(values)
                row.names = names
                return row

            return make

        self._conn = psycopg.connect(url, autocommit=True, row_factory=rows)
        self._idle = psycopg.pq.TransactionStatus.IDLE

    @property
    def in_transaction(self) -> bool:
        return bool(self._conn.info.transaction_status != self._idle)

    def execute(self, sql: str, parameters: Sequence[Any] = (), /) -> Any:
        # The store's SQL has no literal '?' or '%': a plain translation to psycopg's placeholders is exact.
        return self._conn.execute(sql.replace("?", "%s"), tuple(parameters))

    @property
    def broken(self) -> bool:
        """The server went away (a restart, a network fault): this connection will not work again. An
        idle connection with bytes to read has been told so already: a server that stops sends its
        idle clients a termination notice (this store never LISTENs, so nothing else arrives unasked)."""
        if self._conn.closed or self._conn.broken:
            return True
        if self.in_transaction:
            return False
        readable, _, _ = select.select([self._conn.fileno()], [], [], 0)
        return bool(readable)

    def close(self) -> None:
        self._conn.close()


class PostgresDatabase(Database):
    def __init__(self, url: str) -> None:
        try:
            import psycopg  # noqa: F401
        except ImportError:
            raise DriverMissing("a PostgreSQL store needs psycopg: pip install 'stockade[cluster]'") from None
        self.url = url

    def __str__(self) -> str:
        return describe(self.url)

    def connect(self) -> Connection:
        return _PgConnection(self.url)

    def ddl(self, statement: str) -> str:
        # SQLite's INTEGER is 64-bit and its REAL a double; PostgreSQL's are 32-bit and a float4.
        return re.sub(r"\bREAL\b", "DOUBLE PRECISION", re.sub(r"\bINTEGER\b", "BIGINT", statement))

    def usable(self, conn: Connection) -> bool:
        return not (isinstance(conn, _PgConnection) and conn.broken)

    def begin_write(self, conn: Connection) -> None:
        conn.execute("BEGIN")
        conn.execute("SELECT pg_advisory_xact_lock(?)", (_WRITE_LOCK,))

    def begin_snapshot(self, conn: Connection) -> None:
        conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")

    def schema_version(self, conn: Connection) -> int:
        if conn.execute("SELECT to_regclass('stockade_schema')").fetchone()[0] is None:
            return 0  # a new database: reading its version writes nothing
        row = conn.execute("SELECT version FROM stockade_schema").fetchone()
        return 0 if row is None else int(row[0])

    def set_schema_version(self, conn: Connection, version: int) -> None:
        conn.execute("CREATE TABLE IF NOT EXISTS stockade_schema (version INTEGER NOT NULL)")
        conn.execute("DELETE FROM stockade_schema")
        conn.execute("INSERT INTO stockade_schema (version) VALUES (?)", (version,))


def describe(location: str | Path) -> str:
    """A store's location as messages show it: a path, or a URL without its password (no driver needed)."""
    if not is_url(location):
        return str(location)
    url = urllib.parse.urlsplit(str(location))
    host = url.hostname or ""
    netloc = f"{url.username}@{host}" if url.username else host
    return urllib.parse.urlunsplit((url.scheme, netloc + (f":{url.port}" if url.port else ""), url.path, "", ""))


def open_database(location: str | Path) -> Database:
    """A PostgreSQL URL, or the path of a SQLite file."""
    return PostgresDatabase(str(location)) if is_url(location) else Database(Path(location))


class Pool:
    """One connection per thread to `db`, replaced at its next use once broken (a server restart)."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self._local = threading.local()
        self._conns: list[Connection] = []
        self._lock = threading.Lock()
        self.closed = False

    def connection(self) -> Connection:
        """This thread's connection (created on first use); RuntimeError once closed."""
        if self.closed:
            raise RuntimeError(f"{self.db} is closed")
        conn: Connection | None = getattr(self._local, "conn", None)
        if conn is not None and not self.db.usable(conn):
            self._local.conn = None
            with self._lock:
                self._conns.remove(conn)
            conn.close()
            conn = None
        if conn is None:
            conn = self.db.connect()
            self._local.conn = conn
            with self._lock:
                self._conns.append(conn)
        return conn

    def transaction(self, *, snapshot: bool = False) -> AbstractContextManager[Connection]:
        return transaction(self.db, self.connection(), snapshot=snapshot)

    def close(self) -> None:
        self.closed = True
        with self._lock:
            conns, self._conns = self._conns, []
        for conn in conns:
            conn.close()


@contextmanager
def transaction(db: Database, conn: Connection, *, snapshot: bool = False) -> Iterator[Connection]:
    """A write transaction (or a read-only snapshot) on `conn`, rolled back if the block raises."""
    (db.begin_snapshot if snapshot else db.begin_write)(conn)
    try:
        yield conn
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:  # also after a failed COMMIT, so the connection stays usable
            conn.execute("ROLLBACK")
        raise
