"""Servers for the compatibility tests: real `stockade serve` processes (tests/service/live.py), one in
open mode, one with API keys. uid bases 67000-67199 are this suite's."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from stockade.service.store import Store
from tests.service.live import LiveServer, live_server


@pytest.fixture(scope="session")
def open_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with live_server("compat-open", uid_base=67000, data_dir=tmp_path_factory.mktemp("compat-open") / "data") as s:
        yield s


@pytest.fixture(scope="session")
def client(open_server: LiveServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=open_server.url, timeout=60) as c:
        yield c


@pytest.fixture(scope="session")
def keyed_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LiveServer, dict[str, str]]]:
    """A server with keys: tenants acme, python-only (may use python alone) and one-a-day (one
    execution a day), and their keys."""
    data_dir = tmp_path_factory.mktemp("compat-keys") / "data"
    data_dir.mkdir(mode=0o700)
    keys = {}
    with Store(data_dir / "stockade.db") as st:
        st.create_tenant("acme", "acme", rate_per_minute=1000)
        keys["acme"] = st.create_key("acme", "test")[1]
        st.create_tenant("python-only", "python-only", rate_per_minute=1000, allowed_languages=["python"])
        keys["python-only"] = st.create_key("python-only", "test")[1]
        st.create_tenant("one-a-day", "one-a-day", rate_per_minute=1000, executions_per_day=1)
        keys["one-a-day"] = st.create_key("one-a-day", "test")[1]
    with live_server("compat-keys", uid_base=67100, data_dir=data_dir, slots=1) as s:
        yield s, keys
