"""The Python SDK against a real `stockade serve`: every verdict as a result, every error as its exception,
retries that honour the server's Retry-After, AsyncClient parity, and the docs/sdk.md examples run as-is."""

from __future__ import annotations

import contextlib
import os
import platform
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from stockade.client import (
    AsyncClient,
    Client,
    ConnectionFailed,
    ExecutionResult,
    Forbidden,
    InvalidRequest,
    LimitOutOfRange,
    Limits,
    PayloadTooLarge,
    QuotaExceeded,
    RateLimited,
    ToolchainMissing,
    Unauthenticated,
    UnknownLanguage,
)
from tests.service.live import LiveServer, free_port

if TYPE_CHECKING:
    from conftest import KeyedServer

DOCS = Path(__file__).resolve().parents[2] / "docs" / "sdk.md"
KILL_SYSCALL = {"x86_64": 169, "aarch64": 142}.get(platform.machine(), 169)  # reboot(2): killed by the filter


@pytest.fixture(autouse=True)
def _no_env_key(monkeypatch: pytest.MonkeyPatch) -> None:
    # The SDK falls back to $STOCKADE_API_KEY; the tests say explicitly which key they use.
    monkeypatch.delenv("STOCKADE_API_KEY", raising=False)
    monkeypatch.delenv("STOCKADE_URL", raising=False)


@pytest.fixture
def client(open_server: LiveServer) -> Iterator[Client]:
    with Client(open_server.url, retries=0, timeout=120) as c:
        yield c


class RecordingTransport(httpx.HTTPTransport):
    """The real transport, keeping every response so a test can read the headers the server sent."""

    def __init__(self) -> None:
        super().__init__()
        self.responses: list[httpx.Response] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = super().handle_request(request)
        self.responses.append(response)
        return response


class AsyncRecordingTransport(httpx.AsyncHTTPTransport):
    def __init__(self) -> None:
        super().__init__()
        self.responses: list[httpx.Response] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await super().handle_async_request(request)
        self.responses.append(response)
        return response


def retry_after_headers(transport: RecordingTransport | AsyncRecordingTransport) -> list[float]:
    return [float(r.headers["retry-after"]) for r in transport.responses]


def use_up(url: str, key: str) -> None:
    """Spend a tenant's only request/execution, whether or not an earlier test already did."""
    with Client(url, api_key=key, retries=0) as c, contextlib.suppress(RateLimited, QuotaExceeded):
        c.submit("python", "print(1)")


# --------------------------------------------------------------------------------------------
# Verdicts are results


VERDICTS: dict[str, tuple[str, str, dict[str, Any]]] = {
    "ok": ("python", "print(21 * 2)", {}),
    "compile_error": ("c", "int main( { return 0; }\n", {}),
    "runtime_error": ("python", "import sys\nprint('bye')\nsys.exit(3)\n", {}),
    "timeout_cpu": ("python", "while True: pass\n", {"limits": Limits(cpu_ms=300)}),
    "timeout_wall": ("python", "import time\ntime.sleep(30)\n", {"limits": Limits(wall_ms=500)}),
    "memory_limit": ("python", "x = b'x' * (200 << 20)\nprint(len(x))\n", {"limits": {"memory_mb": 64}}),
    "output_limit": ("python", "print('y' * 100_000)\n", {"limits": {"output_kb": 1}}),
    "file_size_limit": (
        "python",
        "open('/tmp/big', 'wb').write(b'z' * (1 << 20))\n",
        {"limits": {"file_size_kb": 64}},
    ),
    "syscall_blocked": (
        "python",
        f"import ctypes\nctypes.CDLL(None).syscall({KILL_SYSCALL}, 0, 0, 0, 0)\nprint('still alive')\n",
        {},
    ),
    "compile_limit": ("c", "int main(void) { return 0; }\n", {"compile_limits": {"cpu_ms": 1}}),
}


