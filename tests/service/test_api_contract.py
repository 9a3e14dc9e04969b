"""The HTTP contract of docs/api.md, against a real `stockade serve` (and one in-process app for
INTERNAL_ERROR, which cannot be provoked from outside)."""

from __future__ import annotations

import asyncio
import base64
import concurrent.futures
import contextlib
import json
import logging
import re
import signal
import socket
import sqlite3
import subprocess
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from stockade.runtimes.registry import Registry
from stockade.sandbox import SandboxConfig
from stockade.service.app import Service, create_app
from stockade.service.config import ServiceConfig
from stockade.service.store import Store
from tests.service.live import LiveServer, live_server, metric

JSON = {"Content-Type": "application/json"}
HELLO = {"language": "python", "code": "print('hello')"}
MAX_BODY = 12 * 1024 * 1024


# -- servers ----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def open_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """No API keys, loopback bind: open mode (tenant "local")."""
    with live_server("api-open", uid_base=66000, data_dir=tmp_path_factory.mktemp("api-open") / "data") as s:
        yield s


@pytest.fixture(scope="module")
def client(open_server: LiveServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=open_server.url, timeout=60) as c:
        yield c


def add_tenant(data_dir: Path, tenant: str, **opts: Any) -> tuple[str, str]:
    """Create a tenant and a key directly in the server's store (it reads the store on every request)."""
    with Store(data_dir / "stockade.db") as st:
        st.create_tenant(tenant, tenant, **opts)
        return st.create_key(tenant, "test")


@pytest.fixture(scope="module")
def keyed_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    data_dir = tmp_path_factory.mktemp("api-keys") / "data"
    data_dir.mkdir(mode=0o700)
    add_tenant(data_dir, "admin", rate_per_minute=1000)
    add_tenant(data_dir, "acme", rate_per_minute=1000)
    with live_server("api-keys", uid_base=66100, data_dir=data_dir) as s:
        yield s


def key_of(server: LiveServer, tenant: str, **opts: Any) -> str:
    return add_tenant(server.data_dir, f"{tenant}-{uuid.uuid4().hex[:6]}", **opts)[1]


def existing_key(server: LiveServer, tenant: str) -> str:
    with Store(server.data_dir / "stockade.db") as st:
        return st.create_key(tenant, "another")[1]


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def run(c: httpx.Client, body: dict[str, Any], key: str | None = None, path: str = "/v1/execute") -> httpx.Response:
    return c.post(path, json=body, headers=bearer(key) if key else None)


def assert_error(r: httpx.Response, code: str, status: int) -> dict[str, Any]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/json")
    body = r.json()
    assert body["status"] == "failed" and body["error"] == code, body
    assert isinstance(body["message"], str) and body["message"]
    return body


# -- the seed example and the result shape ----------------------------------------------------------


def test_seed_example_verbatim(client: httpx.Client) -> None:
    r = client.post("/execute", content=b'{"language":"python","code":"print(21*2)"}', headers=JSON)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["status"] == "ok"
    assert body["stdout"] == "42\n"
    assert body["stderr"] == ""
    for name in ("time_ms", "memory_kb", "wall_time_ms"):
        assert type(body[name]) is int and body[name] >= 0, name
    assert body["memory_kb"] > 0
    assert re.fullmatch(r"[0-9a-f]{32}", body["execution_id"])
    assert body["runtime"]["language"] == "python"
    assert re.fullmatch(r"3\.\d+\.\d+", body["runtime"]["version"])
    assert body["compile"] is None
    assert body["exit_code"] == 0 and body["signal"] is None and body["timeout_kind"] is None
    assert body["output_encoding"] == "utf8" and body["output_lossy"] is False
    assert body["stdout_truncated"] is False and body["stderr_truncated"] is False


def test_v1_path_same_as_alias(client: httpx.Client) -> None:
    a = run(client, {"language": "py", "code": "print(21*2)"}).json()
    b = run(client, {"language": "py", "code": "print(21*2)"}, path="/execute").json()
    assert a["stdout"] == b["stdout"] == "42\n"
    assert a["execution_id"] != b["execution_id"]
    assert set(a) == set(b)


# -- every verdict ---------------------------------------------------------------------------------

TEMPLATE_BOMB = """
template <int N> struct F { static const long v = F<N - 1>::v + F<N - 2>::v; };
template <> struct F<1> { static const long v = 1; };
template <> struct F<0> { static const long v = 0; };
template <int D, int W> struct Bomb {
    typedef Bomb<D - 1, W * 2 + 1> A; typedef Bomb<D - 1, W * 2 + 2> B;
    static const long v = A::v + B::v + F<(W % 40) + 2>::v;
};
template <int W> struct Bomb<0, W> { static const long v = W; };
#include <bits/stdc++.h>
int main() { std::cout << Bomb<22, 0>::v << std::endl; }
"""

VERDICTS: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
    "ok": ({"language": "python", "code": "print(input()[::-1])", "stdin": "abc\n"}, {"stdout": "cba\n"}),
    "compile_error": (
        {"language": "c", "code": "int main(void) { return undeclared; }\n"},
        {"compile.status": "runtime_error", "exit_code": 1},
    ),
    "compile_limit": (
        {"language": "cpp", "code": TEMPLATE_BOMB, "compile_limits": {"cpu_ms": 300}},
        {"compile.status": "timeout"},
    ),
    "runtime_error": ({"language": "python", "code": "import sys\nsys.exit(3)"}, {"exit_code": 3, "signal": None}),
    "timeout_cpu": (
        {"language": "python", "code": "while True:\n    pass", "limits": {"cpu_ms": 300}},
        {"status": "timeout", "timeout_kind": "cpu", "signal": 9},
    ),
    "timeout_wall": (
        {"language": "python", "code": "import time\ntime.sleep(30)", "limits": {"wall_ms": 500}},
        {"status": "timeout", "timeout_kind": "wall"},
    ),
    "memory_limit": (
        {"language": "python", "code": "x = bytearray(300 * 1024 * 1024)\nprint(len(x))", "limits": {"memory_mb": 64}},
        {"stdout": ""},
    ),
    "output_limit": (
        {
            "language": "python",
            "code": "import sys\nwhile 1:\n    sys.stdout.write('y' * 4096)",
            "limits": {"output_kb": 4},
        },
        {"stdout_truncated": True},
    ),
    "file_size_limit": (
        {"language": "python", "code": "open('big', 'wb').write(b'z' * (2 << 20))", "limits": {"file_size_kb": 64}},
        {},
    ),
    "syscall_blocked": (
        # kexec_load (x86-64 syscall 246) through the C library's syscall(2)
        {"language": "python", "code": "import ctypes\nprint(ctypes.CDLL(None).syscall(246, 0, 0, 0, 0))"},
        {"signal": 31, "signal_name": "SIGSYS"},
    ),
}


