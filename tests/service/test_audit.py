from __future__ import annotations

import hashlib
import json
import sqlite3
import stat
import threading
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from stockade.service.audit import (
    AuditError,
    AuditLog,
    admin_data,
    ensure_signing_key,
    execution_data,
    load_public_key,
    public_key_path,
)
from stockade.service.audit_check import GENESIS_HASH, canonical_json
from stockade.service.store import Store

N = 5


@pytest.fixture
def key_path(tmp_path: Path) -> Path:
    return tmp_path / "keys" / "audit.key"


@pytest.fixture
def log(store: Store, key_path: Path) -> AuditLog:
    audit = AuditLog(store, key_path)
    for i in range(1, N + 1):
        if i % 2:
            data = execution_data(
                language="python",
                version="3.12",
                code=f"print({i})",
                stdin=b"",
                stdout=f"{i}\n",
                stderr=b"",
                limits={"cpu_ms": 1000},
                verdict="ok",
                timings={"cpu_ms": i, "wall_ms": 2 * i},
            )
            audit.append("execution", "acme", "k1", data)
        else:
            audit.append("admin", None, None, admin_data("key.create", f"k{i}", tenant="acme"))
    return audit


@pytest.fixture
def raw(store: Store) -> Iterator[sqlite3.Connection]:
    """A separate connection to the same file: the attacker's view."""
    conn = sqlite3.connect(store.path, isolation_level=None)
    yield conn
    conn.close()


def found(log: AuditLog) -> list[tuple[int, str]]:
    report = log.verify()
    assert report.ok == (not report.problems)
    return [(p.seq, p.kind) for p in report.problems]


def row(raw: sqlite3.Connection, seq: int) -> tuple[str, str, str, str]:
    r = raw.execute("SELECT time, body, hash, signature FROM audit_log WHERE seq = ?", (seq,)).fetchone()
    return (r[0], r[1], r[2], r[3])


def forge(body: dict[str, object]) -> tuple[str, str, str]:
    """A well-formed record signed with a key that is not the audit key."""
    canonical = canonical_json(body)
    digest = hashlib.sha256(canonical).digest()
    return canonical.decode(), digest.hex(), Ed25519PrivateKey.generate().sign(digest).hex()


# -- format ------------------------------------------------------------------------------------


def test_untouched_log_verifies(log: AuditLog) -> None:
    report = log.verify()
    assert report.ok and report.count == N and report.problems == []
    assert report.head is not None and report.head.seq == N


def test_empty_log_verifies(store: Store, key_path: Path) -> None:
    report = AuditLog(store, key_path).verify()
    assert report.ok and report.count == 0 and report.head is None


def test_record_format_is_independently_verifiable(log: AuditLog, key_path: Path) -> None:
    public = load_public_key(public_key_path(key_path))
    records = list(log.export())
    assert [r["seq"] for r in records] == list(range(1, N + 1))
    prev = GENESIS_HASH
    for r in records:
        body = {k: v for k, v in r.items() if k not in ("hash", "signature")}
        assert set(body) == {"seq", "time", "kind", "tenant", "key_id", "data", "prev_hash"}
        assert body["prev_hash"] == prev
        digest = hashlib.sha256(
            json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
        ).digest()
        assert digest.hex() == r["hash"]
        public.verify(bytes.fromhex(r["signature"]), digest)  # raises if invalid
        assert body["time"].endswith("Z")
        prev = r["hash"]
    first = records[0]
    assert first["kind"] == "execution" and first["tenant"] == "acme" and first["key_id"] == "k1"
    assert first["data"]["code_sha256"] == hashlib.sha256(b"print(1)").hexdigest()
    assert first["data"]["stdout_sha256"] == hashlib.sha256(b"1\n").hexdigest()
    assert "print(1)" not in json.dumps(first)
    assert records[1]["data"] == {"action": "key.create", "target": "k2", "tenant": "acme"}


def test_append_returns_exported_record(store: Store, key_path: Path) -> None:
    audit = AuditLog(store, key_path)
    rec = audit.append("admin", "acme", None, {"action": "tenant.create", "target": "acme"})
    assert list(audit.export()) == [rec]
    assert rec["seq"] == 1 and rec["prev_hash"] == GENESIS_HASH