@pytest.mark.parametrize("case", list(VERDICTS))
def test_verdict_is_a_result(client: Client, case: str) -> None:
    language, code, kwargs = VERDICTS[case]
    result = client.submit(language, code, **kwargs)
    assert isinstance(result, ExecutionResult)
    expected = "timeout" if case.startswith("timeout") else case
    assert result.status == expected, result.raw
    assert result.execution_id
    assert result.runtime.language == language
    assert result.ok is (case == "ok")
    if case == "ok":
        assert result.stdout == "42\n"
        assert result.exit_code == 0
        assert result.runtime.version
    elif case == "runtime_error":
        assert result.exit_code == 3
        assert result.stdout == "bye\n"
    elif case.startswith("timeout"):
        assert result.timeout_kind == case.removeprefix("timeout_")
    elif case == "output_limit":
        assert result.stdout_truncated
        assert 0 < len(result.stdout_bytes) <= 1024
    elif case == "syscall_blocked":
        assert "still alive" not in result.stdout
    elif case in ("compile_error", "compile_limit"):
        assert result.compile is not None
        assert not result.compile.ok
        if case == "compile_error":
            assert "error" in result.compile.stderr


def test_stdin_args_and_files(client: Client) -> None:
    code = "import sys\nprint(sys.argv[1:], sys.stdin.read().upper(), open('data.txt').read())\n"
    result = client.submit(
        "python",
        files={"main.py": code, "data.txt": b"bytes"},
        entry="main.py",
        stdin="abc",
        args=["one", "two words"],
    )
    assert result.status == "ok", result.raw
    assert result.stdout == "['one', 'two words'] ABC bytes\n"


def test_base64_output_keeps_exact_bytes(client: Client) -> None:
    result = client.submit(
        "python", "import sys\nsys.stdout.buffer.write(bytes([0, 255, 10]))\n", output_encoding="base64"
    )
    assert result.status == "ok"
    assert result.stdout_bytes == b"\x00\xff\n"


# --------------------------------------------------------------------------------------------
# Errors are exceptions


def test_unknown_language(client: Client) -> None:
    with pytest.raises(UnknownLanguage) as info:
        client.submit("klingon", "Qapla'")
    assert info.value.code == "UNKNOWN_LANGUAGE"
    assert info.value.status_code == 404


def test_toolchain_missing(client: Client) -> None:
    with pytest.raises(ToolchainMissing) as info:
        client.submit("python", "print(1)", version="0.0.1")
    assert info.value.status_code == 422
    assert "0.0.1" in info.value.message


def test_limit_out_of_range(client: Client) -> None:
    with pytest.raises(LimitOutOfRange) as info:
        client.submit("python", "print(1)", limits=Limits(cpu_ms=10**9))
    assert info.value.status_code == 422
    assert "cpu_ms" in info.value.message


def test_invalid_request(client: Client) -> None:
    with pytest.raises(InvalidRequest) as info:
        client.submit("python", "print(1)", limits={"bogus": 1})
    assert info.value.status_code == 400
    assert "bogus" in info.value.message


def test_payload_too_large(client: Client) -> None:
    with pytest.raises(PayloadTooLarge) as info:
        client.submit("python", "#" * (13 << 20))
    assert info.value.status_code == 413


def test_connection_failed() -> None:
    url = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    with Client(url, retries=0, timeout=5) as c:
        with pytest.raises(ConnectionFailed) as info:
            c.submit("python", "print(1)")
        assert info.value.url.startswith(url)
        assert not c.health()
        assert not c.ready()


def test_unauthenticated_without_key(keyed_server: KeyedServer) -> None:
    with Client(keyed_server.url, retries=0) as c, pytest.raises(Unauthenticated) as info:
        c.submit("python", "print(1)")
    assert info.value.status_code == 401


def test_unauthenticated_with_unknown_key(keyed_server: KeyedServer) -> None:
    with Client(keyed_server.url, api_key="sk-not-a-key", retries=0) as c, pytest.raises(Unauthenticated):
        c.submit("python", "print(1)")


