"""The audit trail read without writing anything, for `stockade audit verify|head|export` (docs/audit.md).

Nothing here creates or changes a file: no key (only public keys are read), no database, no directory.
A database whose service is stopped (no `-wal` file) is opened `immutable`, so SQLite does not even
create its `-wal` and `-shm` files; a live one (both present) is opened `mode=ro`, which reads the
write-ahead log the service shares with it. A missing database, one without an audit trail, a corrupt
one and an empty trail are errors (TrailError, one line), never "ok". A cluster's trail (a PostgreSQL
URL) is read in a read-only REPEATABLE READ transaction.
"""

from __future__ import annotations

import json
import sqlite3
import urllib.parse
from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from stockade.service.audit import _digest, _head_body, format_time, key_fingerprint, load_public_key
from stockade.service.audit_check import Head, Problem, VerifyReport, analyse, check_row, sig_ok
from stockade.service.db import ERRORS, Connection, Database, PostgresDatabase, is_url, transaction


class TrailError(Exception):
    """The trail cannot be read or checked; the message is one line saying why."""


@dataclass(frozen=True)
class Anchor:
    """A head saved off the host (`stockade audit head`): the record it names must still be there, the
    same. A signed one (from a file) must also be signed by the key the trail is verified with."""

    seq: int
    hash: str
    time: str | None = None
    signature: str | None = None

    @property
    def signed(self) -> bool:
        return self.time is not None and self.signature is not None

    def signature_ok(self, key: Ed25519PublicKey) -> bool:
        assert self.time is not None and self.signature is not None
        return sig_ok(key, self.signature, _digest(_head_body(self.seq, self.hash, self.time)))


def parse_anchor_file(path: Path) -> Anchor:
    try:
        head = json.loads(path.read_text())
        return Anchor(int(head["seq"]), str(head["hash"]), str(head["time"]), str(head["signature"]))
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise TrailError(f"{path} is not a head printed by `stockade audit head`: {e}") from None


def read_public_key(path: Path) -> Ed25519PublicKey:
    try:
        return load_public_key(path)
    except FileNotFoundError:
        raise TrailError(f"no public key at {path}") from None
    except (OSError, ValueError) as e:
        raise TrailError(f"{path} is not an Ed25519 public key (PEM): {e}") from None


def connect(location: Path | str) -> tuple[Database, Connection]:
    """A read-only connection to the audit tables of a SQLite file (that writes nothing, see the module's
    doc) or of a PostgreSQL database."""
    if is_url(location):
        db: Database = PostgresDatabase(str(location))
        try:
            conn: Connection = db.connect()
            query = "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema()"
            tables = {r[0] for r in conn.execute(query)}
        except ERRORS as e:
            raise TrailError(f"cannot read {db}: {e}") from None
    else:
        db, conn, tables = _connect_sqlite(Path(location))
    if not {"audit_log", "audit_head"} <= tables:
        conn.close()
        raise TrailError(f"{db} holds no audit trail")
    return db, conn


def _connect_sqlite(db_path: Path) -> tuple[Database, Connection, set[str]]:
    if not db_path.is_file():
        raise TrailError(f"no audit trail: {db_path} does not exist (is --data-dir the service's data directory?)")
    wal, shm = Path(f"{db_path}-wal"), Path(f"{db_path}-shm")
    if wal.exists() and not shm.exists():  # mode=ro would create it; immutable would skip the log's commits
        raise TrailError(f"{wal} exists without {shm.name}: copy the database and its -wal elsewhere, verify the copy")
    mode = "mode=ro" if wal.exists() else "immutable=1"
    conn = sqlite3.connect(f"file:{urllib.parse.quote(str(db_path))}?{mode}", uri=True, isolation_level=None)
    conn.row_factory = sqlite3.Row
    try:
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    except sqlite3.DatabaseError as e:
        conn.close()
        raise TrailError(f"{db_path} is not a readable database: {e}") from None
    return Database(db_path), conn, tables


def _head(conn: Connection) -> Head | None:
    row = conn.execute("SELECT seq, hash, time, signature FROM audit_head").fetchone()
    return None if row is None else Head(int(row["seq"]), str(row["hash"]), str(row["time"]), str(row["signature"]))


def verify(location: Path | str, key: Ed25519PublicKey, anchor: Anchor | None = None) -> VerifyReport:
    """AuditLog.verify's checks on a SQLite file or a PostgreSQL URL, read-only; a signed anchor's
    signature is checked too."""
    db, conn = connect(location)
    try:
        # One snapshot, so a concurrent append cannot look like truncation.
        with closing(conn), transaction(db, conn, snapshot=True):
            head = _head(conn)
            rows = [
                check_row(key, int(r["seq"]), r["time"], r["body"], r["hash"], r["signature"])
                for r in conn.execute("SELECT seq, time, body, hash, signature FROM audit_log ORDER BY seq")
            ]
    except ERRORS as e:
        raise TrailError(f"cannot read the audit trail in {db}: {e}") from None
    if head is None and not rows:
        raise TrailError(
            f"the audit trail in {db} is empty: nothing to verify (a deleted trail looks the same; "
            "verify with --anchor to tell)"
        )
    head_ok = head is not None and sig_ok(key, head.signature, _digest(_head_body(head.seq, head.hash, head.time)))
    problems = analyse(rows, head, head_ok, (anchor.seq, anchor.hash) if anchor else None)
    if anchor is not None and anchor.signed and not anchor.signature_ok(key):
        why = "the anchor is not signed by this key (the trail was re-signed with a new key, or the anchor is forged)"
        problems.append(Problem(anchor.seq, "bad_signature", why))
    return VerifyReport(ok=not problems, count=len(rows), problems=problems, head=head)


def signed_head(location: Path | str, key: Ed25519PublicKey) -> dict[str, Any]:
    """The current signed head, for `--anchor` (verified first: a head of a trail that does not verify is
    no anchor). Raises TrailError naming the first problem."""
    report = verify(location, key)
    if not report.ok or report.head is None:
        first = report.problems[0] if report.problems else None
        raise TrailError(f"the trail does not verify ({first.kind} at record {first.seq}: {first.message})" if first
                         else "the trail has no signed head")  # fmt: skip
    h = report.head
    return {
        "type": "audit-head",
        "seq": h.seq,
        "hash": h.hash,
        "time": h.time,
        "signature": h.signature,
        "public_key": key_fingerprint(key),
        "anchor": f"{h.seq}:{h.hash}",
    }


def export(location: Path | str, since: datetime | None = None) -> Iterator[dict[str, Any]]:
    """Records in seq order (those at or after `since`), read-only."""
    db, conn = connect(location)
    try:
        query = "SELECT body, hash, signature FROM audit_log WHERE time >= ? ORDER BY seq"
        for r in conn.execute(query, (format_time(since) if since is not None else "",)):
            yield {**json.loads(r["body"]), "hash": r["hash"], "signature": r["signature"]}
    except ERRORS as e:
        raise TrailError(f"cannot read the audit trail in {db}: {e}") from None
    finally:
        conn.close()
