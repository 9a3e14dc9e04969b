"""SDK tests against a fake Stockade API (httpx.MockTransport, and a real local HTTP server)."""

from __future__ import annotations

import base64
import contextlib
import importlib
import io
import json
import re
import socket
import sys
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from stockade.client import (
    AsyncClient,
    Client,
    ConnectionFailed,
    ExecutionResult,
    File,
    Forbidden,
    InternalError,
    InvalidRequest,
    LimitOutOfRange,
    Limits,
    Overloaded,
    PayloadTooLarge,
    QuotaExceeded,
    RateLimited,
    StockadeError,
    ToolchainMissing,
    Unauthenticated,
    UnexpectedResponse,
    UnknownLanguage,
)
from stockade.client.errors import parse_retry_after

DOCS = Path(__file__).resolve().parents[2] / "docs" / "sdk.md"

RUNTIMES_BODY = {
    "runtimes": [
        {
            "language": "python",
            "name": "Python 3",
            "aliases": ["py", "python3"],
            "extensions": ["py"],
            "version": "3.11.2",
            "available": True,
            "compiled": False,
            "hello": 'print("Hello, World!")',
        },
        {
            "language": "rust",
            "name": "Rust",
            "aliases": ["rs"],
            "extensions": ["rs"],
            "version": None,
            "available": False,
            "compiled": True,
            "hello": 'fn main() { println!("Hello, World!"); }',
        },
    ],
    "limits": {"default": {"cpu_ms": 5000}, "maximum": {"cpu_ms": 60000}},
}


def result_body(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "execution_id": "ex-1",
        "status": "ok",
        "stdout": "1\n",
        "stderr": "",
        "output_encoding": "utf8",
        "stdout_truncated": False,
        "stderr_truncated": False,
        "exit_code": 0,
        "signal": None,
        "timeout_kind": None,
        "time_ms": 12,
        "wall_time_ms": 30,
        "memory_kb": 9000,
        "compile": None,
        "runtime": {"language": "python", "version": "3.11.2"},
    }
    body.update(overrides)
    return body


def failure(status: int, code: str, message: str = "nope", **headers: str) -> httpx.Response:
    return httpx.Response(status, json={"status": "failed", "error": code, "message": message}, headers=headers)


def fake_api(request: httpx.Request) -> httpx.Response:
    """A tiny stand-in for the service; verdicts are chosen by markers in the code, never by running it."""
    path = request.url.path
    if request.method == "GET" and path == "/healthz":
        return httpx.Response(200, json={"status": "ok"})
    if request.method == "GET" and path == "/readyz":
        return httpx.Response(200, json={"status": "ready", "runtimes": 2})
    if request.method == "GET" and path == "/v1/runtimes":
        return httpx.Response(200, json=RUNTIMES_BODY)
    if request.method == "POST" and path in ("/v1/execute", "/execute"):
        body = json.loads(request.content)
        language = body.get("language")
        if language not in ("python", "py", "c"):
            return failure(404, "UNKNOWN_LANGUAGE", f"no language {language!r}")
        if language == "c":
            files = body.get("files") or []
            source = "".join(
                base64.b64decode(f["content"]).decode(errors="replace")
                if f.get("encoding") == "base64"
                else f["content"]
                for f in files
            )
            if "printf(" in source and ";" not in source:
                return httpx.Response(
                    200,
                    json=result_body(
                        status="compile_error",
                        stdout="",
                        exit_code=None,
                        compile={
                            "status": "compile_error",
                            "stdout": "",
                            "stderr": "main.c:1: error",
                            "exit_code": 1,
                            "time_ms": 40,
                            "wall_time_ms": 50,
                            "memory_kb": 20000,
                        },
                        runtime={"language": "c", "version": "12.2.0"},
                    ),
                )
            return httpx.Response(
                200,
                json=result_body(
                    stdout="hello from c\n",
                    compile={
                        "status": "ok",
                        "stdout": "",
                        "stderr": "",
                        "exit_code": 0,
                        "time_ms": 40,
                        "wall_time_ms": 50,
                        "memory_kb": 20000,
                    },
                    runtime={"language": "c", "version": "12.2.0"},
                ),
            )
        code = body.get("code") or ""
        if "while True" in code:
            return httpx.Response(
                200,
                json=result_body(
                    status="timeout",
                    stdout="",
                    exit_code=None,
                    signal=9,
                    timeout_kind="wall",
                    wall_time_ms=body.get("limits", {}).get("wall_ms", 10000),
                ),
            )
        if "raise" in code:
            return httpx.Response(
                200,
                json=result_body(
                    status="runtime_error", stdout="", stderr="Traceback...\nValueError: boom\n", exit_code=1
                ),
            )
        stdin = body.get("stdin") or ""
        return httpx.Response(200, json=result_body(stdout=stdin.upper() or "Hello, World!\n"))
    return httpx.Response(404, text="not found")


