"""Session servers for the cluster tests: one private PostgreSQL and one private Redis, started on first use.

`postgres_url` is one database the whole session shares; `pg_database` is a fresh empty one per test, for
tests that need a schema of their own. Fault tests that stop a server make their own (`PostgresServer()`,
`RedisServer()` from tests/cluster/servers.py, in a fixture of theirs) so they never stop the shared ones.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

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
