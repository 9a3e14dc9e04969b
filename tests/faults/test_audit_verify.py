"""`stockade audit verify` reads only and is not fooled (issue 28 §3), on copies of a real service's data
dir: it writes nothing (no key, database, -wal/-shm or directory), a missing or empty data dir is an
error, a pinned public key catches a re-signed trail, a signed head kept elsewhere catches a rollback,
and every error is one line with a non-zero exit."""

from __future__ import annotations

import hashlib
import json
import shutil
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from stockade.service.audit import _digest, _head_body
from tests.faults.helpers import HELLO
from tests.service.live import cli, live_server

KEY, PUB, DB = "audit-signing-key.pem", "audit-signing-key.pem.pub", "stockade.db"


@pytest.fixture(scope="module")
def genuine(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A stopped service's data dir with executions and admin actions in its trail."""
    data_dir = tmp_path_factory.mktemp("verify") / "data"
    cli("tenants", "create", "acme", data_dir=data_dir)
    with live_server("fault-verify", uid_base=69300, data_dir=data_dir, slots=1) as s:
        for i in range(3):
            r = httpx.post(f"{s.url}/v1/execute", json={**HELLO, "code": f"print({i})"}, timeout=60)
            assert r.status_code == 200, r.text
    return data_dir


@pytest.fixture
def copy(genuine: Path, tmp_path: Path) -> Iterator[Path]:
    """A copy of the data dir to tamper with, and its public key pinned outside it."""
    d = tmp_path / "data"
    shutil.copytree(genuine, d)
    shutil.copy(d / PUB, tmp_path / "pinned.pub")
    yield d


def run(*args: str, data_dir: Path) -> tuple[int, dict | None, str]:  # type: ignore[type-arg]
    proc = cli("audit", *args, data_dir=data_dir, check=False)
    out = json.loads(proc.stdout) if proc.stdout.strip().startswith("{") else None
    return proc.returncode, out, proc.stderr


def one_line_error(rc: int, stderr: str) -> bool:
    lines = [x for x in stderr.strip().splitlines() if x.strip()]
    return rc != 0 and len(lines) == 1 and "Traceback" not in stderr


def snapshot(d: Path) -> dict[str, str]:
    return {str(p.relative_to(d)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(d.rglob("*"))
            if p.is_file()}  # fmt: skip


def test_verify_writes_nothing_even_without_the_private_key(copy: Path) -> None:
    pinned = copy.parent / "pinned.pub"
    (copy / KEY).unlink()
    before = snapshot(copy)
    rc, report, err = run("verify", "--public-key", str(pinned), data_dir=copy)
    assert rc == 0 and report is not None and report["ok"] and report["count"] >= 4, (report, err)
    assert report["key"]["pinned"] is True
    rc, report, err = run("verify", data_dir=copy)  # the data dir's own .pub
    assert rc == 0 and report is not None and report["key"]["pinned"] is False and "--public-key" in err
    rc, head, _ = run("head", "--public-key", str(pinned), data_dir=copy)
    assert rc == 0 and head is not None and head["anchor"] == f"{head['seq']}:{head['hash']}"
    assert snapshot(copy) == before  # no key, no .pub, no -wal or -shm: nothing at all

    (copy / PUB).unlink()
    rc, _, err = run("verify", data_dir=copy)
    assert one_line_error(rc, err) and "public key" in err, err
    assert not (copy / KEY).exists() and not (copy / PUB).exists()


def test_a_missing_or_empty_data_dir_is_an_error_and_stays_as_it_was(tmp_path: Path) -> None:
    missing = tmp_path / "missing"
    for cmd in ("verify", "head", "export"):
        rc, _, err = run(cmd, data_dir=missing)
        assert one_line_error(rc, err) and "no Stockade data directory" in err, err
        assert not missing.exists()
    empty = tmp_path / "empty"
    empty.mkdir()
    rc, _, err = run("verify", "--public-key", str(empty / "x.pub"), data_dir=empty)
    assert one_line_error(rc, err), err
    assert list(empty.iterdir()) == []


def test_an_empty_trail_is_not_ok(copy: Path) -> None:
    with sqlite3.connect(copy / DB) as db:
        db.execute("DELETE FROM audit_log")
        db.execute("DELETE FROM audit_head")
    rc, _, err = run("verify", "--public-key", str(copy.parent / "pinned.pub"), data_dir=copy)
    assert one_line_error(rc, err) and "empty" in err, err


def resign_with_a_new_key(d: Path) -> None:
    """What an attacker with write access does: a new key pair, every record and the head re-signed."""
    key = Ed25519PrivateKey.generate()
    with sqlite3.connect(d / DB) as db:
        for seq, digest in db.execute("SELECT seq, hash FROM audit_log").fetchall():
            db.execute("UPDATE audit_log SET signature = ? WHERE seq = ?", (key.sign(bytes.fromhex(digest)).hex(), seq))
        seq, digest, time = db.execute("SELECT seq, hash, time FROM audit_head").fetchone()
        db.execute("UPDATE audit_head SET signature = ?", (key.sign(_digest(_head_body(seq, digest, time))).hex(),))
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    (d / KEY).write_bytes(pem)
    pub = key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    (d / PUB).write_bytes(pub)


def test_a_re_signed_trail_passes_only_without_a_pinned_key_or_signed_anchor(copy: Path) -> None:
    pinned = copy.parent / "pinned.pub"
    anchor = copy.parent / "head.json"
    rc, head, _ = run("head", "--public-key", str(pinned), data_dir=copy)
    assert rc == 0
    anchor.write_text(json.dumps(head))
    resign_with_a_new_key(copy)

    rc, report, err = run("verify", data_dir=copy)
    assert rc == 0 and report is not None and report["ok"]  # what docs/audit.md says cannot be detected
    assert "re-keyed" in err  # ...and the command says so
    rc, report, _ = run("verify", "--public-key", str(pinned), data_dir=copy)
    assert rc == 1 and report is not None and {p["kind"] for p in report["problems"]} == {"bad_signature"}
    rc, report, _ = run("verify", "--anchor", str(anchor), data_dir=copy)  # unpinned, but a signed anchor
    assert rc == 1 and report is not None
    assert [p["kind"] for p in report["problems"]] == ["bad_signature"] and "anchor" in report["problems"][0]["message"]


def test_a_rollback_is_caught_by_an_anchor(copy: Path, tmp_path: Path) -> None:
    pinned = copy.parent / "pinned.pub"
    older = tmp_path / "older"
    shutil.copytree(copy, older)  # the backup an attacker restores later
    cli("tenants", "create", "later", data_dir=copy)  # more records after it
    rc, head, _ = run("head", "--public-key", str(pinned), data_dir=copy)
    assert rc == 0 and head is not None
    (tmp_path / "head.json").write_text(json.dumps(head))
    shutil.rmtree(copy)
    shutil.copytree(older, copy)

    rc, report, _ = run("verify", "--public-key", str(pinned), data_dir=copy)
    assert rc == 0 and report is not None and report["ok"]  # consistent, and older: undetectable alone
    for anchor in (str(tmp_path / "head.json"), head["anchor"]):
        rc, report, _ = run("verify", "--public-key", str(pinned), "--anchor", anchor, data_dir=copy)
        assert rc == 1 and report is not None and report["problems"][0]["kind"] == "truncated", report


def test_every_error_is_one_line(copy: Path, tmp_path: Path) -> None:
    pinned = str(copy.parent / "pinned.pub")
    for args in (["--anchor", "foo"], ["--anchor", "0:" + "0" * 64], ["--public-key", str(copy / DB)]):
        rc, _, err = run("verify", *args, data_dir=copy)
        assert one_line_error(rc, err), (args, err)
    (tmp_path / "junk.json").write_text("{")
    rc, _, err = run("verify", "--anchor", str(tmp_path / "junk.json"), data_dir=copy)
    assert one_line_error(rc, err), err

    raw = bytearray((copy / DB).read_bytes())
    raw[:16] = b"not a database!!"
    (copy / DB).write_bytes(bytes(raw))
    for cmd in (["verify", "--public-key", pinned], ["head", "--public-key", pinned], ["export"]):
        rc, _, err = run(*cmd, data_dir=copy)
        assert one_line_error(rc, err) and "database" in err, (cmd, err)