class Recorder:
    """Routes requests to a handler and keeps them for inspection."""

    def __init__(self, handler: Callable[[httpx.Request], httpx.Response] = fake_api) -> None:
        self.handler = handler
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return self.handler(request)

    def body(self, index: int = -1) -> dict[str, Any]:
        data: dict[str, Any] = json.loads(self.requests[index].content)
        return data


def sequence(*responses: httpx.Response) -> Callable[[httpx.Request], httpx.Response]:
    queue = list(responses)

    def handler(request: httpx.Request) -> httpx.Response:
        return queue.pop(0) if len(queue) > 1 else queue[0]

    return handler


@pytest.fixture(autouse=True)
def no_env_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("STOCKADE_API_KEY", raising=False)


def make_client(rec: Recorder, **kwargs: Any) -> tuple[Client, list[float]]:
    sleeps: list[float] = []
    client = Client("http://stockade.test", transport=httpx.MockTransport(rec), sleep=sleeps.append, **kwargs)
    return client, sleeps


# ------------------------------------------------------------------------------------------ requests


def test_submit_sends_contract_body_and_bearer() -> None:
    rec = Recorder()
    with Client("http://stockade.test/", api_key="k123", transport=httpx.MockTransport(rec)) as client:
        result = client.submit(
            "python",
            "print(input())",
            stdin="hi\n",
            args=["a b", "c"],
            limits=Limits(cpu_ms=1000, memory_mb=64),
            compile_limits={"wall_ms": 2000},
        )
    request = rec.requests[0]
    assert request.method == "POST"
    assert str(request.url) == "http://stockade.test/v1/execute"
    assert request.headers["authorization"] == "Bearer k123"
    assert request.headers["content-type"] == "application/json"
    assert rec.body() == {
        "language": "python",
        "version": None,
        "code": "print(input())",
        "stdin": "hi\n",
        "args": ["a b", "c"],
        "limits": {"cpu_ms": 1000, "memory_mb": 64},
        "compile_limits": {"wall_ms": 2000},
    }
    assert result.stdout == "HI\n"


def test_base_url_path_prefix_is_kept() -> None:
    rec = Recorder(lambda r: httpx.Response(200, json=result_body()))
    with Client("https://example.test/stockade", transport=httpx.MockTransport(rec)) as client:
        client.submit("python", "print(1)")
    assert str(rec.requests[0].url) == "https://example.test/stockade/v1/execute"


def test_files_str_and_bytes_content() -> None:
    rec = Recorder()
    client, _ = make_client(rec)
    client.submit("c", files={"main.c": "int main(){}\n", "data.bin": b"\x00\xffhi"}, entry="main.c")
    body = rec.body()
    assert "code" not in body
    assert body["entry"] == "main.c"
    assert body["files"] == [
        {"name": "main.c", "content": "int main(){}\n", "encoding": "utf8"},
        {"name": "data.bin", "content": base64.b64encode(b"\x00\xffhi").decode(), "encoding": "base64"},
    ]
    client.submit("c", files=[File("main.c", b"int main(){}")], entry="main.c")
    assert rec.body()["files"] == [
        {"name": "main.c", "content": base64.b64encode(b"int main(){}").decode(), "encoding": "base64"}
    ]


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({}, ValueError),
        ({"code": "x", "files": {"a.py": "x"}}, ValueError),
        ({"code": "x", "entry": "a.py"}, ValueError),
        ({"code": "x", "args": "--flag"}, TypeError),
        ({"files": {}}, ValueError),
        ({"files": ["main.c"]}, TypeError),
    ],
)
def test_bad_arguments_fail_before_sending(kwargs: dict[str, Any], error: type[Exception]) -> None:
    rec = Recorder()
    client, _ = make_client(rec)
    with pytest.raises(error):
        client.submit("python", **kwargs)
    assert rec.requests == []


def test_api_key_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STOCKADE_API_KEY", "from-env")
    rec = Recorder()
    client, _ = make_client(rec)
    client.health()
    assert rec.requests[-1].headers["authorization"] == "Bearer from-env"
    client2, _ = make_client(rec, api_key="explicit")
    client2.health()
    assert rec.requests[-1].headers["authorization"] == "Bearer explicit"


def test_no_authorization_header_without_key() -> None:
    rec = Recorder()
    client, _ = make_client(rec)
    client.runtimes()
    assert "authorization" not in rec.requests[0].headers


