"""Tamper-evident audit log: hash-chained records signed with Ed25519 (docs/audit.md).

How a log is judged (rows checked, problems named) is audit_check.py's.

Records live in the Store's SQLite file (table audit_log) next to a signed head (table audit_head)
that commits to the last record, so cutting records off the end is detectable too.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import secrets
import threading
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final, Literal

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from stockade.service.audit_check import (
    GENESIS_HASH,
    Head,
    VerifyReport,
    analyse,
    canonical_json,
    check_row,
    sig_ok,
)
from stockade.service.db import Connection
from stockade.service.store import Store, StoreError

log = logging.getLogger(__name__)

KINDS: Final = ("execution", "admin")
_HEAD_TYPE: Final = "audit-head"
_EXPORT_BATCH: Final = 500

RecordKind = Literal["execution", "admin"]


class AuditError(StoreError):
    """The log cannot be appended to (read-only, or its storage is inconsistent)."""


# -- encoding --------------------------------------------------------------------------------


def sha256_hex(data: bytes | str) -> str:
    return hashlib.sha256(data.encode("utf-8") if isinstance(data, str) else data).hexdigest()


def format_time(t: datetime) -> str:
    """Fixed-width UTC timestamp, so string order is time order (used by export --since)."""
    if t.tzinfo is None:  # naive means UTC here, as the CLI passes bare dates
        t = t.replace(tzinfo=UTC)
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def execution_data(
    *,
    language: str,
    version: str,
    code: bytes | str,
    stdin: bytes | str,
    stdout: bytes | str,
    stderr: bytes | str,
    limits: Mapping[str, Any],
    verdict: str,
    timings: Mapping[str, Any],
    **extra: Any,
) -> dict[str, Any]:
    """`data` of an execution record: digests of the payloads, never the payloads themselves."""
    return {
        "language": language,
        "version": version,
        "code_sha256": sha256_hex(code),
        "stdin_sha256": sha256_hex(stdin),
        "stdout_sha256": sha256_hex(stdout),
        "stderr_sha256": sha256_hex(stderr),
        "limits": dict(limits),
        "verdict": verdict,
        "timings": dict(timings),
        **extra,
    }


def admin_data(action: str, target: str, **details: Any) -> dict[str, Any]:
    """`data` of an admin record, e.g. admin_data("key.revoke", "3f2a...", tenant="acme")."""
    return {"action": action, "target": target, **details}


def _digest(obj: Any) -> bytes:
    return hashlib.sha256(canonical_json(obj)).digest()


def _head_body(seq: int, record_hash: str, time: str) -> dict[str, Any]:
    # Distinct shape from a record body, so a record signature can never pass as a head signature.
    return {"type": _HEAD_TYPE, "seq": seq, "hash": record_hash, "time": time}


# -- keys ------------------------------------------------------------------------------------


def public_key_path(key_path: Path) -> Path:
    """Where the public key of `key_path` is exported: same name plus ".pub"."""
    return key_path.with_name(key_path.name + ".pub")


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _load_private_key(key_path: Path) -> Ed25519PrivateKey:
    mode = key_path.stat().st_mode
    if mode & 0o077:
        log.warning("audit signing key %s is accessible by group/others (mode %o)", key_path, mode & 0o777)
    key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise ValueError(f"{key_path} is not an Ed25519 private key")
    return key


def _create_private_key(key_path: Path) -> Ed25519PrivateKey:
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    key_path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = key_path.with_name(f".{key_path.name}.{secrets.token_hex(6)}.tmp")
    # Written in full to a private temp file first, then linked into place: link() fails if the
    # key appeared meanwhile, so two starting processes never end up with different keys.
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(pem)
            f.flush()
            os.fsync(f.fileno())
        try:
            os.link(tmp, key_path)
        except FileExistsError:
            return _load_private_key(key_path)
        _fsync_dir(key_path.parent)
    finally:
        tmp.unlink(missing_ok=True)
    return key


def _write_public_key(key: Ed25519PublicKey, path: Path) -> None:
    pem = key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    try:
        if path.read_bytes() == pem:
            return
    except FileNotFoundError:
        pass
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(pem)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def ensure_signing_key(key_path: Path) -> Ed25519PrivateKey:
    """Load the Ed25519 key at `key_path`, creating it (mode 0600) on first start; export the public key."""
    key_path = Path(key_path)
    try:
        key = _load_private_key(key_path)
    except FileNotFoundError:
        key = _create_private_key(key_path)
    _write_public_key(key.public_key(), public_key_path(key_path))
    return key


def load_public_key(path: Path) -> Ed25519PublicKey:
    key = serialization.load_pem_public_key(Path(path).read_bytes())
    if not isinstance(key, Ed25519PublicKey):
        raise ValueError(f"{path} is not an Ed25519 public key")
    return key


def key_fingerprint(key: Ed25519PublicKey) -> str:
    """`SHA256:<hex>` of the raw 32-byte public key: what an operator compares and pins."""
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return "SHA256:" + hashlib.sha256(raw).hexdigest()


# -- the log ---------------------------------------------------------------------------------


class AuditLog:
    """Append-only signed log in `store` (a Store, or a database path opened for the log alone).

    `read_only` loads just the public key (`<key_path>.pub`), for verifying on a host without the
    private key; otherwise the private key is created on first use.
    """

    def __init__(self, store: Store | Path, key_path: Path, *, read_only: bool = False) -> None:
        self._owns_store = not isinstance(store, Store)
        self._store = store if isinstance(store, Store) else Store(Path(store))
        self.key_path = Path(key_path)
        self._private: Ed25519PrivateKey | None
        if read_only:
            self._private = None
            self.public_key = load_public_key(public_key_path(self.key_path))
        else:
            self._private = ensure_signing_key(self.key_path)
            self.public_key = self._private.public_key()
        self._lock = threading.Lock()

    def close(self) -> None:
        if self._owns_store:
            self._store.close()

    def append(
        self,
        kind: RecordKind,
        tenant: str | None,
        key_id: str | None,
        data: Mapping[str, Any],
        also: Callable[[Connection], object] | None = None,
    ) -> dict[str, Any]:
        """Add one record; returns it as exported (body plus hash and signature). `also` runs in the same
        transaction (the execution's usage: the record and what it charged commit together, at one cost)."""
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
        if self._private is None:
            raise AuditError("audit log opened read-only")
        data = json.loads(canonical_json(dict(data)))  # fail early on non-JSON data; detach from caller
        # The lock serialises threads; BEGIN IMMEDIATE serialises processes sharing the file.
        with self._lock, self._store.transaction() as conn:
            head = conn.execute("SELECT seq, hash FROM audit_head WHERE id = 1").fetchone()
            if head is None:
                head = conn.execute("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1").fetchone()
            prev_seq, prev_hash = (int(head["seq"]), str(head["hash"])) if head else (0, GENESIS_HASH)
            seq = prev_seq + 1
            now = format_time(datetime.now(UTC))
            body = {
                "seq": seq,
                "time": now,
                "kind": kind,
                "tenant": tenant,
                "key_id": key_id,
                "data": data,
                "prev_hash": prev_hash,
            }
            canonical = canonical_json(body)
            digest = hashlib.sha256(canonical).digest()
            signature = self._private.sign(digest).hex()
            head_sig = self._private.sign(_digest(_head_body(seq, digest.hex(), now))).hex()
            if conn.execute("SELECT 1 FROM audit_log WHERE seq = ?", (seq,)).fetchone() is not None:
                # Someone wrote past the head; refuse rather than overwrite evidence.
                raise AuditError(f"audit record {seq} already exists beyond the head; run verify")
            conn.execute(
                "INSERT INTO audit_log (seq, time, body, hash, signature) VALUES (?, ?, ?, ?, ?)",
                (seq, now, canonical.decode("utf-8"), digest.hex(), signature),
            )
            conn.execute(
                """INSERT INTO audit_head (id, seq, hash, time, signature) VALUES (1, ?, ?, ?, ?)
                   ON CONFLICT (id) DO UPDATE SET seq = excluded.seq, hash = excluded.hash,
                     time = excluded.time, signature = excluded.signature""",
                (seq, digest.hex(), now, head_sig),
            )
            if also is not None:
                also(conn)
        return {**body, "hash": digest.hex(), "signature": signature}

    def head(self) -> Head | None:
        """The signed head; copy it off-host now and then and pass it to verify(anchor=...)."""
        row = self._store.connection().execute("SELECT seq, hash, time, signature FROM audit_head").fetchone()
        if row is None:
            return None
        return Head(int(row["seq"]), str(row["hash"]), str(row["time"]), str(row["signature"]))

    def verify(
        self, *, public_key: Ed25519PublicKey | Path | None = None, anchor: tuple[int, str] | None = None
    ) -> VerifyReport:
        """Check every record, the chain and the head; each problem names the record concerned.

        `anchor` is a (seq, hash) pair saved earlier (e.g. from head()); the log must still contain it.
        """
        if isinstance(public_key, Path):
            public_key = load_public_key(public_key)
        key = public_key or self.public_key
        with self._store.snapshot() as conn:  # so a concurrent append cannot look like truncation
            head_row = self.head()
            rows = [
                check_row(key, int(r["seq"]), r["time"], r["body"], r["hash"], r["signature"])
                for r in conn.execute("SELECT seq, time, body, hash, signature FROM audit_log ORDER BY seq")
            ]
        head_ok = head_row is not None and sig_ok(
            key, head_row.signature, _digest(_head_body(head_row.seq, head_row.hash, head_row.time))
        )
        problems = analyse(rows, head_row, head_ok, anchor)
        return VerifyReport(ok=not problems, count=len(rows), problems=problems, head=head_row)

    def export(self, since: datetime | None = None) -> Iterator[dict[str, Any]]:
        """Records in seq order (optionally those at or after `since`), one dict per JSON line."""
        since_s = format_time(since) if since is not None else ""
        last = 0
        while True:
            batch = (
                self._store.connection()
                .execute(
                    "SELECT seq, body, hash, signature FROM audit_log WHERE seq > ? AND time >= ? ORDER BY seq LIMIT ?",
                    (last, since_s, _EXPORT_BATCH),
                )
                .fetchall()
            )
            if not batch:
                return
            for r in batch:
                yield {**json.loads(r["body"]), "hash": r["hash"], "signature": r["signature"]}
            last = int(batch[-1]["seq"])