@pytest.mark.parametrize("case", list(VERDICTS))
def test_every_verdict(client: httpx.Client, case: str) -> None:
    body, expect = VERDICTS[case]
    r = run(client, body)
    assert r.status_code == 200, r.text
    out = r.json()
    want = expect.get("status", case)
    assert out["status"] == want, out
    for key, value in expect.items():
        if key == "compile.status":
            assert out["compile"] is not None and out["compile"]["status"] == value, out["compile"]
        else:
            assert out[key] == value, (key, out)
    if case == "output_limit":
        assert len(out["stdout"]) == 4096 and set(out["stdout"]) == {"y"}
    if case.startswith("compile"):
        assert out["compile"] is not None
        assert set(out["compile"]) >= {"status", "stdout", "stderr", "exit_code", "signal", "time_ms", "memory_kb"}
    if case == "compile_error":
        assert "undeclared" in out["compile"]["stderr"]
    if out["status"] != "ok":
        assert out["timeout_kind"] == (expect.get("timeout_kind"))
    # A signal is explained where it is the program's own end, not the sandbox's kill for a limit.
    explained = out["signal"] is not None and out["status"] in ("runtime_error", "syscall_blocked")
    assert (out["explanation"] is not None) is explained, out
    assert out["signal_name"] == (None if out["signal"] is None else signal.Signals(out["signal"]).name)


def test_a_crash_names_its_signal_and_says_what_it_means(client: httpx.Client) -> None:
    segv = run(client, {"language": "c", "code": "int main(void) { volatile int *p = 0; *p = 1; return 0; }"}).json()
    assert (segv["status"], segv["exit_code"], segv["signal"], segv["signal_name"]) == (
        "runtime_error", None, 11, "SIGSEGV"
    ), segv  # fmt: skip
    assert segv["explanation"].startswith("SIGSEGV (Segmentation fault): ") and "pointer" in segv["explanation"]
    # 32-bit x86 is not supported: its first `int 0x80` is killed by the box's seccomp filter, and says so.
    asm = "section .text\nglobal _start\n_start:\n    mov eax, 1\n    xor ebx, ebx\n    int 0x80\n"
    i386 = run(client, {"language": "nasm", "code": asm}).json()
    assert (i386["status"], i386["signal_name"]) == ("syscall_blocked", "SIGSYS"), i386
    assert "int 0x80" in i386["explanation"] and "32-bit x86 is not supported" in i386["explanation"]


def test_compiled_language_ok_has_compile_record(client: httpx.Client) -> None:
    r = run(client, {"language": "c", "code": '#include <stdio.h>\nint main(void) { puts("hi"); return 0; }\n'})
    out = r.json()
    assert out["status"] == "ok" and out["stdout"] == "hi\n"
    assert out["compile"]["status"] == "ok" and out["compile"]["exit_code"] == 0
    assert out["wall_time_ms"] >= out["compile"]["wall_time_ms"]


# -- every error code -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "content",
    [
        b'{"language": "python", "code": ',  # bad JSON
        b"[]",
        b'{"language": "python"}',  # neither code nor files
        b'{"language": "python", "code": "1", "files": [{"name": "a.py", "content": "1"}]}',  # both
        b'{"language": "python", "code": "1", "stdin": "!!!", "stdin_encoding": "base64"}',
        b'{"language": "python", "files": [{"name": "a.py", "content": "%%%", "encoding": "base64"}]}',
        b'{"language": "python", "files": [{"name": "../x", "content": "1"}]}',
        b'{"language": "python", "files": [{"name": "/etc/x.py", "content": "1"}]}',
        b'{"language": "python", "files": [{"name": "a.py", "content": "1"}, {"name": "a.py", "content": "2"}]}',
        b'{"language": "python", "files": [{"name": "a.py", "content": "1"}], "entry": "b.py"}',
        b'{"language": "python", "code": "1", "unknown_field": 1}',
        b'{"language": "python", "code": "1", "output_encoding": "latin1"}',
        b'{"language": "python", "code": "1", "args": ["a\\u0000b"]}',
        b'{"language": "", "code": "1"}',
    ],
)
def test_invalid_request(client: httpx.Client, content: bytes) -> None:
    assert_error(client.post("/v1/execute", content=content, headers=JSON), "INVALID_REQUEST", 400)


def test_invalid_request_lone_surrogate_in_args(client: httpx.Client) -> None:
    # JSON may carry an unpaired surrogate escape; it is not encodable text and must be refused, not crash.
    content = b'{"language": "python", "code": "import sys; print(sys.argv)", "args": ["\\ud800"]}'
    assert_error(client.post("/v1/execute", content=content, headers=JSON), "INVALID_REQUEST", 400)


def test_missing_content_type_is_invalid_request(client: httpx.Client) -> None:
    body = assert_error(client.post("/v1/execute", content=json.dumps(HELLO).encode()), "INVALID_REQUEST", 400)
    assert "Content-Type" in body["message"]