def test_read_timeout_grows_with_requested_wall_limit() -> None:
    rec = Recorder()
    client, _ = make_client(rec, timeout=30.0)
    client.submit("python", "print(1)", limits={"wall_ms": 60_000}, compile_limits=Limits(wall_ms=10_000))
    assert rec.requests[0].extensions["timeout"]["read"] == pytest.approx(75.0)
    client.submit("python", "print(1)")
    assert rec.requests[1].extensions["timeout"]["read"] == pytest.approx(30.0)


# ------------------------------------------------------------------------------------------ results


def test_result_fields_and_compile_stage() -> None:
    rec = Recorder()
    client, _ = make_client(rec)
    result = client.submit("c", files={"main.c": 'int main(){printf("x");}'}, entry="main.c")
    assert isinstance(result, ExecutionResult)
    assert result.ok
    assert result.stdout == "hello from c\n"
    assert result.exit_code == 0 and result.signal is None
    assert result.time_ms == 12 and result.wall_time_ms == 30 and result.memory_kb == 9000
    assert result.compile is not None and result.compile.ok and result.compile.time_ms == 40
    assert result.runtime.language == "c" and result.runtime.version == "12.2.0"
    assert result.execution_id == "ex-1"


@pytest.mark.parametrize(
    ("code", "status"),
    [("while True: pass", "timeout"), ("raise ValueError('boom')", "runtime_error")],
)
def test_verdicts_are_results_not_exceptions(code: str, status: str) -> None:
    client, _ = make_client(Recorder())
    result = client.submit("python", code, limits=Limits(wall_ms=500))
    assert result.status == status
    assert not result.ok


def test_timeout_result_details() -> None:
    client, _ = make_client(Recorder())
    result = client.submit("python", "while True: pass", limits=Limits(wall_ms=500))
    assert (result.timeout_kind, result.signal, result.exit_code, result.wall_time_ms) == (
        "wall",
        9,
        None,
        500,
    )


def test_compile_error_is_a_result() -> None:
    client, _ = make_client(Recorder())
    result = client.submit("c", files={"main.c": 'printf("x")'}, entry="main.c")
    assert result.status == "compile_error"
    assert result.compile is not None and result.compile.stderr == "main.c:1: error"
    assert not result.compile.ok


def test_base64_output_is_decoded() -> None:
    raw = b"\xff\xfeok\n"
    body = result_body(
        output_encoding="base64",
        stdout=base64.b64encode(raw).decode(),
        stderr=base64.b64encode(b"warn\n").decode(),
        stdout_truncated=True,
    )
    rec = Recorder(lambda r: httpx.Response(200, json=body))
    client, _ = make_client(rec)
    result = client.submit("python", "x", output_encoding="base64")
    assert rec.body()["output_encoding"] == "base64"
    assert result.stdout_bytes == raw
    assert result.stdout == raw.decode("utf-8", errors="replace")
    assert result.stderr == "warn\n" and result.stderr_bytes == b"warn\n"
    assert result.stdout_truncated and not result.stderr_truncated


def test_malformed_success_body_is_unexpected_response() -> None:
    client, _ = make_client(Recorder(lambda r: httpx.Response(200, json={"stdout": "x"})))
    with pytest.raises(UnexpectedResponse):
        client.submit("python", "x")
    client, _ = make_client(Recorder(lambda r: httpx.Response(200, text="<html>proxy</html>")))
    with pytest.raises(UnexpectedResponse, match="expected a JSON object"):
        client.submit("python", "x")


def test_failed_body_with_200_still_raises() -> None:
    client, _ = make_client(Recorder(lambda r: failure(200, "FORBIDDEN", "no")))
    with pytest.raises(Forbidden):
        client.submit("python", "x")


# ------------------------------------------------------------------------------------------ errors


@pytest.mark.parametrize(
    ("status", "code", "cls"),
    [
        (400, "INVALID_REQUEST", InvalidRequest),
        (404, "UNKNOWN_LANGUAGE", UnknownLanguage),
        (422, "TOOLCHAIN_MISSING", ToolchainMissing),
        (422, "LIMIT_OUT_OF_RANGE", LimitOutOfRange),
        (413, "PAYLOAD_TOO_LARGE", PayloadTooLarge),
        (401, "UNAUTHENTICATED", Unauthenticated),
        (403, "FORBIDDEN", Forbidden),
        (429, "RATE_LIMITED", RateLimited),
        (429, "QUOTA_EXCEEDED", QuotaExceeded),
        (503, "OVERLOADED", Overloaded),
        (500, "INTERNAL_ERROR", InternalError),
    ],
)
def test_error_codes_map_to_exceptions(status: int, code: str, cls: type[StockadeError]) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, json={"status": "failed", "error": code, "message": "why", "id": "err-7"})

    client, _ = make_client(Recorder(handler), retries=0)
    with pytest.raises(cls) as info:
        client.submit("python", "x")
    err = info.value
    assert type(err) is cls
    assert (err.code, err.message, err.status_code, err.error_id) == (code, "why", status, "err-7")
    assert code in str(err) and "err-7" in str(err)


