"""GET /v1/execute/stream against a real `stockade serve`: output reaches the client while the program
runs, stdin is fed while it runs, a client that stops reading cannot make the service buffer without
bound, and the pipeline (auth, rate limit, quota, admission, audit) is POST /v1/execute's.

No assertion depends on timing: "before the program ends" is proved by a program that cannot end
until the client answers what it saw."""

from __future__ import annotations

import hashlib
import json
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from websockets.client import ClientProtocol
from websockets.exceptions import ConnectionClosed
from websockets.frames import Frame, Opcode
from websockets.http11 import Response
from websockets.sync.client import connect
from websockets.uri import parse_uri

from stockade.client import (
    AsyncClient,
    Client,
    Forbidden,
    InvalidRequest,
    LimitOutOfRange,
    Overloaded,
    QuotaExceeded,
    RateLimited,
    Unauthenticated,
    UnknownLanguage,
)
from stockade.service.config import ServiceConfig
from stockade.service.store import Store
from tests.service.live import LiveServer, cli, live_server

UID_BASE = 69700
PY = "python"


@dataclass(frozen=True)
class Keys:
    team: str
    admin: str
    throttled: str
    frugal: str
    pythonista: str
    leaver: str


@dataclass(frozen=True)
class Node:
    server: LiveServer
    keys: Keys

    @property
    def ws(self) -> str:
        return self.server.url.replace("http://", "ws://") + "/v1/execute/stream"

    def client(self, key: str | None) -> Client:
        return Client(self.server.url, api_key=key or "", retries=0, timeout=60)

    def settled(self) -> None:
        """Every execution answered so far has its audit record written (diagnostics waits for them)."""
        r = httpx.get(f"{self.server.url}/v1/diagnostics", headers=auth(self.keys.admin), timeout=30)
        assert r.status_code == 200, r.text
        assert r.json()["admission"]["recording"] == 0

    def records(self, tenant: str) -> list[dict[str, Any]]:
        lines = cli("audit", "export", data_dir=self.server.data_dir).stdout.splitlines()
        return [r for r in map(json.loads, lines) if r.get("tenant") == tenant and r.get("kind") == "execution"]


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Node]:
    data_dir = tmp_path_factory.mktemp("stream") / "data"
    data_dir.mkdir(mode=0o700, parents=True)
    store = Store(ServiceConfig(data_dir=data_dir).db_path)
    try:

        def key(tenant: str, **options: Any) -> str:
            store.create_tenant(tenant, tenant, **options)
            return store.create_key(tenant, "stream-tests")[1]

        keys = Keys(
            team=key("team", rate_per_minute=100_000),
            admin=key("admin", rate_per_minute=100_000),
            throttled=key("throttled", rate_per_minute=1),
            frugal=key("frugal", rate_per_minute=100_000, executions_per_day=1),
            pythonista=key("pythonista", rate_per_minute=100_000, allowed_languages=[PY]),
            leaver=key("leaver", rate_per_minute=100_000),
        )
    finally:
        store.close()
    # Two slots and no queue: two streams waiting for input take every execution place.
    with live_server("stream", uid_base=UID_BASE, data_dir=data_dir, slots=2, queue=0) as server:
        yield Node(server, keys)


TICKS = """\
import sys, time
print("tick 0", flush=True)
assert sys.stdin.readline() == "go\\n"
for i in range(1, 5):
    time.sleep(0.1)
    print("tick", i, flush=True)
"""

ECHO = """\
import sys
for line in sys.stdin:
    print("echo:", line, end="", flush=True)
print("bye", flush=True)
"""


def test_the_first_line_arrives_before_the_program_ends(node: Node) -> None:
    seen = ""
    chunks = 0
    with node.client(node.keys.team) as client, client.stream(PY, TICKS) as run:
        for event in run:
            if event.type == "stdout":
                seen += event.text
                chunks += 1
                if seen == "tick 0\n":
                    assert run.result is None
                    run.send("go\n")  # the program cannot go on, let alone end, before this
    result = run.result
    assert result is not None and result.status == "ok", result
    assert seen == result.stdout == "".join(f"tick {i}\n" for i in range(5))
    assert chunks >= 2  # the first chunk came alone, before "go" was sent


