"""Two `stockade serve` nodes on one PostgreSQL store (--database-url): one set of tenants and keys, one
usage count and quota holds, one audit chain; and a database outage refused with a typed error, then recovered from
without a restart."""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from tests.cluster.servers import PostgresServer
from tests.service.live import LiveServer, cli_json, live_server, make_key

HELLO = {"language": "python", "code": "print(21*2)"}


@pytest.fixture
def postgres() -> Iterator[PostgresServer]:
    with PostgresServer() as server:  # its own: the test stops it
        yield server


def _node(name: str, uid_base: int, data_dir: Path, url: str) -> object:
    return live_server(name, uid_base=uid_base, data_dir=data_dir, slots=1,
                       extra=["--database-url", url, "--node-id", name])  # fmt: skip


def _run(node: LiveServer, token: str) -> httpx.Response:
    return httpx.post(f"{node.url}/v1/execute", json=HELLO, headers={"Authorization": f"Bearer {token}"}, timeout=60)


def _diagnosed(node: LiveServer, token: str) -> None:
    """Wait until every execution the node answered is recorded (docs/audit.md)."""
    httpx.get(f"{node.url}/v1/diagnostics", headers={"Authorization": f"Bearer {token}"}, timeout=60)


def _ready_again(node: LiveServer, deadline_s: float = 60) -> None:
    """Until the node's /readyz answers 200 (it probes the store every second while it is unavailable)."""
    end = time.monotonic() + deadline_s
    while (status := httpx.get(f"{node.url}/readyz", timeout=30).status_code) != 200:
        assert time.monotonic() < end, f"/readyz still {status} {deadline_s} s after the database came back"
        time.sleep(0.1)


def test_two_nodes_share_tenants_usage_and_one_audit_chain(
    postgres: PostgresServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = postgres.new_database()
    monkeypatch.setenv("STOCKADE_DATABASE_URL", url)
    a_dir, b_dir = tmp_path / "a", tmp_path / "b"
    token = make_key(a_dir, "acme", executions_per_day=4)
    admin = make_key(a_dir, "admin")
    b_dir.mkdir()
    for key in a_dir.glob("audit-signing-key.pem*"):  # the nodes of one chain sign with one key
        shutil.copy2(key, b_dir / key.name)
    with _node("pg-a", 69980, a_dir, url) as a, _node("pg-b", 69990, b_dir, url) as b:  # type: ignore[attr-defined]
        # Three at once on each node, four allowed in all: the holds are shared, so two are refused.
        with ThreadPoolExecutor(6) as pool:
            answers = list(pool.map(lambda node: _run(node, token), [a, b] * 3))
        verdicts = sorted((r.status_code, r.json().get("error") or r.json()["stdout"]) for r in answers)
        assert verdicts == [(200, "42\n")] * 4 + [(429, "QUOTA_EXCEEDED")] * 2
        _diagnosed(a, admin)
        _diagnosed(b, admin)
        refused = _run(a, token)  # and the recorded usage is shared
        assert refused.status_code == 429 and refused.json()["error"] == "QUOTA_EXCEEDED"

        postgres.stop()
        down = httpx.get(f"{b.url}/readyz", timeout=30)
        assert down.status_code == 503 and down.json()["checks"]["storage"] is False
        outage = _run(b, admin)
        assert outage.status_code == 503 and outage.json()["error"] == "STORAGE_UNAVAILABLE"
        postgres.start()
        _ready_again(b)  # the same node, not restarted: its probe of the store found it back
        ok = _run(b, admin)
        assert ok.status_code == 200 and ok.json()["stdout"] == "42\n"
        _diagnosed(b, admin)
    report = cli_json("audit", "verify", data_dir=b_dir)
    # acme and admin with a key each, then five executions from two nodes, in one chain
    assert report["ok"] is True and report["count"] == 9, report