def test_unknown_error_code_is_base_error() -> None:
    client, _ = make_client(Recorder(lambda r: failure(418, "TEAPOT", "short and stout")))
    with pytest.raises(StockadeError) as info:
        client.submit("python", "x")
    assert type(info.value) is StockadeError and info.value.code == "TEAPOT"


def test_non_api_error_pages() -> None:
    client, _ = make_client(Recorder(lambda r: httpx.Response(404, text="<h1>Not Found</h1>")))
    with pytest.raises(UnexpectedResponse, match="404"):
        client.runtimes()
    client, _ = make_client(Recorder(lambda r: httpx.Response(503, text="bad gateway")), retries=0)
    with pytest.raises(Overloaded):
        client.runtimes()


def test_connection_failed_names_the_url() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("Connection refused", request=request)

    client, _ = make_client(Recorder(refuse))
    with pytest.raises(ConnectionFailed) as info:
        client.submit("python", "x")
    assert "http://stockade.test/v1/execute" in str(info.value)
    assert info.value.url == "http://stockade.test/v1/execute"
    assert info.value.code == "CONNECTION_FAILED" and info.value.status_code is None
    assert client.health() is False


def test_timeouts_become_connection_failed() -> None:
    def slow(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("timed out", request=request)

    client, _ = make_client(Recorder(slow))
    with pytest.raises(ConnectionFailed, match="timed out"):
        client.runtimes()


# ------------------------------------------------------------------------------------------ retries


def test_rate_limited_is_retried_after_retry_after() -> None:
    rec = Recorder(
        sequence(failure(429, "RATE_LIMITED", **{"Retry-After": "2"}), httpx.Response(200, json=result_body()))
    )
    client, sleeps = make_client(rec)
    assert client.submit("python", "print(1)").ok
    assert sleeps == [2.0]
    assert len(rec.requests) == 2
    assert rec.body(0) == rec.body(1)


def test_retries_are_bounded_by_count() -> None:
    rec = Recorder(lambda r: failure(503, "OVERLOADED", **{"Retry-After": "1"}))
    client, sleeps = make_client(rec, retries=2)
    with pytest.raises(Overloaded) as info:
        client.submit("python", "x")
    assert len(rec.requests) == 3
    assert sleeps == [1.0, 1.0]
    assert info.value.retry_after == 1.0


def test_retries_are_bounded_by_budget() -> None:
    rec = Recorder(lambda r: failure(429, "RATE_LIMITED", **{"Retry-After": "20"}))
    client, sleeps = make_client(rec, retries=5, retry_budget_s=30.0)
    with pytest.raises(RateLimited):
        client.submit("python", "x")
    assert sleeps == [20.0]
    assert len(rec.requests) == 2


def test_quota_exceeded_is_not_retried() -> None:
    rec = Recorder(lambda r: failure(429, "QUOTA_EXCEEDED", **{"Retry-After": "1"}))
    client, sleeps = make_client(rec)
    with pytest.raises(QuotaExceeded):
        client.submit("python", "x")
    assert sleeps == [] and len(rec.requests) == 1


def test_retry_without_retry_after_backs_off() -> None:
    rec = Recorder(lambda r: failure(503, "OVERLOADED"))
    client, sleeps = make_client(rec, retries=3)
    with pytest.raises(Overloaded):
        client.runtimes()
    assert sleeps == [0.5, 1.0, 2.0]


def test_retries_disabled() -> None:
    rec = Recorder(lambda r: failure(429, "RATE_LIMITED", **{"Retry-After": "1"}))
    client, sleeps = make_client(rec, retries=0)
    with pytest.raises(RateLimited):
        client.submit("python", "x")
    assert sleeps == [] and len(rec.requests) == 1


def test_retry_after_formats() -> None:
    now = datetime(2024, 1, 1, 12, 0, 0, tzinfo=UTC)
    assert parse_retry_after("3") == 3.0
    assert parse_retry_after("0.5") == 0.5
    assert parse_retry_after(format_datetime(now + timedelta(seconds=7), usegmt=True), now=now) == 7.0
    assert parse_retry_after(format_datetime(now - timedelta(seconds=7), usegmt=True), now=now) == 0.0
    assert parse_retry_after("soon") is None
    assert parse_retry_after("nan") is None
    assert parse_retry_after(None) is None


# ------------------------------------------------------------------------------------------ runtimes / health


def test_runtimes_and_probes() -> None:
    client, _ = make_client(Recorder())
    runtimes = client.runtimes()
    assert [r.language for r in runtimes] == ["python", "rust"]
    python, rust = runtimes
    assert python.aliases == ("py", "python3") and python.version == "3.11.2" and python.available
    assert python.hello == 'print("Hello, World!")'
    assert not rust.available and rust.compiled and rust.version is None
    assert client.health() is True
    assert client.ready() is True


def test_probes_report_false_on_bad_answers() -> None:
    rec = Recorder(lambda r: httpx.Response(503, json={"status": "starting"}))
    client, sleeps = make_client(rec)
    assert client.health() is False
    assert client.ready() is False
    assert sleeps == [] and len(rec.requests) == 2


# ------------------------------------------------------------------------------------------ async


async def test_async_client_submit_retry_and_errors() -> None:
    rec = Recorder(
        sequence(failure(503, "OVERLOADED", **{"Retry-After": "1.5"}), httpx.Response(200, json=result_body()))
    )
    sleeps: list[float] = []

    async def fake_sleep(seconds: float) -> None:
        sleeps.append(seconds)

    async with AsyncClient(
        "http://stockade.test", api_key="k", transport=httpx.MockTransport(rec), sleep=fake_sleep
    ) as client:
        result = await client.submit("python", "print(1)", files=None, stdin="")
        assert result.ok and sleeps == [1.5]
        assert rec.requests[0].headers["authorization"] == "Bearer k"

    fake = Recorder()
    async with AsyncClient("http://stockade.test", transport=httpx.MockTransport(fake)) as client:
        assert [r.language for r in await client.runtimes()] == ["python", "rust"]
        assert await client.health() and await client.ready()
        timed_out = await client.submit("python", "while True: pass")
        assert timed_out.status == "timeout"
        with pytest.raises(UnknownLanguage):
            await client.submit("cobol", "x")


async def test_async_connection_failed() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    async with AsyncClient("http://stockade.test", transport=httpx.MockTransport(refuse)) as client:
        with pytest.raises(ConnectionFailed, match=r"stockade\.test"):
            await client.runtimes()
        assert await client.health() is False


# ------------------------------------------------------------------------------------------ real HTTP


class _Handler(BaseHTTPRequestHandler):
    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        request = httpx.Request(
            self.command,
            f"http://fake{self.path}",
            headers=dict(self.headers),
            content=self.rfile.read(length),
        )
        response = fake_api(request)
        self.send_response(response.status_code)
        for key, value in response.headers.items():
            if key.lower() not in ("content-length", "connection"):
                self.send_header(key, value)
        self.send_header("Content-Length", str(len(response.content)))
        self.end_headers()
        self.wfile.write(response.content)

    do_GET = _serve
    do_POST = _serve

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def live_url() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_over_real_http(live_url: str) -> None:
    with Client(live_url) as client:
        assert client.health()
        assert client.submit("python", "print(input())", stdin="abc").stdout == "ABC"


def test_unreachable_server_is_connection_failed() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    with Client(url, timeout=5) as client:
        with pytest.raises(ConnectionFailed, match=re.escape(f"{url}/v1/execute")):
            client.submit("python", "x")
        assert client.health() is False


def _doc_examples() -> list[str]:
    """docs/sdk.md's examples this fake HTTP server can answer; those that stream need a WebSocket, and
    run against a real server in test_sdk_live.py (which runs every example)."""
    found = re.findall(r"^```python\n(.*?)^```", DOCS.read_text(encoding="utf-8"), flags=re.S | re.M)
    return [e for e in found if ".stream(" not in e]


def test_docs_have_examples() -> None:
    assert len(_doc_examples()) >= 4


@pytest.mark.parametrize("index", range(len(_doc_examples())))
def test_docs_examples_run(index: int, live_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STOCKADE_URL", live_url)
    source = _doc_examples()[index]
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(source, f"{DOCS}:example{index}", "exec"), {"__name__": "__main__"})


def test_the_deprecated_import_path_warns_and_gives_the_same_sdk() -> None:
    sys.modules.pop("stockade.clients", None)  # imported already, it would not warn again
    with pytest.warns(DeprecationWarning, match=r"import from stockade\.client"):
        old = importlib.import_module("stockade.clients")
    assert old.Client is Client and old.AsyncClient is AsyncClient and old.StockadeError is StockadeError