async def test_interactive_stdin_is_echoed_line_by_line(node: Node) -> None:
    stdout = ""
    to_send = ["one\n", "two\n", "three\n"]
    waiting_for: str | None = "echo: zero\n"  # each line is sent once the program has echoed the last
    async with (
        AsyncClient(node.server.url, api_key=node.keys.team, retries=0) as client,
        client.stream(PY, ECHO, stdin="zero\n") as run,
    ):
        async for event in run:
            if event.type != "stdout":
                continue
            stdout += event.text
            if waiting_for is not None and stdout.endswith(waiting_for):
                if to_send:
                    line = to_send.pop(0)
                    waiting_for = f"echo: {line}"
                    assert await run.send(line)
                else:
                    waiting_for = None
                    assert await run.close()
    assert run.result is not None and run.result.status == "ok", run.result
    want = "echo: zero\necho: one\necho: two\necho: three\nbye\n"
    assert stdout == run.result.stdout == want


def test_bytes_in_and_out_exactly_with_base64(node: Node) -> None:
    code = "import sys\nsys.stdout.buffer.write(sys.stdin.buffer.read()[::-1])"
    with node.client(node.keys.team) as client, client.stream(PY, code, output_encoding="base64") as run:
        run.send(b"\xff\x00\xfe")
        run.send("é")
        run.close()
        events = list(run)
    assert run.result is not None and run.result.stdout_bytes == "é".encode()[::-1] + b"\xfe\x00\xff"
    assert b"".join(e.data for e in events if e.type == "stdout") == run.result.stdout_bytes


def test_compile_output_comes_in_the_result_and_the_run_is_live(node: Node) -> None:
    c = '#include <stdio.h>\nint main(void){char b[64]; puts("name?"); fflush(stdout);\n'
    c += 'if (fgets(b, sizeof b, stdin)) printf("hi %s", b); return 0;}\n'
    with node.client(node.keys.team) as client, client.stream("c", c) as run:
        for event in run:
            if event.type == "stdout" and event.text == "name?\n":
                run.send("ada\n")
    assert run.result is not None and run.result.status == "ok", run.result
    assert run.result.compile is not None and run.result.compile.status == "ok"
    assert run.result.stdout == "name?\nhi ada\n"


# -- a client that stops reading ----------------------------------------------------------------


class RawClient:
    """A WebSocket client over a plain socket (websockets' sans-IO protocol), that reads only when told:
    a stalled client is one that does not call events()."""

    def __init__(self, url: str, key: str) -> None:
        uri = parse_uri(url)
        self.sock = socket.create_connection((uri.host, uri.port), timeout=120)
        self.proto = ClientProtocol(uri, max_size=None)
        request = self.proto.connect()
        request.headers["Authorization"] = f"Bearer {key}"
        self.proto.send_request(request)
        self._flush()
        self.pending: list[Any] = []
        while not self.pending:
            data = self.sock.recv(65536)
            assert data, "closed during the handshake"
            self.proto.receive_data(data)
            self.pending = self.proto.events_received()
        response = self.pending.pop(0)
        assert isinstance(response, Response) and response.status_code == 101, response

    def _flush(self) -> None:
        for data in self.proto.data_to_send():
            self.sock.sendall(data)

    def send(self, event: dict[str, Any]) -> None:
        self.proto.send_text(json.dumps(event).encode())
        self._flush()

    def events(self) -> Iterator[dict[str, Any]]:
        """Every text message until the server closes."""
        while True:
            for ev in self.pending:
                if isinstance(ev, Frame) and ev.opcode is Opcode.TEXT:
                    yield json.loads(ev.data)
                elif isinstance(ev, Frame) and ev.opcode is Opcode.CLOSE:
                    return
            self._flush()  # pongs
            data = self.sock.recv(1 << 20)
            if not data:
                return
            self.proto.receive_data(data)
            self.pending = self.proto.events_received()

    def close(self) -> None:
        self.sock.close()


def execution_lines(server: LiveServer, tenant: str) -> list[dict[str, Any]]:
    return [r for r in server.log_records() if r.get("message") == "execution" and r.get("tenant") == tenant]


