"""Descriptor exhaustion and slow clients (issue 28 §4), against a real `stockade serve` whose descriptor
limit the test lowers to 1024 (prlimit on the live process): 1 100 connections that each send half a
request and hold it, slowloris, a bare request line, a body cut short. A normal client is still served;
its latency against the baseline of the same run is reported, not asserted."""

from __future__ import annotations

import asyncio
import resource
import socket
import statistics
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.faults.helpers import HELLO, report
from tests.service.live import LiveServer, live_server, metric

HELD = 1100
SLOWLORIS = 300
NORMAL = 10
HALF = b"POST /v1/execute HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 8192)), hard))  # the clients' sockets
    data_dir = tmp_path_factory.mktemp("fds") / "data"
    with live_server("fault-fds", uid_base=69400, data_dir=data_dir, slots=1) as s:
        resource.prlimit(s.pid, resource.RLIMIT_NOFILE, (1024, 1024))  # `ulimit -n 1024`, on the live node
        asyncio.run(normal_latencies(s.url, 3))  # warm: the baselines measure a node past its first runs
        yield s
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


async def normal_latencies(url: str, n: int = NORMAL) -> list[float]:
    """`n` executions, each on a new connection; every one must succeed. Seconds each."""
    out = []
    for _ in range(n):
        async with httpx.AsyncClient(timeout=60) as c:
            t = time.perf_counter()
            r = await c.post(f"{url}/v1/execute", json=HELLO)
            out.append(time.perf_counter() - t)
        assert r.status_code == 200 and r.json()["stdout"] == "hello\n", r.text
    return out


async def open_half_requests(port: int, n: int, first: bytes) -> list[asyncio.StreamWriter]:
    async def one() -> asyncio.StreamWriter | None:
        try:
            _, w = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), 30)
            w.write(first)
            await w.drain()
            return w
        except (OSError, TimeoutError):
            return None

    return [w for w in await asyncio.gather(*(one() for _ in range(n))) if w is not None]


def close_all(writers: list[asyncio.StreamWriter]) -> None:
    for w in writers:
        w.close()


def test_a_normal_client_is_served_while_1100_half_requests_are_held(server: LiveServer) -> None:
    async def scenario() -> tuple[list[float], list[float], int]:
        baseline = await normal_latencies(server.url)
        held = await open_half_requests(server.port, HELD, HALF)
        try:
            under = await normal_latencies(server.url)
        finally:
            close_all(held)
        return baseline, under, len(held)

    log_before = len(server.log())
    baseline, under, opened = asyncio.run(scenario())
    text = httpx.get(f"{server.url}/metrics", timeout=10).text
    evicted = metric(text, "stockade_connection_refusals_total", reason="evicted")
    refused = metric(text, "stockade_connection_refusals_total", reason="too_many")
    assert evicted + refused >= HELD - 1024 + 1, text  # past the cap they were closed, not left to accept()
    log = server.log()[log_before:]
    assert "Traceback" not in log, log[-3000:]
    assert log.count("accept() failed") <= 3, log[-3000:]  # once per interval at most, with a count
    p50, p50_under = statistics.median(baseline), statistics.median(under)
    report("descriptors", {
        "ulimit_n": 1024, "half_requests_held": opened, "normal_ok": f"{len(under)}/{NORMAL}",
        "baseline_p50_ms": round(p50 * 1000, 1), "under_exhaustion_p50_ms": round(p50_under * 1000, 1),
        "ratio": round(p50_under / p50, 2), "evicted": int(evicted), "refused_503": int(refused),
        "accept_errors": int(metric(text, "stockade_accept_errors_total")),
    })  # fmt: skip


def test_slowloris_with_300_connections_has_no_effect(server: LiveServer) -> None:
    async def scenario() -> tuple[list[float], list[float]]:
        baseline = await normal_latencies(server.url)
        held = await open_half_requests(server.port, SLOWLORIS, HALF)
        try:
            for i in range(3):  # a header line now and then, never the end of the headers
                for w in held:
                    if not w.is_closing():
                        w.write(f"X-Slow-{i}: 1\r\n".encode())
                under = await normal_latencies(server.url, 3)
        finally:
            close_all(held)
        return baseline, under

    baseline, under = asyncio.run(scenario())
    report("slowloris", {"connections": SLOWLORIS, "baseline_p50_ms": round(statistics.median(baseline) * 1000, 1),
                         "under_p50_ms": round(statistics.median(under) * 1000, 1)})  # fmt: skip


def test_a_bare_request_line_and_a_short_body_get_a_typed_408(server: LiveServer) -> None:
    short = b'{"language": "python", "code": "print(1)"}'
    bare = socket.create_connection(("127.0.0.1", server.port), timeout=60)
    cut = socket.create_connection(("127.0.0.1", server.port), timeout=60)
    silent = socket.create_connection(("127.0.0.1", server.port), timeout=60)
    try:
        bare.sendall(b"GET / HTTP/1.1\r\n")
        cut.sendall(HALF + f"Content-Length: {len(short) + 90}\r\n\r\n".encode() + short)
        for s, timeout in ((bare, "header_timeout"), (cut, "body_timeout")):
            answer = b""
            while chunk := s.recv(4096):  # until the server closes the connection
                answer += chunk
            assert answer.startswith(b"HTTP/1.1 408"), (timeout, answer)
            assert b'"error": "REQUEST_TIMEOUT"' in answer and b"connection: close" in answer.lower()
        assert silent.recv(4096) == b""  # sent nothing: closed without an answer
    finally:
        for s in (bare, cut, silent):
            s.close()
    text = httpx.get(f"{server.url}/metrics", timeout=10).text
    assert metric(text, "stockade_connection_refusals_total", reason="header_timeout") >= 2
    assert metric(text, "stockade_connection_refusals_total", reason="body_timeout") >= 1
    assert httpx.post(f"{server.url}/v1/execute", json=HELLO, timeout=60).status_code == 200
    assert Path(server.log_path).exists()
