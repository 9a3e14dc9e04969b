from __future__ import annotations

import dataclasses
import sqlite3
import threading
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from stockade.service.schema import SCHEMA_VERSION
from stockade.service.store import (
    UNSET,
    ConflictError,
    NotFoundError,
    Store,
    StoreError,
    TenantLimits,
)

# -- database ----------------------------------------------------------------------------------


def test_schema_version_and_wal(store: Store) -> None:
    assert store.schema_version == SCHEMA_VERSION >= 1
    mode = store.connection().execute("PRAGMA journal_mode").fetchone()[0]
    assert mode == "wal"


def test_reopen_keeps_data_and_does_not_remigrate(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    with Store(path) as s:
        s.create_tenant("acme", "Acme")
    with Store(path) as s:
        assert s.get_tenant("acme").name == "Acme"
        assert s.schema_version == SCHEMA_VERSION


def test_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    Store(path).close()
    raw = sqlite3.connect(path)
    raw.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    raw.close()
    with pytest.raises(StoreError, match="newer"):
        Store(path)


def test_ping(tmp_path: Path) -> None:
    s = Store(tmp_path / "s.db")
    assert s.ping() is True
    s.close()
    assert s.ping() is False


def test_each_thread_gets_its_own_connection(store: Store) -> None:
    seen: list[sqlite3.Connection] = []
    t = threading.Thread(target=lambda: seen.append(store.connection()))
    t.start()
    t.join()
    assert seen[0] is not store.connection()
    assert store.connection() is store.connection()


# -- tenants -----------------------------------------------------------------------------------


def test_create_get_list_tenant(store: Store) -> None:
    t = store.create_tenant(
        "acme",
        "Acme Corp",
        max_limits={"cpu_ms": 2000, "memory_mb": 128},
        allowed_languages=["python", "c", "python"],
        rate_per_minute=30,
        executions_per_day=100,
        cpu_seconds_per_day=12.5,
    )
    assert t == store.get_tenant("acme")
    assert t.max_limits == TenantLimits(cpu_ms=2000, memory_mb=128)
    assert t.allowed_languages == ("c", "python")
    assert t.allows_language("c") and not t.allows_language("java")
    assert (t.rate_per_minute, t.executions_per_day, t.cpu_seconds_per_day) == (30, 100, 12.5)
    assert t.created_at.tzinfo is not None and not t.disabled

    store.create_tenant("beta", "Beta")
    beta = store.get_tenant("beta")
    assert beta.allowed_languages is None and beta.allows_language("anything")
    assert beta.max_limits == TenantLimits()
    assert [x.id for x in store.list_tenants()] == ["acme", "beta"]
    store.update_tenant("beta", disabled=True)
    assert [x.id for x in store.list_tenants(include_disabled=False)] == ["acme"]


def test_duplicate_tenant_conflicts(store: Store) -> None:
    store.create_tenant("acme", "Acme")
    with pytest.raises(ConflictError):
        store.create_tenant("acme", "Other")
    assert store.get_tenant("acme").name == "Acme"


@pytest.mark.parametrize("bad", ["", "Acme", "-acme", "acme-", "a_b", "a" * 65, "a/b"])
def test_tenant_id_must_be_slug(store: Store, bad: str) -> None:
    with pytest.raises(ValueError):
        store.create_tenant(bad, "x")


@pytest.mark.parametrize(
    "kwargs",
    [
        {"rate_per_minute": 0},
        {"executions_per_day": -1},
        {"cpu_seconds_per_day": -0.5},
        {"cpu_seconds_per_day": float("nan")},
        {"max_limits": {"cpu_ms": 0}},
        {"max_limits": {"cpu_ms": True}},
        {"max_limits": {"gpu": 1}},
        {"allowed_languages": "python"},
    ],
)
def test_invalid_tenant_fields_rejected(store: Store, kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        store.create_tenant("acme", "Acme", **kwargs)  # type: ignore[arg-type]
    with pytest.raises(NotFoundError):
        store.get_tenant("acme")


def test_update_is_partial(store: Store) -> None:
    before = store.create_tenant(
        "acme", "Acme", max_limits={"wall_ms": 500}, executions_per_day=5, cpu_seconds_per_day=1.0
    )
    after = store.update_tenant("acme", name="Acme 2", rate_per_minute=7)
    assert after == dataclasses.replace(before, name="Acme 2", rate_per_minute=7)

    cleared = store.update_tenant("acme", executions_per_day=None, allowed_languages=["go"])
    assert cleared.executions_per_day is None
    assert cleared.cpu_seconds_per_day == 1.0  # untouched
    assert cleared.allowed_languages == ("go",)

    merged = store.update_tenant("acme", max_limits=dataclasses.replace(cleared.max_limits, cpu_ms=9))
    assert merged.max_limits == TenantLimits(wall_ms=500, cpu_ms=9)
    assert store.update_tenant("acme") == merged  # no changes is a no-op
    assert UNSET is not None


def test_update_unknown_or_invalid(store: Store) -> None:
    with pytest.raises(NotFoundError):
        store.update_tenant("ghost", name="x")
    store.create_tenant("acme", "Acme")
    with pytest.raises(ValueError):
        store.update_tenant("acme", rate_per_minute=0)
    assert store.get_tenant("acme").rate_per_minute == 60


# -- API keys ----------------------------------------------------------------------------------


def test_key_roundtrip_and_secret_not_stored(store: Store, tmp_path: Path) -> None:
    store.create_tenant("acme", "Acme")
    key_id, token = store.create_key("acme", "ci")
    assert token.startswith(f"sk_{key_id}_")
    ctx = store.authenticate(token)
    assert ctx is not None
    assert (ctx.tenant.id, ctx.key_id) == ("acme", key_id)

    secret = token.split("_", 2)[2]
    store.close()
    raw = b"".join(p.read_bytes() for p in (tmp_path / "db").iterdir())
    assert secret.encode() not in raw and token.encode() not in raw


def test_wrong_or_malformed_tokens_fail(store: Store) -> None:
    store.create_tenant("acme", "Acme")
    key_id, token = store.create_key("acme", "ci")
    other_id, _ = store.create_key("acme", "other")
    secret = token.split("_", 2)[2]
    flipped = ("A" if secret[0] != "A" else "B") + secret[1:]
    for bad in [
        f"sk_{key_id}_{flipped}",
        f"sk_{other_id}_{secret}",  # right secret, wrong key id
        f"sk_{key_id}_",
        token + "x",
        token[:-1],
        f"pk_{key_id}_{secret}",
        "",
        "sk_",
        "garbage",
        f"sk_{'0' * 16}_{secret}",
    ]:
        assert store.authenticate(bad) is None, bad
    assert store.authenticate(token) is not None


def test_revoked_key_and_disabled_tenant_fail(store: Store) -> None:
    store.create_tenant("acme", "Acme")
    k1, t1 = store.create_key("acme", "one")
    _, t2 = store.create_key("acme", "two")

    revoked = store.revoke_key(k1)
    assert revoked.revoked and revoked.revoked_at is not None
    assert store.authenticate(t1) is None
    assert store.revoke_key(k1).revoked_at == revoked.revoked_at  # idempotent
    assert store.authenticate(t2) is not None

    store.update_tenant("acme", disabled=True)
    assert store.authenticate(t2) is None
    store.update_tenant("acme", disabled=False)
    assert store.authenticate(t2) is not None

    with pytest.raises(NotFoundError):
        store.revoke_key("ffffffffffffffff")


def test_list_keys_and_has_any_keys(store: Store) -> None:
    store.create_tenant("acme", "Acme")
    store.create_tenant("beta", "Beta")
    assert store.has_any_keys() is False
    with pytest.raises(NotFoundError):
        store.create_key("ghost", "x")

    a, _ = store.create_key("acme", "a")
    b, _ = store.create_key("beta", "b")
    assert store.has_any_keys() is True
    assert {k.key_id for k in store.list_keys()} == {a, b}
    assert [k.key_id for k in store.list_keys("acme")] == [a]
    assert not any("secret" in f.name or "hash" in f.name for f in dataclasses.fields(store.list_keys()[0]))

    store.revoke_key(a)
    store.revoke_key(b)
    assert store.has_any_keys() is False
    assert len(store.list_keys()) == 2
    assert store.list_keys(include_revoked=False) == []


# -- quotas ------------------------------------------------------------------------------------


def test_quota_counts_and_executions_limit(store: Store) -> None:
    store.create_tenant("acme", "Acme", executions_per_day=2)
    q = store.check_quota("acme")
    assert (q.executions_used, q.executions_limit, q.cpu_seconds_used, q.exceeded) == (0, 2, 0, False)
    store.record_usage("acme", 1500)
    q = store.record_usage("acme", 250)
    assert (q.executions_used, q.cpu_seconds_used) == (2, 1.75)
    assert q.exceeded and q.exceeded_by == "executions"
    assert store.check_quota("acme") == q
    midnight = datetime(q.day.year, q.day.month, q.day.day, tzinfo=UTC)
    assert q.resets_at == midnight + timedelta(days=1)


def test_cpu_quota(store: Store) -> None:
    store.create_tenant("acme", "Acme", cpu_seconds_per_day=2.0)
    assert store.record_usage("acme", 1999).exceeded is False
    q = store.record_usage("acme", 1)
    assert q.exceeded_by == "cpu_seconds" and q.cpu_seconds_used == 2.0 and q.executions_limit is None


def test_unlimited_tenant_never_exceeds(store: Store) -> None:
    store.create_tenant("acme", "Acme")
    q = store.record_usage("acme", 10**9)
    assert not q.exceeded and q.cpu_seconds_limit is None


def test_tenants_counters_are_isolated(store: Store) -> None:
    store.create_tenant("acme", "Acme", executions_per_day=1, cpu_seconds_per_day=1)
    store.create_tenant("beta", "Beta", executions_per_day=1, cpu_seconds_per_day=1)
    assert store.record_usage("acme", 5000).exceeded
    b = store.check_quota("beta")
    assert (b.executions_used, b.cpu_seconds_used, b.exceeded) == (0, 0, False)
    assert not store.reserve_execution("beta").exceeded
    assert store.check_quota("acme").executions_used == 1


def test_quota_is_per_utc_day(store: Store) -> None:
    store.create_tenant("acme", "Acme", executions_per_day=1)
    day1 = datetime(2030, 1, 1, 23, 59, tzinfo=UTC)
    day2 = datetime(2030, 1, 2, 0, 1, tzinfo=UTC)
    assert not store.reserve_execution("acme", now=day1).exceeded
    assert store.reserve_execution("acme", now=day1).exceeded
    q2 = store.check_quota("acme", now=day2)
    assert q2.day == date(2030, 1, 2) and q2.executions_used == 0 and not q2.exceeded
    store.record_usage("acme", 300, executions=0, day=date(2030, 1, 1))
    assert store.check_quota("acme", now=day1).cpu_seconds_used == 0.3


def test_reserve_does_not_count_when_exceeded(store: Store) -> None:
    store.create_tenant("acme", "Acme", executions_per_day=1)
    first = store.reserve_execution("acme")
    assert not first.exceeded and first.executions_used == 0  # state before counting
    for _ in range(3):
        assert store.reserve_execution("acme").exceeded
    assert store.check_quota("acme").executions_used == 1


def test_reserve_is_atomic_across_threads(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    with Store(path) as s:
        s.create_tenant("acme", "Acme", executions_per_day=10)
        admitted: list[bool] = []
        lock = threading.Lock()

        def worker() -> None:
            for _ in range(5):
                ok = not s.reserve_execution("acme").exceeded
                with lock:
                    admitted.append(ok)

        threads = [threading.Thread(target=worker) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert admitted.count(True) == 10
        assert s.check_quota("acme").executions_used == 10


def test_quota_unknown_tenant(store: Store) -> None:
    with pytest.raises(NotFoundError):
        store.check_quota("ghost")
    with pytest.raises(NotFoundError):
        store.record_usage("ghost", 1)
    with pytest.raises(NotFoundError):
        store.reserve_execution("ghost")
    store.create_tenant("acme", "Acme")
    with pytest.raises(ValueError):
        store.record_usage("acme", -1)


def test_tenant_ceilings_name_the_same_limits_the_engine_takes() -> None:
    """The service pairs TenantLimits with the engine's StageLimits field by field."""
    from dataclasses import fields

    from stockade.engine import StageLimits
    from stockade.service.store import TenantLimits

    assert [f.name for f in fields(TenantLimits)] == list(StageLimits.names())