def test_compile_options_the_language_allows(client: httpx.Client) -> None:
    code = '#include <stdio.h>\nint main(void) { printf("%d\\n", ANSWER); }\n'
    ok = run(client, {"language": "c", "code": code, "compile_options": ["-DANSWER=7", "-O1"]}).json()
    assert ok["status"] == "ok" and ok["stdout"] == "7\n"
    refused = run(client, {"language": "c", "code": code, "compile_options": ["-B/tmp"]})
    body = assert_error(refused, "INVALID_REQUEST", 400)
    assert "'-B/tmp' is not among the allowed compiler options" in body["message"]


def test_unknown_language(client: httpx.Client) -> None:
    assert_error(run(client, {"language": "cobol-2077", "code": "1"}), "UNKNOWN_LANGUAGE", 404)


def test_a_language_stockade_lacks_is_listed_and_refused_with_why(client: httpx.Client) -> None:
    missing = {m["language"]: m for m in client.get("/v1/runtimes").json()["missing"]}
    assert missing["julia"]["name"] == "Julia" and "bookworm" in missing["julia"]["reason"]
    body = assert_error(run(client, {"language": "julia", "code": "println(1)"}), "UNKNOWN_LANGUAGE", 404)
    assert missing["julia"]["reason"] in body["message"]


def test_unavailable_version_lists_the_available_ones(client: httpx.Client) -> None:
    body = assert_error(run(client, {**HELLO, "version": "0.0.1"}), "VERSION_UNAVAILABLE", 422)
    listed = [v["version"] for v in runtime_of(client, "python")["versions"] if v["available"]]
    assert "'0.0.1'" in body["message"] and ", ".join(listed) in body["message"]
    # A prefix of the installed version is accepted.
    version = run(client, HELLO).json()["runtime"]["version"]
    assert run(client, {**HELLO, "version": version.rsplit(".", 1)[0]}).json()["status"] == "ok"


def runtime_of(client: httpx.Client, language: str) -> dict[str, Any]:
    (found,) = [rt for rt in client.get("/v1/runtimes").json()["runtimes"] if rt["language"] == language]
    return found


def test_version_picks_the_toolchain_and_the_result_names_it(client: httpx.Client) -> None:
    c = runtime_of(client, "c")
    available = [v["version"] for v in c["versions"] if v["available"]]
    assert len(available) >= 2 and c["version"] == available[0], c  # GCC 11 and 12; the newest by default
    code = '#include <stdio.h>\nint main(void) { printf("%d\\n", __GNUC__); return 0; }\n'
    for version in available:
        out = run(client, {"language": "c", "version": version, "code": code}).json()
        assert (out["status"], out["runtime"]) == ("ok", {"language": "c", "version": version}), out
        assert out["stdout"] == version.split(".")[0] + "\n"
    ranged = run(client, {"language": "c", "version": f"<{available[0]}", "code": code}).json()
    assert ranged["runtime"]["version"] == available[1]


@pytest.mark.parametrize(
    "extra",
    [
        {"limits": {"cpu_ms": 10**9}},
        {"limits": {"cpu_ms": 0}},
        {"limits": {"memory_mb": 1}},
        {"limits": {"output_kb": 65_537}},
        {"compile_limits": {"wall_ms": 240_001}},
    ],
)
def test_limit_out_of_range(client: httpx.Client, extra: dict[str, Any]) -> None:
    assert_error(run(client, {**HELLO, **extra}), "LIMIT_OUT_OF_RANGE", 422)