def test_key_from_environment(keyed_server: KeyedServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STOCKADE_API_KEY", keyed_server.key)
    with Client(keyed_server.url, retries=0) as c:
        assert c.submit("python", "print('keyed')").stdout == "keyed\n"


def test_forbidden_language(keyed_server: KeyedServer) -> None:
    with Client(keyed_server.url, api_key=keyed_server.python_only_key, retries=0) as c:
        assert c.submit("python", "print(1)").ok
        with pytest.raises(Forbidden) as info:
            c.submit("c", "int main(void) { return 0; }\n")
    assert info.value.status_code == 403


def test_rate_limited(keyed_server: KeyedServer) -> None:
    use_up(keyed_server.url, keyed_server.limited_key)
    transport = RecordingTransport()
    limited = Client(keyed_server.url, api_key=keyed_server.limited_key, retries=0, transport=transport)
    with limited as c, pytest.raises(RateLimited) as info:
        c.submit("python", "print(1)")
    assert info.value.status_code == 429
    assert len(transport.responses) == 1
    assert info.value.retry_after == retry_after_headers(transport)[0]
    assert 0 < info.value.retry_after <= 60


def test_quota_exceeded_is_not_retried(keyed_server: KeyedServer) -> None:
    use_up(keyed_server.url, keyed_server.quota_key)
    sleeps: list[float] = []
    frugal = Client(keyed_server.url, api_key=keyed_server.quota_key, retries=3, sleep=sleeps.append)
    with frugal as c, pytest.raises(QuotaExceeded) as info:
        c.submit("python", "print(1)")
    assert info.value.status_code == 429
    assert info.value.retry_after and info.value.retry_after > 0
    assert sleeps == []


# --------------------------------------------------------------------------------------------
# Retries honour Retry-After


def test_retries_sleep_the_servers_retry_after(keyed_server: KeyedServer) -> None:
    use_up(keyed_server.url, keyed_server.limited_key)
    sleeps: list[float] = []
    transport = RecordingTransport()
    with (
        Client(
            keyed_server.url,
            api_key=keyed_server.limited_key,
            retries=2,
            retry_budget_s=600,
            transport=transport,
            sleep=sleeps.append,
        ) as c,
        pytest.raises(RateLimited) as info,
    ):
        c.submit("python", "print(1)")
    headers = retry_after_headers(transport)
    assert len(headers) == 3  # the first try and two retries, all refused: the window is a minute
    assert sleeps == headers[:2]  # each wait is exactly what the server asked for
    assert all(0 < s <= 60 for s in sleeps)
    assert info.value.retry_after == headers[2]


def test_retry_beyond_the_budget_raises_at_once(keyed_server: KeyedServer) -> None:
    use_up(keyed_server.url, keyed_server.limited_key)
    sleeps: list[float] = []
    transport = RecordingTransport()
    with (
        Client(
            keyed_server.url,
            api_key=keyed_server.limited_key,
            retries=3,
            retry_budget_s=0.5,
            transport=transport,
            sleep=sleeps.append,
        ) as c,
        pytest.raises(RateLimited) as info,
    ):
        c.submit("python", "print(1)")
    assert sleeps == []
    assert len(transport.responses) == 1
    assert info.value.retry_after == retry_after_headers(transport)[0]


# --------------------------------------------------------------------------------------------
# Runtimes and probes


def test_runtimes_and_health(client: Client) -> None:
    assert client.health()
    assert client.ready()
    runtimes = {r.language: r for r in client.runtimes()}
    assert runtimes["python"].available
    assert runtimes["python"].version and runtimes["python"].version.startswith("3.")
    assert not runtimes["python"].compiled
    assert runtimes["c"].compiled
    assert "py" in runtimes["python"].extensions
    assert runtimes["python"].hello


# --------------------------------------------------------------------------------------------
# AsyncClient parity


async def test_async_verdicts(open_server: LiveServer) -> None:
    async with AsyncClient(open_server.url, retries=0, timeout=120) as c:
        ok = await c.submit("python", "print(21 * 2)")
        assert (ok.status, ok.stdout) == ("ok", "42\n")
        failed = await c.submit("python", "import sys; sys.exit(3)")
        assert (failed.status, failed.exit_code) == ("runtime_error", 3)
        spin = await c.submit("python", "while True: pass", limits=Limits(cpu_ms=300))
        assert (spin.status, spin.timeout_kind) == ("timeout", "cpu")
        broken = await c.submit("c", "int main( {")
        assert broken.status == "compile_error"
        assert broken.compile is not None and "error" in broken.compile.stderr


async def test_async_errors(open_server: LiveServer) -> None:
    async with AsyncClient(open_server.url, retries=0) as c:
        with pytest.raises(UnknownLanguage):
            await c.submit("klingon", "Qapla'")
        with pytest.raises(ToolchainMissing):
            await c.submit("python", "print(1)", version="0.0.1")
        with pytest.raises(LimitOutOfRange):
            await c.submit("python", "print(1)", limits={"wall_ms": 10**9})
        with pytest.raises(InvalidRequest):
            await c.submit("python", "print(1)", limits={"bogus": 1})
    async with AsyncClient(f"http://127.0.0.1:{free_port()}", retries=0, timeout=5) as dead:
        with pytest.raises(ConnectionFailed):
            await dead.submit("python", "print(1)")
        assert not await dead.health()


async def test_async_runtimes_and_health(open_server: LiveServer) -> None:
    async with AsyncClient(open_server.url) as c:
        assert await c.health()
        assert await c.ready()
        assert "python" in {r.language for r in await c.runtimes()}


async def test_async_unauthenticated(keyed_server: KeyedServer) -> None:
    async with AsyncClient(keyed_server.url, retries=0) as c:
        with pytest.raises(Unauthenticated):
            await c.submit("python", "print(1)")


async def test_async_retries_sleep_the_servers_retry_after(keyed_server: KeyedServer) -> None:
    use_up(keyed_server.url, keyed_server.limited_key)
    sleeps: list[float] = []

    async def record(seconds: float) -> None:
        sleeps.append(seconds)

    transport = AsyncRecordingTransport()
    async with AsyncClient(
        keyed_server.url,
        api_key=keyed_server.limited_key,
        retries=1,
        retry_budget_s=600,
        transport=transport,
        sleep=record,
    ) as c:
        with pytest.raises(RateLimited) as info:
            await c.submit("python", "print(1)")
    headers = retry_after_headers(transport)
    assert len(headers) == 2
    assert sleeps == headers[:1]
    assert info.value.retry_after == headers[1]


# --------------------------------------------------------------------------------------------
# docs/sdk.md examples, run as written


def doc_examples() -> list[str]:
    return re.findall(r"^```python\n(.*?)^```", DOCS.read_text(), flags=re.DOTALL | re.MULTILINE)


def test_docs_have_examples() -> None:
    assert len(doc_examples()) >= 5


def run_example(code: str, tmp_path: Path, url: str, api_key: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("STOCKADE_")} | {"STOCKADE_URL": url}
    if api_key is not None:
        env["STOCKADE_API_KEY"] = api_key
    script = tmp_path / "example.py"
    script.write_text(code)
    proc = subprocess.run([sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, f"example failed:\n{code}\n---\n{proc.stdout}\n{proc.stderr}"
    assert "Traceback" not in proc.stderr
    # No example may quietly take an error path against a working server.
    for marker in ("UNAUTHENTICATED", "CONNECTION_FAILED", "service unreachable", "failed:"):
        assert marker not in proc.stdout, proc.stdout
    return proc


@pytest.mark.parametrize("index", range(len(doc_examples())))
def test_doc_example_runs(index: int, open_server: LiveServer, tmp_path: Path) -> None:
    proc = run_example(doc_examples()[index], tmp_path, open_server.url)
    if index == 0:
        assert proc.stdout.splitlines()[:2] == ["ok", "Hello, World!"], proc.stdout


def test_doc_example_takes_the_key_from_the_environment(keyed_server: KeyedServer, tmp_path: Path) -> None:
    proc = run_example(doc_examples()[0], tmp_path, keyed_server.url, api_key=keyed_server.key)
    assert proc.stdout.splitlines()[:2] == ["ok", "Hello, World!"], proc.stdout