def test_export_since(log: AuditLog) -> None:
    records = list(log.export())
    since = datetime.fromisoformat(records[2]["time"].replace("Z", "+00:00"))
    assert [r["seq"] for r in log.export(since=since)] == [3, 4, 5]
    assert [r["seq"] for r in log.export(since=since.replace(tzinfo=None))] == [3, 4, 5]  # naive = UTC
    assert list(log.export(since=datetime(2999, 1, 1))) == []


def test_bad_input_is_rejected_and_not_appended(store: Store, key_path: Path) -> None:
    audit = AuditLog(store, key_path)
    with pytest.raises(ValueError):
        audit.append("login", None, None, {})  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        audit.append("admin", None, None, {"x": float("nan")})
    with pytest.raises(TypeError):
        audit.append("admin", None, None, {"x": {1, 2}})
    assert list(audit.export()) == [] and audit.head() is None


def test_a_record_and_what_it_charges_commit_together_or_not_at_all(store: Store, key_path: Path) -> None:
    store.create_tenant("acme", "Acme", executions_per_day=5)
    audit = AuditLog(store, key_path)
    data = {"action": "run", "target": "x"}
    rec = audit.append("admin", "acme", None, data, also=lambda conn: Store.count_usage(conn, "acme", 40))
    q = store.check_quota("acme")
    assert [r["seq"] for r in audit.export()] == [rec["seq"]] and (q.executions_used, q.cpu_seconds_used) == (1, 0.04)

    with pytest.raises(ValueError):  # the usage fails: the record goes with it
        audit.append("admin", "acme", None, data, also=lambda conn: Store.count_usage(conn, "acme", -1))

    def count_then_fail(conn: sqlite3.Connection) -> None:
        Store.count_usage(conn, "acme", 1)
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):  # and a failure after counting takes the count too
        audit.append("admin", "acme", None, data, also=count_then_fail)
    assert [r["seq"] for r in audit.export()] == [1] and store.check_quota("acme").executions_used == 1
    assert audit.verify().ok


def test_concurrent_appends_form_one_chain(store: Store, key_path: Path) -> None:
    audit = AuditLog(store, key_path)

    def worker(n: int) -> None:
        for i in range(10):
            audit.append("admin", None, None, {"action": "t", "target": f"{n}-{i}"})

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    report = audit.verify()
    assert report.ok and report.count == 80
    assert [r["seq"] for r in audit.export()] == list(range(1, 81))


def test_two_stores_on_one_file_share_the_chain(store: Store, key_path: Path) -> None:
    a = AuditLog(store, key_path)
    b = AuditLog(store.path, key_path)  # like a second process
    a.append("admin", None, None, {"action": "a", "target": "1"})
    b.append("admin", None, None, {"action": "b", "target": "2"})
    a.append("admin", None, None, {"action": "a", "target": "3"})
    assert a.verify().ok and a.verify().count == 3
    b.close()


# -- keys --------------------------------------------------------------------------------------


def test_key_created_private_and_reused(key_path: Path) -> None:
    k1 = ensure_signing_key(key_path)
    assert stat.S_IMODE(key_path.stat().st_mode) == 0o600
    pub = public_key_path(key_path)
    assert pub.exists() and load_public_key(pub).public_bytes_raw() == k1.public_key().public_bytes_raw()
    k2 = ensure_signing_key(key_path)
    assert k2.private_bytes_raw() == k1.private_bytes_raw()
    assert [p.name for p in key_path.parent.iterdir() if p.name.endswith(".tmp")] == []


def test_concurrent_key_creation_yields_one_key(key_path: Path) -> None:
    keys: list[bytes] = []
    lock = threading.Lock()

    def worker() -> None:
        raw = ensure_signing_key(key_path).private_bytes_raw()
        with lock:
            keys.append(raw)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(keys)) == 1
    assert ensure_signing_key(key_path).private_bytes_raw() == keys[0]


