"""The test servers themselves: they answer, keep their data across a restart in place, and leave nothing."""

from __future__ import annotations

import socket
from urllib.parse import urlsplit

import psycopg
import pytest

from tests.cluster.servers import PostgresServer, RedisServer


def _redis(port: int, *command: str) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall((f"*{len(command)}\r\n" + "".join(f"${len(c)}\r\n{c}\r\n" for c in command)).encode())
        return s.recv(256)


def test_postgres_keeps_port_and_data_across_a_stop() -> None:
    with PostgresServer() as pg:
        url = pg.new_database()
        with psycopg.connect(url) as conn:
            conn.execute("CREATE TABLE t (v int)")
            conn.execute("INSERT INTO t VALUES (42)")
        port = pg.port
        pg.stop()
        assert not pg.running
        with pytest.raises(psycopg.OperationalError):
            psycopg.connect(url, connect_timeout=2)
        pg.start()
        assert pg.port == port
        with psycopg.connect(url) as conn:
            assert conn.execute("SELECT v FROM t").fetchone() == (42,)
        pg.restart(mode="immediate")
        with psycopg.connect(url) as conn:
            assert conn.execute("SELECT v FROM t").fetchone() == (42,)
        root = pg.root
    assert not root.exists()
    assert not pg.running


def test_redis_restarts_in_place_and_forgets_without_persistence() -> None:
    with RedisServer() as r:
        assert _redis(r.port, "SET", "k", "v") == b"+OK\r\n"
        r.restart()
        assert _redis(r.port, "GET", "k") == b"$-1\r\n"  # no persistence: empty after a restart
        root = r.root
    assert not root.exists()


def test_redis_with_appendonly_keeps_data_across_a_kill() -> None:
    with RedisServer(appendonly=True) as r:
        assert _redis(r.port, "SET", "k", "v") == b"+OK\r\n"
        r.restart(kill=True)
        assert _redis(r.port, "GET", "k") == b"$1\r\nv\r\n"


def test_session_fixtures_answer(postgres_url: str, redis_url: str) -> None:
    with psycopg.connect(postgres_url) as conn:
        assert conn.execute("SELECT current_user").fetchone() == ("stockade",)
    url = urlsplit(redis_url)
    assert url.hostname == "127.0.0.1" and url.port is not None
    assert _redis(url.port, "PING") == b"+PONG\r\n"
