"""Session servers for the cluster tests: one private PostgreSQL and one private Redis, started on first use.

`postgres_url` is one database the whole session shares; `pg_database` is a fresh empty one per test, for
tests that need a schema of their own. Fault tests that stop a server make their own (`PostgresServer()`,
`RedisServer()` from tests/cluster/servers.py, in a fixture of theirs) so they never stop the shared ones:
`cluster` is such a pair, for the tests of API nodes and workers (tests/cluster/nodes.py).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cluster.nodes import Cluster
from tests.cluster.servers import PostgresServer, RedisServer


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    with PostgresServer() as server:
        yield server


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    with RedisServer() as server:
        yield server


@pytest.fixture(scope="session")
def postgres_url(postgres_server: PostgresServer) -> str:
    return postgres_server.new_database()


@pytest.fixture(scope="session")
def redis_url(redis_server: RedisServer) -> str:
    return redis_server.url


@pytest.fixture
def pg_database(postgres_server: PostgresServer) -> str:
    """A fresh empty database for one test: its URL."""
    return postgres_server.new_database()


@pytest.fixture
def cluster(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Cluster]:
    """A private PostgreSQL and a private Redis (append-only: a restart keeps the queue), for one test."""
    with PostgresServer() as pg, RedisServer(appendonly=True) as redis:
        c = Cluster(tmp_path, pg.new_database(), redis.url, redis, pg)
        monkeypatch.setenv("STOCKADE_DATABASE_URL", c.database_url)  # the operator commands'
        yield c
