"""Admission under overload: 1 slot + 1 queue place, 20 concurrent 3-second programs (10x capacity).

Beyond capacity the service answers at once with 503 + Retry-After; nothing else fails; it stays healthy and
its memory stays bounded. How fast the 503s are is a benchmark's business: this only bounds them loosely,
below the time a request that waited for a slot would take (>= 3 s), as shared CI hosts can be very busy.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import socket
import time
from collections.abc import Callable, Iterator

import httpx
import pytest

from tests.service.live import LiveServer, live_server, metric

CONCURRENCY = 20
SLEEP_S = 3
SLEEP = {"language": "python", "code": f"import time\ntime.sleep({SLEEP_S})\nprint('done')"}
REFUSAL_BOUND_S = 2.0


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    data_dir = tmp_path_factory.mktemp("overload") / "data"
    with live_server("overload", uid_base=66200, data_dir=data_dir, slots=1, queue=1) as s:
        yield s


async def _one(c: httpx.AsyncClient) -> tuple[int, float, httpx.Response]:
    t0 = time.monotonic()
    r = await c.post("/v1/execute", json=SLEEP)
    return r.status_code, time.monotonic() - t0, r


async def _burst(url: str) -> list[tuple[int, float, httpx.Response]]:
    limits = httpx.Limits(max_connections=CONCURRENCY * 2, max_keepalive_connections=CONCURRENCY * 2)
    async with httpx.AsyncClient(base_url=url, timeout=60, limits=limits) as c:
        # Warm the connections, so the burst measures admission rather than TCP handshakes. Not with
        # executions: 20 at once would take every place, even invalid ones while they are validated.
        warm = await asyncio.gather(*(c.get("/v1/execute") for _ in range(CONCURRENCY)))
        assert {r.status_code for r in warm} == {405}
        return await asyncio.gather(*(_one(c) for _ in range(CONCURRENCY)))


def test_overload_is_refused_fast_and_cleanly(server: LiveServer) -> None:
    hello = httpx.post(f"{server.url}/v1/execute", json={"language": "python", "code": "print(1)"}, timeout=60)
    assert hello.json()["status"] == "ok"
    rss_before = server.rss_kb()

    results = asyncio.run(_burst(server.url))
    for _ in range(1):  # a second wave: memory must not grow with the number of refusals
        results += asyncio.run(_burst(server.url))

    statuses = [s for s, _, _ in results]
    assert set(statuses) <= {200, 503, 429}, statuses
    assert not [s for s in statuses if s >= 500 and s != 503]
    ok = [r for s, _, r in results if s == 200]
    refused = [(dt, r) for s, dt, r in results if s == 503]
    # 1 slot + 1 queue place: 2 admitted per wave of simultaneous requests (3 if one ends during the wave).
    assert 2 * 2 <= len(ok) <= 2 * 3, statuses
    assert len(refused) >= 2 * (CONCURRENCY - 3), statuses
    for r in ok:
        body = r.json()
        assert body["status"] == "ok" and body["stdout"] == "done\n", body
    latencies = sorted(round(dt, 3) for dt, _ in refused)
    for _dt, r in refused:
        body = r.json()
        assert body["status"] == "failed" and body["error"] == "OVERLOADED", body
        assert int(r.headers["Retry-After"]) >= 1
    # Refused without waiting for a slot.
    assert latencies[-1] < REFUSAL_BOUND_S, f"503 latencies (s): {latencies}"
    assert min(dt for s, dt, _ in results if s == 200) >= SLEEP_S

    # Healthy afterwards.
    assert httpx.get(f"{server.url}/readyz", timeout=10).status_code == 200
    after = httpx.post(f"{server.url}/v1/execute", json={"language": "python", "code": "print(2)"}, timeout=60)
    assert after.json()["stdout"] == "2\n"
    metrics = httpx.get(f"{server.url}/metrics", timeout=10).text
    assert 'stockade_rejections_total{reason="overloaded"}' in metrics
    assert "stockade_in_flight 0.0" in metrics
    rss_after = server.rss_kb()
    assert rss_after - rss_before < 100 * 1024, (rss_before, rss_after)
    assert server.leftovers() == {"processes": [], "cgroups": [], "box_dirs": []}


def _raw_post(server: LiveServer, body: bytes) -> socket.socket:
    """POST /v1/execute on a socket of its own, left to the caller to read (or not) and close."""
    host, port = server.url.removeprefix("http://").split(":")
    conn = socket.create_connection((host, int(port)), timeout=30)
    head = f"POST /v1/execute HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
    conn.sendall(f"{head}Content-Length: {len(body)}\r\n\r\n".encode() + body)
    return conn


def test_a_client_that_never_reads_its_response_holds_no_place_and_no_slot(server: LiveServer) -> None:
    """The only slot and place are given back once a response is written to the socket's buffers, not
    once the client has read it: a client that stops reading a large response cannot hold the node."""
    code = "import sys\nsys.stdout.write('x' * (24 << 20))"
    body = json.dumps({"language": "python", "code": code, "limits": {"output_kb": 24 * 1024 + 1}}).encode()
    with _raw_post(server, body) as stuck:
        assert stuck.recv(12, socket.MSG_WAITALL) == b"HTTP/1.1 200"  # it has started; nothing more is read
        time.sleep(0.5)  # far more than the socket buffers hold is still unsent
        for i in range(3):
            r = httpx.post(f"{server.url}/v1/execute", json={"language": "python", "code": f"print({i})"}, timeout=30)
            assert r.status_code == 200 and r.json()["stdout"] == f"{i}\n", r.text


def test_one_slot_serves_a_compile_and_then_its_run(server: LiveServer) -> None:
    """The compile's box goes back to the builder before the run asks for the only slot, although the
    service holds finished boxes back until its response is written."""
    hello_c = '#include <stdio.h>\nint main(void) { puts("hi"); return 0; }\n'
    r = httpx.post(f"{server.url}/v1/execute", json={"language": "c", "code": hello_c}, timeout=60)
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["status"], body["stdout"], body["compile"]["status"]) == ("ok", "hi\n", "ok"), body


def _metric_sum(url: str, name: str, **labels: str) -> float:
    return metric(httpx.get(f"{url}/metrics", timeout=10).text, name, **labels)


def _wait_for(what: Callable[[], bool], timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while not what():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_a_queued_request_whose_client_left_is_dropped_before_it_runs(server: LiveServer) -> None:
    """Its place and slot go to requests still awaited; a run that has started is never dropped."""
    executions = _metric_sum(server.url, "stockade_executions_total")
    dropped = _metric_sum(server.url, "stockade_rejections_total", reason="client_gone")
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        holder = pool.submit(httpx.post, f"{server.url}/v1/execute", json=SLEEP, timeout=60)
        _wait_for(lambda: _metric_sum(server.url, "stockade_in_flight") == 1, 30)
        body = json.dumps({"language": "python", "code": "print('nobody reads this')"}).encode()
        with _raw_post(server, body):
            _wait_for(lambda: _metric_sum(server.url, "stockade_in_flight") == 2, 30)  # queued behind the holder
        _wait_for(lambda: _metric_sum(server.url, "stockade_in_flight") == 1, 10)  # dropped: the holder is left
        assert not holder.done()  # the started run was not touched
        r = holder.result()
    assert r.status_code == 200 and r.json()["stdout"] == "done\n", r.text
    assert _metric_sum(server.url, "stockade_rejections_total", reason="client_gone") == dropped + 1
    time.sleep(0.5)  # a queued run, had it not been dropped, would have started once the holder ended
    assert _metric_sum(server.url, "stockade_executions_total") == executions + 1
    ok = httpx.post(f"{server.url}/v1/execute", json={"language": "python", "code": "print(1)"}, timeout=30)
    assert ok.status_code == 200 and ok.json()["stdout"] == "1\n"  # its place and its quota hold were given back