def wait_for(condition: Any, what: str, timeout: float = 90.0) -> Any:
    """Poll `condition` (the real thing, e.g. a log line) until it is true; the timeout is a safety net."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if found := condition():
            return found
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def test_a_stalled_client_under_an_output_flood_holds_the_program_not_the_service_memory(node: Node) -> None:
    server = node.server
    before = len(execution_lines(server, "team"))
    rss_before = server.rss_kb()
    flood = "import sys\nwhile True:\n    sys.stdout.write('y' * 65536)"
    cap_kb = 65536  # 64 MiB each of stdout and stderr may be kept: a service buffering for a stalled client would
    raw = RawClient(node.ws, node.keys.team)
    try:
        raw.send({"language": PY, "code": flood, "limits": {"wall_ms": 3000, "output_kb": cap_kb}})
        # Read nothing until the run is over and recorded (its log line, written before the result is sent).
        line = wait_for(lambda: execution_lines(server, "team")[before:], "the flood's execution line")[0]
        rss_after = server.rss_kb()
        assert line["verdict"] == "timeout", line  # ended at its wall limit, not by filling its output cap
        # The service read only what the socket buffers absorbed, a small part of the 64 MiB cap.
        assert line["stdout_bytes"] < 24 * 1024 * 1024, line
        assert rss_after - rss_before < 64 * 1024, (rss_before, rss_after)  # 17 MiB measured
        # Reading again, the client gets what was held for it, then the result.
        events = list(raw.events())
    finally:
        raw.close()
    assert events[-1]["type"] == "result", events[-1]
    result = events[-1]["result"]
    assert (result["status"], result["timeout_kind"], result["stdout_truncated"]) == ("timeout", "wall", False)
    streamed = sum(len(e["data"]) for e in events if e["type"] == "stdout")
    assert 0 < streamed <= len(result["stdout"])


# -- the pipeline: the same refusals as POST /v1/execute ------------------------------------------


def test_refusals_are_typed_errors(node: Node) -> None:
    k = node.keys
    cases: list[tuple[str | None, str, str, dict[str, Any], type[Exception]]] = [
        (None, PY, "print(1)", {}, Unauthenticated),
        ("sk_0000000000000000_nope", PY, "print(1)", {}, Unauthenticated),
        (k.pythonista, "c", "int main(void){return 0;}", {}, Forbidden),
        (k.team, "cobol-85", "x", {}, UnknownLanguage),
        (k.team, PY, "print(1)", {"limits": {"cpu_ms": 10**9}}, LimitOutOfRange),
    ]
    for key, language, code, options, error in cases:
        with node.client(key) as client, pytest.raises(error):
            list(client.stream(language, code, **options))


def test_a_refusal_closes_with_4000_plus_its_http_status(node: Node) -> None:
    with connect(node.ws) as ws:
        event = json.loads(ws.recv())
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv()
    assert event["type"] == "error" and event["http_status"] == 401
    assert event["error"]["error"] == "UNAUTHENTICATED"
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 4401
    with connect(node.ws, additional_headers=auth(node.keys.team)) as ws:
        ws.send("{not json")
        event = json.loads(ws.recv())
    assert (event["http_status"], event["error"]["error"]) == (400, "INVALID_REQUEST")


def test_a_page_of_another_origin_is_refused_and_a_browser_key_is_a_subprotocol(node: Node) -> None:
    with connect(node.ws, origin="http://evil.example", additional_headers=auth(node.keys.team)) as ws:  # type: ignore[arg-type]
        event = json.loads(ws.recv())
    assert (event["http_status"], event["error"]["error"]) == (403, "FORBIDDEN")
    host = node.server.url.removeprefix("http://")
    protocols = ["stockade.v1", f"stockade.bearer.{node.keys.team}"]
    with connect(node.ws, origin=f"http://{host}", subprotocols=protocols) as ws:  # type: ignore[arg-type]
        assert ws.subprotocol == "stockade.v1"  # never the one carrying the key
        ws.send(json.dumps({"language": PY, "code": "print(6*7)"}))
        events = [json.loads(m) for m in ws]
    assert events[-1]["type"] == "result" and events[-1]["result"]["stdout"] == "42\n"


def test_rate_limit_and_quota_as_for_execute(node: Node) -> None:
    for key, error in ((node.keys.throttled, RateLimited), (node.keys.frugal, QuotaExceeded)):
        with node.client(key) as client:
            with client.stream(PY, "print(1)") as first:
                assert [e.type for e in first][-1] == "result"
            with pytest.raises(error) as refused:
                list(client.stream(PY, "print(2)"))
            assert refused.value.retry_after is not None and refused.value.retry_after >= 1


def test_streams_hold_execution_places_like_any_execution(node: Node) -> None:
    wait = "import sys\nprint('in', flush=True)\nsys.stdin.read()"
    with node.client(node.keys.team) as client:
        holding = [client.stream(PY, wait) for _ in range(2)]  # two places: slots 2, queue 0
        for run in holding:
            assert next(iter(run)).text == "in\n"  # running, its place held
        with pytest.raises(Overloaded) as refused:
            list(client.stream(PY, "print(1)"))
        assert refused.value.retry_after == 1
        r = httpx.post(
            f"{node.server.url}/v1/execute", json={"language": PY, "code": "print(1)"}, headers=auth(node.keys.team)
        )
        assert (r.status_code, r.json()["error"]) == (503, "OVERLOADED")
        for run in holding:
            run.close()
            assert [e.type for e in run][-1] == "result"
            run.disconnect()


# -- the record ---------------------------------------------------------------------------------


def test_a_stream_is_audited_with_the_input_it_was_sent(node: Node) -> None:
    sent = ["alpha\n", "beta\n"]
    with node.client(node.keys.team) as client, client.stream(PY, ECHO, stdin="zero\n") as run:
        for line in sent:
            run.send(line)
        run.close()
        list(run)
    assert run.result is not None and run.result.status == "ok"
    node.settled()
    [record] = [r for r in node.records("team") if r["data"].get("execution_id") == run.result.execution_id]
    data = record["data"]
    assert (data["verdict"], data["stream"]) == ("ok", True)
    assert data["stdin_sha256"] == hashlib.sha256(b"zero\n").hexdigest()  # the request's own stdin
    assert data["live_stdin_bytes"] == len("".join(sent))
    assert data["live_stdin_sha256"] == hashlib.sha256("".join(sent).encode()).hexdigest()
    assert data["stdout_sha256"] == hashlib.sha256(run.result.stdout_bytes).hexdigest()


def test_a_client_that_leaves_mid_run_ends_its_input_and_the_run_is_recorded(node: Node) -> None:
    # Without the end of input the program would wait for it until its 60 s wall limit: a timeout.
    code = "import sys\nprint('ready', flush=True)\nprint(len(sys.stdin.read()))"
    with node.client(node.keys.leaver) as client:
        run = client.stream(PY, code, limits={"wall_ms": 60_000})
        assert next(iter(run)).text == "ready\n"
        run.send("abc")
        run.disconnect()
    [line] = wait_for(lambda: execution_lines(node.server, "leaver"), "the left run's execution line")
    assert (line["verdict"], line["stdout_bytes"]) == ("ok", len("ready\n3\n")), line
    node.settled()
    [record] = node.records("leaver")
    assert (record["data"]["verdict"], record["data"]["live_stdin_bytes"]) == ("ok", 3)


def test_a_bad_input_message_is_refused_and_the_run_still_recorded(node: Node) -> None:
    before = len(execution_lines(node.server, "team"))
    with connect(node.ws, additional_headers=auth(node.keys.team)) as ws:
        ws.send(json.dumps({"language": PY, "code": "import sys\nprint('in', flush=True)\nsys.stdin.read()"}))
        assert json.loads(ws.recv()) == {"type": "stdout", "data": "in\n"}
        ws.send(json.dumps({"type": "stdin", "data": "x", "extra": 1}))
        event = json.loads(ws.recv())
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv()
    assert (event["http_status"], event["error"]["error"]) == (400, "INVALID_REQUEST")
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 4400
    [line] = wait_for(lambda: execution_lines(node.server, "team")[before:], "the run's execution line")
    assert line["verdict"] == "ok", line


def test_invalid_request_is_refused_by_the_sdk_before_anything_runs(node: Node) -> None:
    with node.client(node.keys.team) as client, pytest.raises(InvalidRequest):
        list(client.stream(PY, "print(1)", args=["a\0b"]))