def _raw_response(port: int, head: bytes) -> bytes:
    """Send only a request head and read the response head and start of body."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
        s.sendall(head)
        data = b""
        while b"\r\n\r\n" not in data or len(data) < data.index(b"\r\n\r\n") + 20:
            part = s.recv(65536)
            if not part:
                break
            data += part
        return data


def test_payload_too_large_by_content_length(open_server: LiveServer) -> None:
    # Refused from the header alone: no body is sent at all.
    head = (
        b"POST /v1/execute HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
        + f"Content-Length: {MAX_BODY + 1}\r\n\r\n".encode()
    )
    data = _raw_response(open_server.port, head)
    assert data.startswith(b"HTTP/1.1 413"), data[:200]
    assert b'"PAYLOAD_TOO_LARGE"' in data


def test_payload_too_large_full_body(client: httpx.Client) -> None:
    content = json.dumps({"language": "python", "code": "#" * (MAX_BODY + 10)}).encode()
    assert_error(client.post("/v1/execute", content=content, headers=JSON), "PAYLOAD_TOO_LARGE", 413)


def test_payload_too_large_chunked(client: httpx.Client) -> None:
    content = json.dumps({"language": "python", "code": "#" * (MAX_BODY + 10)}).encode()

    def chunks() -> Iterator[bytes]:  # no Content-Length: Transfer-Encoding: chunked
        for i in range(0, len(content), 1 << 16):
            yield content[i : i + (1 << 16)]

    r = client.post("/v1/execute", content=chunks(), headers=JSON)
    assert "content-length" not in r.request.headers
    assert_error(r, "PAYLOAD_TOO_LARGE", 413)


def test_under_the_cap_is_not_too_large(client: httpx.Client) -> None:
    # 5 MB of code: within the body cap, over the engine's 4 MiB source cap -> a typed refusal, not a crash
    r = run(client, {"language": "python", "code": "#" * (5 * 1024 * 1024)})
    assert_error(r, "PAYLOAD_TOO_LARGE", 413)


def test_unknown_route_and_method(client: httpx.Client) -> None:
    assert_error(client.get("/v1/nope"), "NOT_FOUND", 404)
    assert_error(client.post("/v1/nope", json=HELLO), "NOT_FOUND", 404)  # nothing there, whatever the method
    assert_error(client.delete("/v1/execute"), "METHOD_NOT_ALLOWED", 405)
    assert_error(client.put("/v1/runtimes", json={}), "METHOD_NOT_ALLOWED", 405)


def test_get_on_execute_is_method_not_allowed(client: httpx.Client) -> None:
    # The route exists for POST: a GET is a wrong method (405), not a missing page of the playground (404).
    assert_error(client.get("/v1/execute"), "METHOD_NOT_ALLOWED", 405)


# -- output encodings, stdin, files ---------------------------------------------------------------


def test_invalid_utf8_output_is_lossy(client: httpx.Client) -> None:
    code = "import sys\nsys.stdout.buffer.write(b'ok\\xff\\xfe!')\nsys.stderr.buffer.write(b'e\\xc3')"
    out = run(client, {"language": "python", "code": code}).json()
    assert out["status"] == "ok"
    assert out["output_encoding"] == "utf8" and out["output_lossy"] is True
    assert out["stdout"] == "ok\ufffd\ufffd!"
    assert out["stderr"].startswith("e\ufffd")
    clean = run(client, {"language": "python", "code": "print('\\u00e9t\\u00e9')"}).json()
    assert clean["stdout"] == "\u00e9t\u00e9\n" and clean["output_lossy"] is False


def test_base64_output_round_trip(client: httpx.Client) -> None:
    code = "import sys\nsys.stdout.buffer.write(bytes(range(256)) * 3)\nsys.stderr.buffer.write(b'\\x00\\xff')"
    out = run(client, {"language": "python", "code": code, "output_encoding": "base64"}).json()
    assert out["status"] == "ok" and out["output_encoding"] == "base64" and out["output_lossy"] is False
    assert base64.b64decode(out["stdout"]) == bytes(range(256)) * 3
    assert base64.b64decode(out["stderr"]) == b"\x00\xff"


def test_base64_stdin_and_files(client: httpx.Client) -> None:
    blob = bytes(range(256))[::-1] + b"\x00\xff\xfe"
    code = (
        "import sys\n"
        "data = sys.stdin.buffer.read()\n"
        "disk = open('data/blob.bin', 'rb').read()\n"
        "sys.stdout.buffer.write(data + b'|' + disk)\n"
    )
    body = {
        "language": "python",
        "files": [
            {"name": "main.py", "content": base64.b64encode(code.encode()).decode(), "encoding": "base64"},
            {"name": "data/blob.bin", "content": base64.b64encode(blob[::-1]).decode(), "encoding": "base64"},
        ],
        "entry": "main.py",
        "stdin": base64.b64encode(blob).decode(),
        "stdin_encoding": "base64",
        "output_encoding": "base64",
    }
    out = run(client, body).json()
    assert out["status"] == "ok", out
    assert base64.b64decode(out["stdout"]) == blob + b"|" + blob[::-1]


APP_PY = "import sys\nsys.path.insert(0, 'lib')\nimport greet\nprint(greet.greet(sys.argv[1]))\n"


def test_multi_file_with_entry(client: httpx.Client) -> None:
    body = {
        "language": "python",
        "files": [
            {"name": "lib/greet.py", "content": "def greet(n):\n    return 'hi ' + n\n"},
            {"name": "app.py", "content": APP_PY},
        ],
        "entry": "app.py",
        "args": ["bob"],
    }
    out = run(client, body).json()
    assert out["status"] == "ok", out
    assert out["stdout"] == "hi bob\n"


MAIN_C = '#include <stdio.h>\n#include "sq.h"\nint main(void) { printf("%d\\n", sq(7)); }\n'


def test_multi_file_c(client: httpx.Client) -> None:
    body = {
        "language": "c",
        "files": [
            {"name": "main.c", "content": MAIN_C},
            {"name": "sq.h", "content": "int sq(int);\n"},
            {"name": "sq.c", "content": "int sq(int x) { return x * x; }\n"},
        ],
    }
    out = run(client, body).json()
    assert out["status"] == "ok", out
    assert out["stdout"] == "49\n"


# -- runtimes, health, metrics, logs -------------------------------------------------------------


def test_runtimes_shape_and_limits(client: httpx.Client) -> None:
    r = client.get("/v1/runtimes")
    assert r.status_code == 200
    body = r.json()
    by_id = {rt["language"]: rt for rt in body["runtimes"]}
    keys = {"language", "name", "aliases", "extensions", "version", "available", "compiled", "hello", "detail",
            "versions"}  # fmt: skip
    for rt in body["runtimes"]:
        assert set(rt) == keys, rt
        assert isinstance(rt["available"], bool) and isinstance(rt["compiled"], bool)
        assert rt["available"] is (rt["version"] is not None) or not rt["available"]
        # Every toolchain: the default (the newest available) first, the missing ones last.
        first = rt["versions"][0]
        assert (first["version"], first["available"], first["detail"]) == (rt["version"], rt["available"], rt["detail"])
        flags = [v["available"] for v in rt["versions"]]
        assert flags == sorted(flags, reverse=True) and all(set(v) == {"version", "available", "toolchain", "detail"}
                                                            for v in rt["versions"])  # fmt: skip
    py = by_id["python"]
    assert py["available"] is True and py["compiled"] is False and "py" in py["aliases"]
    assert by_id["c"]["compiled"] is True
    names = ("cpu_ms", "wall_ms", "memory_mb", "processes", "output_kb", "file_size_kb")
    for stage in ("run", "compile"):
        default, maximum = body["limits"][stage]["default"], body["limits"][stage]["maximum"]
        assert set(default) == set(maximum) == set(names)
        for n in names:
            assert 0 < default[n] <= maximum[n], (stage, n)
    assert body["limits"]["run"]["default"]["cpu_ms"] == 5000
    assert body["limits"]["run"]["maximum"]["cpu_ms"] == 60000
    # The advertised maximum is accepted, one above it is refused.
    run_max = body["limits"]["run"]["maximum"]
    assert run(client, {**HELLO, "limits": {"processes": run_max["processes"]}}).json()["status"] == "ok"
    assert_error(run(client, {**HELLO, "limits": {"processes": run_max["processes"] + 1}}), "LIMIT_OUT_OF_RANGE", 422)
    # The hello program of a language runs as advertised.
    assert run(client, {"language": "python", "code": py["hello"]}).json()["stdout"] == "Hello, World!\n"


def test_health_and_ready(client: httpx.Client) -> None:
    r = client.get("/healthz")
    assert r.status_code == 200 and r.json() == {"status": "ok"}
    r = client.get("/readyz")
    assert r.status_code == 200
    assert r.json() == {
        "status": "ready",
        "checks": {"sandbox": True, "storage": True, "audit": True, "accepting": True, "toolchains": True},
    }


def test_metrics(client: httpx.Client) -> None:
    before = client.get("/metrics").text
    assert run(client, HELLO).json()["status"] == "ok"
    assert_error(run(client, {"language": "cobol-2077", "code": "1"}), "UNKNOWN_LANGUAGE", 404)
    assert_error(client.post("/v1/execute", content=b"{", headers=JSON), "INVALID_REQUEST", 400)
    r = client.get("/metrics")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    text = r.text
    ok = 'stockade_executions_total{language="python",verdict="ok"}'
    assert ok in text
    assert metric(text, "stockade_executions_total", language="python", verdict="ok") == (
        metric(before, "stockade_executions_total", language="python", verdict="ok") + 1
    )
    for reason in ("unknown_language", "invalid_request"):
        assert metric(text, "stockade_rejections_total", reason=reason) >= 1 + metric(
            before, "stockade_rejections_total", reason=reason
        ), reason
    for name in ("stockade_stage_duration_seconds_bucket", "stockade_queue_wait_seconds_bucket", "stockade_in_flight"):
        assert name in text


def test_execution_log_line_without_payloads(client: httpx.Client, open_server: LiveServer) -> None:
    code_marker = "CODEMARK" + uuid.uuid4().hex
    stdin_marker = "STDINMARK" + uuid.uuid4().hex
    out_marker = "OUTMARK" + uuid.uuid4().hex
    code = f"# {code_marker}\nimport sys\nsys.stdin.read()\nprint({out_marker[::-1]!r}[::-1])\n"
    out = run(client, {"language": "python", "code": code, "stdin": stdin_marker}).json()
    assert out["status"] == "ok" and out["stdout"] == out_marker + "\n"
    records = [r for r in open_server.log_records() if r.get("execution_id") == out["execution_id"]]
    assert len(records) == 1, records
    rec = records[0]
    assert rec["message"] == "execution" and rec["level"] == "info"
    assert rec["tenant"] == "local" and rec["language"] == "python" and rec["verdict"] == "ok"
    assert rec["stdin_bytes"] == len(stdin_marker) and rec["stdout_bytes"] == len(out_marker) + 1
    assert rec["code_bytes"] == len(code.encode())
    whole = open_server.log()
    for secret in (code_marker, stdin_marker, out_marker, out_marker[::-1]):
        assert secret not in whole


# -- keys, tenants, admin -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def kclient(keyed_server: LiveServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=keyed_server.url, timeout=60) as c:
        yield c


def test_unauthenticated(kclient: httpx.Client, keyed_server: LiveServer) -> None:
    good = existing_key(keyed_server, "acme")
    assert run(kclient, HELLO, good).json()["status"] == "ok"
    assert_error(kclient.post("/v1/execute", json=HELLO), "UNAUTHENTICATED", 401)
    for header in (
        "Bearer sk_0123456789abcdef_notarealsecret",
        f"Bearer {good}x",
        f"Basic {good}",
        "Bearer",
        "garbage",
    ):
        r = kclient.post("/v1/execute", json=HELLO, headers={"Authorization": header})
        assert_error(r, "UNAUTHENTICATED", 401)
    # health stays public; diagnostics needs a key
    assert kclient.get("/healthz").status_code == 200
    assert_error(kclient.get("/v1/diagnostics"), "UNAUTHENTICATED", 401)


def test_key_of_one_tenant_is_not_another(kclient: httpx.Client, keyed_server: LiveServer) -> None:
    key_a = key_of(keyed_server, "ta")
    key_b = key_of(keyed_server, "tb")
    # Splice B's key id with A's secret: neither tenant.
    _, a_id, a_secret = key_a.split("_", 2)
    _, b_id, _ = key_b.split("_", 2)
    assert_error(run(kclient, HELLO, f"sk_{b_id}_{a_secret}"), "UNAUTHENTICATED", 401)
    out = run(kclient, HELLO, key_a).json()
    assert out["status"] == "ok"
    rec = next(r for r in keyed_server.log_records() if r.get("execution_id") == out["execution_id"])
    assert rec["tenant"].startswith("ta-") and rec["key_id"] == a_id


def test_disabled_tenant_is_unauthenticated(kclient: httpx.Client, keyed_server: LiveServer) -> None:
    tenant = f"off-{uuid.uuid4().hex[:6]}"
    _, key = add_tenant(keyed_server.data_dir, tenant)
    assert run(kclient, HELLO, key).status_code == 200
    with Store(keyed_server.data_dir / "stockade.db") as st:
        st.update_tenant(tenant, disabled=True)
    assert_error(run(kclient, HELLO, key), "UNAUTHENTICATED", 401)


def test_forbidden_language(kclient: httpx.Client, keyed_server: LiveServer) -> None:
    key = key_of(keyed_server, "pyonly", allowed_languages=["python"])
    assert run(kclient, HELLO, key).json()["status"] == "ok"
    assert run(kclient, {**HELLO, "language": "py3"}, key).json()["status"] == "ok"  # an alias of python
    body = assert_error(run(kclient, {"language": "bash", "code": "echo hi"}, key), "FORBIDDEN", 403)
    assert "bash" in body["message"]


def test_limit_above_tenant_max(kclient: httpx.Client, keyed_server: LiveServer) -> None:
    key = key_of(keyed_server, "small", max_limits={"cpu_ms": 1000, "memory_mb": 128})
    body = assert_error(run(kclient, {**HELLO, "limits": {"cpu_ms": 2000}}, key), "LIMIT_OUT_OF_RANGE", 422)
    assert "1000" in body["message"]
    assert_error(run(kclient, {**HELLO, "limits": {"memory_mb": 256}}, key), "LIMIT_OUT_OF_RANGE", 422)
    assert run(kclient, {**HELLO, "limits": {"cpu_ms": 1000}}, key).json()["status"] == "ok"
    # The default (5000 ms) is lowered to the tenant's maximum, not refused.
    spin = {"language": "python", "code": "while True:\n    pass"}
    out = run(kclient, spin, key).json()
    assert out["status"] == "timeout" and out["timeout_kind"] == "cpu" and out["time_ms"] < 2500


def test_rate_limited_per_tenant(kclient: httpx.Client, keyed_server: LiveServer) -> None:
    key_a = key_of(keyed_server, "ratea", rate_per_minute=2)
    key_b = key_of(keyed_server, "rateb", rate_per_minute=2)
    cheap = {"language": "cobol-2077", "code": "1"}  # counted: the rate limit comes before validation
    for _ in range(2):
        assert_error(run(kclient, cheap, key_a), "UNKNOWN_LANGUAGE", 404)
    r = run(kclient, HELLO, key_a)
    assert_error(r, "RATE_LIMITED", 429)
    assert 1 <= int(r.headers["Retry-After"]) <= 60
    # Tenant B is untouched by A's exhaustion.
    assert run(kclient, HELLO, key_b).json()["status"] == "ok"
    assert run(kclient, HELLO, key_b).json()["status"] == "ok"
    assert_error(run(kclient, HELLO, key_b), "RATE_LIMITED", 429)
    assert metric(kclient.get("/metrics").text, "stockade_rejections_total", reason="rate_limited") >= 2


def test_quota_exceeded_per_tenant(kclient: httpx.Client, keyed_server: LiveServer) -> None:
    key_a = key_of(keyed_server, "quotaa", executions_per_day=1)
    key_b = key_of(keyed_server, "quotab", executions_per_day=1)
    assert run(kclient, HELLO, key_a).json()["status"] == "ok"
    r = run(kclient, HELLO, key_a)
    body = assert_error(r, "QUOTA_EXCEEDED", 429)
    assert "executions" in body["message"]
    assert 1 <= int(r.headers["Retry-After"]) <= 86400
    assert run(kclient, HELLO, key_b).json()["status"] == "ok"
    text = kclient.get("/metrics").text
    assert metric(text, "stockade_rejections_total", reason="quota_exceeded") >= 1
    assert "stockade_quota_saturation" in text


def test_concurrent_requests_cannot_overrun_the_executions_quota(keyed_server: LiveServer) -> None:
    """Usage is written after each run; requests in flight hold their execution from the check on."""
    key = key_of(keyed_server, "quotac", executions_per_day=2)
    slow = {"language": "python", "code": "import time; time.sleep(0.5)"}

    async def burst() -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=keyed_server.url, timeout=60) as c:
            return await asyncio.gather(*(c.post("/v1/execute", json=slow, headers=bearer(key)) for _ in range(6)))

    replies = asyncio.run(burst())
    ok = [r for r in replies if r.status_code == 200]
    assert len(ok) == 2 and all(r.json()["status"] == "ok" for r in ok), [r.text for r in replies]
    for r in replies:
        if r.status_code != 200:
            assert_error(r, "QUOTA_EXCEEDED", 429)
    # Usage is written after each response; diagnostics answer once every answered execution's is.
    diag = httpx.get(f"{keyed_server.url}/v1/diagnostics", headers=bearer(existing_key(keyed_server, "admin")))
    assert diag.json()["admission"]["recording"] == 0
    with Store(keyed_server.data_dir / "stockade.db") as st:
        tenant = next(t for t in st.list_tenants() if t.id.startswith("quotac-"))
        assert st.check_quota(tenant.id).executions_used == 2


def test_the_response_does_not_wait_for_the_audit_record(kclient: httpx.Client, keyed_server: LiveServer) -> None:
    """The record is written after the response; diagnostics answer once every answered one is."""
    admin = existing_key(keyed_server, "admin")
    tenant = f"late-{uuid.uuid4().hex[:6]}"
    key = add_tenant(keyed_server.data_dir, tenant)[1]
    db = sqlite3.connect(keyed_server.data_dir / "stockade.db", isolation_level=None)
    try:
        # The run is journaled before its box (a write: journal.py), so the lock is taken once it is,
        # while the program still sleeps.
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            slow = {**HELLO, "code": "import time\ntime.sleep(3)\nprint('hello')"}
            answer = pool.submit(run, kclient, slow, key)
            deadline = time.monotonic() + 60
            while not db.execute("SELECT 1 FROM runs_pending").fetchall() and time.monotonic() < deadline:
                time.sleep(0.01)
            db.execute("BEGIN IMMEDIATE")  # another process holds the database's write lock
            out = answer.result(timeout=60).json()
        assert out["status"] == "ok"  # answered while its record cannot be written
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            diag = pool.submit(httpx.get, f"{keyed_server.url}/v1/diagnostics", headers=bearer(admin), timeout=30)
            with pytest.raises(concurrent.futures.TimeoutError):
                diag.result(timeout=0.5)  # waits for the record
            db.execute("ROLLBACK")
            assert diag.result(timeout=30).json()["admission"]["recording"] == 0
        rows = db.execute("SELECT body FROM audit_log").fetchall()
    finally:
        db.close()
    assert any(json.loads(body)["data"].get("execution_id") == out["execution_id"] for (body,) in rows)
    with Store(keyed_server.data_dir / "stockade.db") as st:
        assert st.check_quota(tenant).executions_used == 1


def test_a_request_refused_after_the_quota_check_gives_its_execution_back(
    kclient: httpx.Client, keyed_server: LiveServer
) -> None:
    key = key_of(keyed_server, "quotar", executions_per_day=1)
    for refused in ({"language": "cobol-2077", "code": "1"}, {**HELLO, "limits": {"cpu_ms": -1}}):
        assert run(kclient, refused, key).status_code in (404, 422)
    assert run(kclient, HELLO, key).json()["status"] == "ok"
    assert_error(run(kclient, HELLO, key), "QUOTA_EXCEEDED", 429)


def test_diagnostics_admin_only(kclient: httpx.Client, keyed_server: LiveServer) -> None:
    user = existing_key(keyed_server, "acme")
    admin = existing_key(keyed_server, "admin")
    assert_error(kclient.get("/v1/diagnostics", headers=bearer(user)), "FORBIDDEN", 403)
    r = kclient.get("/v1/diagnostics", headers=bearer(admin))
    assert r.status_code == 200, r.text
    d = r.json()
    ready = d["slots"].pop("ready")
    assert d["slots"] == {"total": 2, "in_use": 0, "waiting": 0, "quarantined": []}
    # An idle node has one box built ahead per slot, and those are all the boxes it has.
    assert sorted(ready) == sorted(p.name for p in keyed_server.box_dirs()) and len(set(ready)) == 2
    assert d["admission"]["queue_size"] == 8
    assert isinstance(d["recent_failures"], dict)
    assert d["open_mode"] is False and d["draining"] is False
    assert d["host"]["cgroup"]["mode"] in ("v1", "v2")
    assert all(p.endswith("/stockade-t-api-keys") for p in d["host"]["cgroup"]["parents"].values())


# -- INTERNAL_ERROR, in process --------------------------------------------------------------------


class _Capture(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []
        self.setFormatter(logging.Formatter("%(message)s\n%(exc_text)s"))

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record) + json.dumps(getattr(record, "fields", {})))

    @property
    def text(self) -> str:
        return "\n".join(self.lines)


def _inproc_service(tmp_path: Path) -> Service:
    config = ServiceConfig(
        data_dir=tmp_path / "data",
        sandbox=SandboxConfig(
            run_dir=Path("/run/stockade-t-api-inproc"), slots=1, uid_base=66050, cgroup_name="stockade-t-api-inproc"
        ),
    )
    # Python alone, and every probe finished before the lifespan ends: leftover toolchain probes of a full
    # registry can hang the event loop's teardown (see test_lifecycle.py::test_lifespan_shutdown_leaves_no_tasks).
    return Service(config, registry=Registry([Registry.default().get("python")]))


@contextlib.asynccontextmanager
async def _serving(service: Service) -> AsyncIterator[tuple[Any, httpx.AsyncClient, _Capture]]:
    """The app in process with its lifespan, a client, and what it logs."""
    app = create_app(service=service)
    capture = _Capture()
    logger = logging.getLogger("stockade.service")
    logger.addHandler(capture)
    try:
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
            async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as c:
                yield app, c, capture
            await service.registry.detect_all()
    finally:
        logger.removeHandler(capture)


async def test_internal_error_has_an_id_in_the_log(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    service = _inproc_service(tmp_path)

    async def broken(plan: Any, **_: Any) -> Any:
        raise RuntimeError("engine exploded")

    monkeypatch.setattr(service.engine, "run", broken)
    async with _serving(service) as (_, c, log):
        r = await c.post("/v1/execute", json=HELLO)
        body = assert_error(r, "INTERNAL_ERROR", 500)
        assert re.fullmatch(r"[0-9a-f]{12}", body["id"])
        assert "exploded" not in body["message"]  # no internals leak to the caller
        diag = (await c.get("/v1/diagnostics")).json()
        assert diag["recent_failures"].get("RuntimeError") == 1
        assert diag["admission"]["in_flight"] == 0  # the admission place was given back
    assert body["id"] in log.text
    assert "engine exploded" in log.text


def _before_audit_appends(service: Service, monkeypatch: pytest.MonkeyPatch, before: Any) -> Any:
    """Run `before()` ahead of every audit append (to fail or hold it); returns what undoes that."""
    assert service.audit is not None
    working = service.audit.append

    def hooked(*args: Any, **kwargs: Any) -> Any:
        before()
        return working(*args, **kwargs)

    monkeypatch.setattr(service.audit, "append", hooked)
    return lambda: monkeypatch.setattr(service.audit, "append", working)


async def test_a_failed_audit_write_is_logged_and_fails_readiness_until_one_succeeds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The record is written after the response: the client has its result, the operator the failure."""
    service = _inproc_service(tmp_path)
    async with _serving(service) as (_, c, log):
        assert service.audit is not None

        def disk_full() -> None:
            raise OSError("disk full")

        repaired = _before_audit_appends(service, monkeypatch, disk_full)
        r = await c.post("/v1/execute", json=HELLO)
        assert r.status_code == 200 and r.json()["stdout"] == "hello\n"
        ready = await c.get("/readyz")
        assert ready.status_code == 503 and ready.json()["checks"]["audit"] is False
        refused = await c.post("/v1/execute", json=HELLO)  # fails closed: it could not be recorded either
        assert refused.status_code == 503 and refused.json()["error"] == "STORAGE_UNAVAILABLE"
        diag = (await c.get("/v1/diagnostics")).json()
        assert diag["recent_failures"].get("audit") == 1 and diag["admission"]["recording"] == 0
        assert "stockade_audit_failures_total 1.0" in (await c.get("/metrics")).text
        assert service.quota_holds.held("local") == 0  # the execution's quota hold was given back

        repaired()
        ready = await c.get("/readyz")  # probes the storage: writes the record that failed, no execution needed
        assert ready.status_code == 200 and ready.json()["checks"]["audit"] is True
        second = (await c.post("/v1/execute", json=HELLO)).json()
        await service.written()
        records = [rec for rec in service.audit.export() if rec["kind"] == "execution"]
        assert [rec["data"]["execution_id"] for rec in records] == [r.json()["execution_id"], second["execution_id"]]
    failed = next(line for line in log.lines if line.startswith("audit record not written:"))
    assert re.match(r"audit record not written: [0-9a-f]{12}\n", failed) and "disk full" in failed