def test_public_key_is_restored_if_missing(key_path: Path) -> None:
    ensure_signing_key(key_path)
    public_key_path(key_path).unlink()
    ensure_signing_key(key_path)
    assert public_key_path(key_path).exists()


def test_wrong_public_key_fails(log: AuditLog, tmp_path: Path) -> None:
    other = tmp_path / "other.key"
    ensure_signing_key(other)
    report = log.verify(public_key=public_key_path(other))
    assert not report.ok
    assert {(p.seq, p.kind) for p in report.problems} == {(s, "bad_signature") for s in range(1, N + 1)}


def test_read_only_log_verifies_but_cannot_append(log: AuditLog, store: Store, key_path: Path) -> None:
    ro = AuditLog(store, key_path, read_only=True)
    assert ro.verify().ok
    with pytest.raises(AuditError):
        ro.append("admin", None, None, {})


# -- tampering ---------------------------------------------------------------------------------


def test_edited_field_is_named(log: AuditLog, raw: sqlite3.Connection) -> None:
    body = row(raw, 3)[1]
    assert '"verdict":"ok"' in body
    raw.execute("UPDATE audit_log SET body = ? WHERE seq = 3", (body.replace('"ok"', '"timeout"'),))
    assert found(log) == [(3, "edited")]


def test_edited_and_rehashed_is_named(log: AuditLog, raw: sqlite3.Connection) -> None:
    body = json.loads(row(raw, 2)[1])
    body["tenant"] = "evil"
    text, digest, _ = forge(body)
    raw.execute("UPDATE audit_log SET body = ?, hash = ? WHERE seq = 2", (text, digest))
    assert found(log) == [(2, "edited")]


def test_edited_time_column_is_named(log: AuditLog, raw: sqlite3.Connection) -> None:
    raw.execute("UPDATE audit_log SET time = '1999-01-01T00:00:00.000000Z' WHERE seq = 4")
    assert found(log) == [(4, "edited")]


def test_bad_signature_is_named(log: AuditLog, raw: sqlite3.Connection) -> None:
    sig = row(raw, 5)[3]
    raw.execute("UPDATE audit_log SET signature = ? WHERE seq = 5", (sig[:-2] + ("00" if sig[-2:] != "00" else "11"),))
    assert found(log) == [(5, "bad_signature")]


def test_deleted_middle_record_is_named(log: AuditLog, raw: sqlite3.Connection) -> None:
    raw.execute("DELETE FROM audit_log WHERE seq = 3")
    assert found(log) == [(3, "deleted")]


def test_deleted_and_renumbered_is_named(log: AuditLog, raw: sqlite3.Connection) -> None:
    raw.execute("DELETE FROM audit_log WHERE seq = 2")
    for s in range(3, N + 1):
        raw.execute("UPDATE audit_log SET seq = ? WHERE seq = ?", (s - 1, s))
    assert found(log) == [(2, "deleted")]


def test_inserted_forged_record_is_named(log: AuditLog, raw: sqlite3.Connection) -> None:
    # Make room at position 3 and slip in a well-formed record signed with another key.
    for s in range(N, 2, -1):
        raw.execute("UPDATE audit_log SET seq = ? WHERE seq = ?", (s + 1, s))
    time, body2, hash2, _ = row(raw, 2)
    forged = json.loads(body2) | {"seq": 3, "prev_hash": hash2, "data": {"action": "x", "target": "y"}}
    raw.execute("INSERT INTO audit_log VALUES (3, ?, ?, ?, ?)", (time, *forge(forged)))
    assert found(log) == [(3, "inserted")]


def test_appended_forged_record_is_named(log: AuditLog, raw: sqlite3.Connection) -> None:
    time, body5, hash5, _ = row(raw, 5)
    forged = json.loads(body5) | {"seq": 6, "prev_hash": hash5}
    raw.execute("INSERT INTO audit_log VALUES (6, ?, ?, ?, ?)", (time, *forge(forged)))
    assert found(log) == [(6, "inserted")]
    with pytest.raises(AuditError):  # appending must not overwrite the evidence
        log.append("admin", None, None, {})


