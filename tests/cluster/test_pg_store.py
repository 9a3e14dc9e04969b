"""The store on PostgreSQL (service/db.py): what SQLite gives one node, shared by several.

Each `Store` below opens its own connections, as another node would: quotas stay atomic and the audit
chain stays one verifiable chain with several writers, a node closes only its own journal, and a store
survives the server's restart without being reopened.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest

from stockade.service.audit import AuditLog
from stockade.service.db import PostgresDatabase, describe
from stockade.service.journal import Journal, Pending
from stockade.service.quota import QuotaHold, SharedHolds
from stockade.service.schema import SCHEMA_VERSION
from stockade.service.store import ConflictError, NotFoundError, Store
from tests.cluster.servers import PostgresServer
from tests.service.live import cli, cli_json, make_key


@pytest.fixture
def stores(pg_database: str) -> Iterator[tuple[Store, Store]]:
    a, b = Store(pg_database), Store(pg_database)
    yield a, b
    a.close()
    b.close()


def _together(n: int, work: Callable[[int], object]) -> None:
    """Run work(i) on n threads released at once."""
    gate = threading.Barrier(n)
    errors: list[BaseException] = []

    def run(i: int) -> None:
        gate.wait()
        try:
            work(i)
        except BaseException as e:  # reported below
            errors.append(e)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors


def test_tenants_keys_and_usage_round_trip(stores: tuple[Store, Store], pg_database: str) -> None:
    a, b = stores
    assert a.schema_version == SCHEMA_VERSION
    tenant = a.create_tenant("acme", "Acme", rate_per_minute=30, cpu_seconds_per_day=1.25, network_allow=["pypi.org"])
    with pytest.raises(ConflictError):
        b.create_tenant("acme", "Again")
    assert b.get_tenant("acme") == tenant
    assert tenant.cpu_seconds_per_day == 1.25 and tenant.network_allow == ("pypi.org",)
    key_id, token = a.create_key("acme", "ci")
    a.create_key(b.create_tenant("other", "Other").id, "x")
    who = b.authenticate(token)
    assert who is not None and (who.tenant.id, who.key_id) == ("acme", key_id)
    assert [k.key_id for k in b.list_keys("acme")] == [key_id]
    assert len(b.list_keys()) == 2
    b.revoke_key(key_id)
    assert a.authenticate(token) is None
    assert [k.key_id for k in a.list_keys("acme", include_revoked=False)] == []
    with pytest.raises(NotFoundError):
        a.update_tenant("nobody", name="x")
    a.record_usage("acme", 3_000_000_000)  # beyond 32 bits: the columns are BIGINT
    assert b.check_quota("acme").cpu_seconds_used == 3_000_000.0
    assert b.check_quota("acme").exceeded_by == "cpu_seconds"
    # A third node opening the migrated database migrates nothing and sees the same data.
    with Store(pg_database) as c:
        assert c.schema_version == SCHEMA_VERSION and c.get_tenant("other").name == "Other"


def test_a_daily_quota_holds_across_nodes(stores: tuple[Store, Store]) -> None:
    """Holds taken on two nodes at once never pass the quota; a released hold is free again; recorded
    usage counts as its hold did; a node's restart drops what its previous process held."""
    a, b = stores
    acme = a.create_tenant("acme", "Acme", executions_per_day=6)
    nodes = {"node-a": SharedHolds(a, "node-a"), "node-b": SharedHolds(b, "node-b")}
    held: list[tuple[str, QuotaHold]] = []

    def take(i: int) -> None:
        node = "node-a" if i % 2 else "node-b"
        for _ in range(5):
            if (hold := nodes[node].take(acme)[1]) is not None:
                held.append((node, hold))

    _together(8, take)  # 40 tries, four threads on each node
    assert len(held) == 6
    assert nodes["node-a"].take(acme)[0].exceeded_by == "executions"
    held.pop()[1].release()
    freed = nodes["node-b"].take(acme)[1]
    assert freed is not None  # the freed place, taken by node-b
    held.append(("node-b", freed))
    a.record_usage("acme", 10)  # a run recorded, then its hold released (the service's order)
    held.pop(0)[1].release()
    assert nodes["node-a"].take(acme)[1] is None
    SharedHolds(a, "node-a")  # node-a restarted: its holds are gone, node-b's stay
    rows = b.connection().execute("SELECT node, count(*) FROM quota_holds GROUP BY node").fetchall()
    assert [tuple(r) for r in rows] == [("node-b", sum(1 for node, _ in held if node == "node-b"))]
    # A tenant without an executions quota needs no hold: its check writes nothing.
    free = a.create_tenant("free", "Free", cpu_seconds_per_day=1)
    q, hold = nodes["node-a"].take(free)
    assert hold is not None and hold.id is None and q.exceeded_by is None
    assert b.connection().execute("SELECT count(*) FROM quota_holds WHERE tenant_id = 'free'").fetchone()[0] == 0
    a.record_usage("free", 1000)
    assert nodes["node-b"].take(free) == (b.check_quota("free"), None)  # its CPU quota still refuses


