"""Live `stockade serve` subprocesses for the client tests (SDK, CLI, playground), one of each kind per session.

The servers come from tests/service/live.py; each has its own port, data dir, run dir, uid range and cgroup
name (uids 67000+ and 67100+ are reserved for this suite).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from stockade.service.config import ServiceConfig
from stockade.service.store import Store
from tests.service.live import LiveServer, live_server

OPEN_UID_BASE = 67000
KEYED_UID_BASE = 67100


@dataclass(frozen=True)
class KeyedServer:
    """A server with API keys, hence no open mode. Every key belongs to its own tenant."""

    server: LiveServer
    key: str  # tenant "team": generous rate, no quota, every language
    limited_key: str  # tenant "throttled": 1 request per minute
    quota_key: str  # tenant "frugal": 1 execution per day
    python_only_key: str  # tenant "pythonista": only python is allowed

    @property
    def url(self) -> str:
        return self.server.url


@pytest.fixture(scope="session")
def open_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """A server in open mode (no API keys, loopback)."""
    data_dir = tmp_path_factory.mktemp("clients-open") / "data"
    with live_server("clients-open", uid_base=OPEN_UID_BASE, data_dir=data_dir, slots=2, queue=16) as server:
        yield server


@pytest.fixture(scope="session")
def keyed_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KeyedServer]:
    data_dir = tmp_path_factory.mktemp("clients-keyed") / "data"
    # Straight into the store rather than through `stockade tenants/keys create`: four CLI round trips cost
    # ~20 s on a busy host, and the admin commands have their own tests.
    data_dir.mkdir(mode=0o700, parents=True)
    store = Store(ServiceConfig(data_dir=data_dir).db_path)
    try:

        def key(tenant: str, **options: Any) -> str:
            store.create_tenant(tenant, tenant, **options)
            return store.create_key(tenant, "clients-tests")[1]

        team = key("team", rate_per_minute=100_000)
        limited = key("throttled", rate_per_minute=1)
        quota = key("frugal", rate_per_minute=100_000, executions_per_day=1)
        python_only = key("pythonista", rate_per_minute=100_000, allowed_languages=["python"])
    finally:
        store.close()
    with live_server("clients-keyed", uid_base=KEYED_UID_BASE, data_dir=data_dir, slots=2, queue=16) as server:
        yield KeyedServer(server, team, limited, quota, python_only)