async def test_diagnostics_wait_for_the_audit_writes_pending_when_called_and_no_later_ones(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A busy node always has writes pending: waiting for none would hold every diagnostics call."""
    service = _inproc_service(tmp_path)
    async with _serving(service) as (_, c, _):
        gates = [threading.Event(), threading.Event()]
        first_gate, second_gate = gates

        def gate() -> None:
            assert gates.pop(0).wait(30)

        _before_audit_appends(service, monkeypatch, gate)

        async def until(what: Any) -> None:
            for _ in range(3000):
                if what():
                    return
                await asyncio.sleep(0.01)
            raise AssertionError("timed out")

        first = asyncio.create_task(c.post("/v1/execute", json=HELLO))
        await until(lambda: service.recording == 1)  # answered; its record waits
        settled = asyncio.create_task(service.written())
        second = asyncio.create_task(c.post("/v1/execute", json=HELLO))
        await until(lambda: service.recording == 2)
        assert not settled.done()
        first_gate.set()
        await asyncio.wait_for(settled, 30)
        assert service.recording == 1  # the second write, begun after the call, is still pending
        second_gate.set()
        assert [(await r).json()["status"] for r in (first, second)] == ["ok", "ok"]
        assert service.recording == 0


async def test_a_run_whose_response_cannot_be_sent_is_still_recorded(tmp_path: Path) -> None:
    service = _inproc_service(tmp_path)
    async with _serving(service) as (app, _, _):
        assert service.audit is not None and service.store is not None
        body = json.dumps(HELLO).encode()
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "POST",
            "scheme": "http",
            "path": "/v1/execute",
            "raw_path": b"/v1/execute",
            "query_string": b"",
            "root_path": "",
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
            "client": ("127.0.0.1", 50000),
            "server": ("127.0.0.1", 80),
        }
        messages = [{"type": "http.request", "body": body, "more_body": False}]

        async def receive() -> dict[str, Any]:
            if messages:
                return messages.pop()
            await asyncio.Event().wait()  # the client neither sends more nor leaves
            raise AssertionError

        async def send(message: Any) -> None:
            raise OSError("connection reset")

        with pytest.raises(OSError, match="connection reset"):
            await app(scope, receive, send)
        records = [rec for rec in service.audit.export() if rec["kind"] == "execution"]
        assert len(records) == 1 and records[0]["data"]["verdict"] == "ok"
        assert service.store.check_quota("local").executions_used == 1
        assert service.recording == 0 and service.quota_holds.held("local") == 0


def test_audit_records_keep_the_limits_the_boxes_got(client: httpx.Client, open_server: LiveServer) -> None:
    """Defaults filled in, the request's values, and a language's floors over them (Java's memory)."""
    runs = {
        "python": ("print(1)", {}),
        "c": ("int main(void) { return 0; }", {"cpu_ms": 1000}),
        "java": ("class Main { public static void main(String[] a) {} }", {"memory_mb": 64}),
    }
    ids = {}
    for language, (code, limits) in runs.items():
        reply = client.post("/v1/execute", json={"language": language, "code": code, "limits": limits}).json()
        assert reply["status"] == "ok", reply
        ids[reply["execution_id"]] = language
    assert client.get("/v1/diagnostics").status_code == 200  # answers once the records are written
    export = subprocess.run(
        [".venv/bin/stockade", "audit", "export", "--data-dir", str(open_server.data_dir)],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    limits = {}
    for line in export.stdout.splitlines():
        data = json.loads(line)["data"]
        if data.get("execution_id") in ids:
            limits[ids[data["execution_id"]]] = data["limits"]
    run_default = {"cpu_ms": 5000, "wall_ms": 10000, "memory_mb": 256, "processes": 64, "output_kb": 1024,
                   "file_size_kb": 16384}  # fmt: skip
    compile_default = {"cpu_ms": 30000, "wall_ms": 60000, "memory_mb": 1024, "processes": 128, "output_kb": 256,
                       "file_size_kb": 262144}  # fmt: skip
    assert limits["python"] == {"run": run_default, "compile": None}
    assert limits["c"] == {"run": {**run_default, "cpu_ms": 1000}, "compile": compile_default}
    assert limits["java"]["run"] == {**run_default, "memory_mb": 256}  # asked for 64: the JVM's floor
    java_compile = limits["java"]["compile"]  # javac's CPU allowance on top of the default
    assert java_compile == {**compile_default, "cpu_ms": 33000, "wall_ms": 66000}


def test_openapi_and_docs(client: httpx.Client) -> None:
    schema = client.get("/openapi.json").json()
    assert {"/v1/execute", "/v1/runtimes", "/healthz", "/readyz", "/v1/diagnostics"} <= set(schema["paths"])
    assert "/execute" not in schema["paths"]
    assert client.get("/").status_code == 200  # the playground


def test_docs_load_nothing_from_another_origin(client: httpx.Client) -> None:
    page = client.get("/docs")
    assert page.status_code == 200
    urls = re.findall(r"""(?:src|href|url)\s*[:=]\s*['"]([^'"]+)['"]""", page.text)
    assert "/swagger/swagger-ui-bundle.js" in urls and "/swagger/swagger-ui.css" in urls
    assert [u for u in urls if "//" in u] == []  # no CDN, no absolute URL
    for url, kind in (("/swagger/swagger-ui-bundle.js", "javascript"), ("/swagger/swagger-ui.css", "css")):
        asset = client.get(url)
        assert asset.status_code == 200 and kind in asset.headers["content-type"]
        assert len(asset.content) > 100_000
    assert client.get("/redoc").status_code == 404  # ReDoc would load from a CDN