def test_replayed_genuine_record_is_named(log: AuditLog, raw: sqlite3.Connection) -> None:
    raw.execute("INSERT INTO audit_log SELECT 6, time, body, hash, signature FROM audit_log WHERE seq = 2")
    assert found(log) == [(2, "inserted")]


def test_swapped_records_are_named(log: AuditLog, raw: sqlite3.Connection) -> None:
    r2, r3 = row(raw, 2), row(raw, 3)
    update = "UPDATE audit_log SET time = ?, body = ?, hash = ?, signature = ? WHERE seq = ?"
    raw.execute(update, (*r3, 2))
    raw.execute(update, (*r2, 3))
    problems = found(log)
    assert len(problems) == 1
    assert problems[0][1] == "reordered" and problems[0][0] in (2, 3)


def test_truncated_tail_is_named(log: AuditLog, raw: sqlite3.Connection) -> None:
    raw.execute("DELETE FROM audit_log WHERE seq > 3")
    report = log.verify()
    assert [(p.seq, p.kind) for p in report.problems] == [(4, "truncated")]
    assert "4..5" in report.problems[0].message


def test_truncation_with_rewound_head_is_caught(log: AuditLog, raw: sqlite3.Connection) -> None:
    raw.execute("DELETE FROM audit_log WHERE seq > 3")
    time, _, hash3, sig3 = row(raw, 3)
    # The attacker rewinds the head and reuses record 3's signature: it signs a different message.
    raw.execute("UPDATE audit_head SET seq = 3, hash = ?, time = ?, signature = ?", (hash3, time, sig3))
    assert found(log) == [(3, "bad_signature")]


def test_truncation_with_deleted_head_is_caught(log: AuditLog, raw: sqlite3.Connection) -> None:
    raw.execute("DELETE FROM audit_log WHERE seq > 3")
    raw.execute("DELETE FROM audit_head")
    assert found(log) == [(4, "truncated")]


def test_rollback_to_old_copy_needs_an_anchor(store: Store, key_path: Path, tmp_path: Path) -> None:
    audit = AuditLog(store, key_path)
    for i in range(3):
        audit.append("admin", None, None, {"action": "a", "target": str(i)})
    backup = sqlite3.connect(tmp_path / "backup.db")
    store.connection().backup(backup)
    for i in range(2):
        audit.append("admin", None, None, {"action": "a", "target": str(i)})
    head = audit.head()
    assert head is not None and head.seq == 5

    backup.backup(store.connection())  # the attacker restores the older, self-consistent copy
    backup.close()
    assert audit.verify().ok  # honest limit: a consistent older state verifies on its own
    report = audit.verify(anchor=(head.seq, head.hash))
    assert [(p.seq, p.kind) for p in report.problems] == [(5, "truncated")]


def test_rewrite_with_stolen_key_needs_an_anchor(log: AuditLog, raw: sqlite3.Connection, key_path: Path) -> None:
    anchor = log.head()
    assert anchor is not None
    key = ensure_signing_key(key_path)
    prev = row(raw, 2)[2]
    for s in range(3, N + 1):
        body = json.loads(row(raw, s)[1]) | {"prev_hash": prev}
        if s == 3:
            body["data"] = {"action": "nothing to see", "target": "-"}
        digest = hashlib.sha256(canonical_json(body)).digest()
        raw.execute(
            "UPDATE audit_log SET body = ?, hash = ?, signature = ? WHERE seq = ?",
            (canonical_json(body).decode(), digest.hex(), key.sign(digest).hex(), s),
        )
        prev = digest.hex()
    head_time = row(raw, N)[0]
    head_body = {"type": "audit-head", "seq": N, "hash": prev, "time": head_time}
    head_sig = key.sign(hashlib.sha256(canonical_json(head_body)).digest()).hex()
    raw.execute("UPDATE audit_head SET hash = ?, time = ?, signature = ?", (prev, head_time, head_sig))

    assert log.verify().ok  # honest limit: the key holder can rewrite history
    report = log.verify(anchor=(anchor.seq, anchor.hash))
    assert [(p.seq, p.kind) for p in report.problems] == [(N, "edited")]