def test_one_audit_chain_with_writers_on_two_nodes(stores: tuple[Store, Store], tmp_path: Path) -> None:
    key = tmp_path / "audit-key.pem"
    logs = [AuditLog(store, key) for store in stores]
    _together(8, lambda i: [logs[i % 2].append("admin", None, None, {"n": i, "k": k}) for k in range(10)])
    report = logs[0].verify()
    assert report.ok, report.problems
    assert report.count == 80 and report.head is not None and report.head.seq == 80
    seqs = [r["seq"] for r in logs[1].export()]
    assert seqs == list(range(1, 81))
    # Tampering with a record is found, whichever node verifies.
    stores[0].connection().execute("UPDATE audit_log SET body = replace(body, '\"k\"', '\"K\"') WHERE seq = 7")
    problems = logs[1].verify().problems
    assert problems and any("7" in str(p) for p in problems)


def test_each_node_closes_only_its_own_journal(stores: tuple[Store, Store], tmp_path: Path) -> None:
    a, b = stores
    audit_a, audit_b = AuditLog(a, tmp_path / "k.pem"), AuditLog(b, tmp_path / "k.pem")
    one, two = Journal(a, audit_a, "node-1"), Journal(b, audit_b, "node-2")
    one.admit(Pending("r1", "2026-01-01T00:00:00Z", None, None, {"language": "python"}, "run"))
    two.admit(Pending("r2", "2026-01-01T00:00:01Z", None, None, {"language": "c"}, "compile"))
    assert [p.id for p in two.close_all("restart")] == ["r2"]  # node-2 restarted
    assert [p.id for p in one.pending()] == ["r1"]  # node-1's run is still its own, running
    assert [p.id for p in Journal(a, audit_a, "node-1").close_all("restart")] == ["r1"]
    bodies = [r["data"] for r in audit_a.export()]
    assert [(d["execution_id"], d["status"]) for d in bodies] == [("r2", "interrupted"), ("r1", "interrupted")]


def test_the_store_reconnects_after_the_server_restarts(tmp_path: Path) -> None:
    with PostgresServer() as pg:
        store = Store(pg.new_database())
        store.create_tenant("acme", "Acme")
        pg.stop()
        assert not store.ping()
        with pytest.raises(psycopg.OperationalError):
            store.probe_write()
        pg.start()
        assert store.ping()  # the broken connection was replaced, no reopen
        store.probe_write()
        assert store.record_usage("acme", 5).cpu_seconds_used == 0.005
        store.close()


def test_operator_commands_use_the_cluster_database(
    pg_database: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`stockade tenants|keys|audit` with STOCKADE_DATABASE_URL act on the cluster's store, as serve does;
    the data dir keeps only the audit key."""
    monkeypatch.setenv("STOCKADE_DATABASE_URL", pg_database)
    data_dir = tmp_path / "node"
    token = make_key(data_dir, "acme", executions_per_day=5)
    assert not (data_dir / "stockade.db").exists()
    with Store(pg_database) as store:
        who = store.authenticate(token)
        assert who is not None and who.tenant.executions_per_day == 5
    report = cli_json("audit", "verify", data_dir=data_dir)
    assert report["ok"] is True and report["count"] == 2  # the tenant's and the key's records
    with psycopg.connect(pg_database, autocommit=True) as conn:
        conn.execute("DELETE FROM audit_log WHERE seq = 1")
    failed = cli("audit", "verify", data_dir=data_dir, check=False)
    assert failed.returncode == 1 and json.loads(failed.stdout)["ok"] is False


def test_messages_name_the_database_without_its_password() -> None:
    url = "postgresql://stockade:s3cret@db.internal:5433/stockade?sslmode=require"
    assert describe(url) == "postgresql://stockade@db.internal:5433/stockade"
    assert str(PostgresDatabase(url)) == describe(url)  # as errors and `stockade` messages show it
    assert describe(Path("/var/lib/stockade/stockade.db")) == "/var/lib/stockade/stockade.db"
