"""Piston's interactive WebSocket, /api/v2/connect, against a live server: Piston's messages in Piston's
order, stdin typed while the program runs, the compile stage, refusals and close codes."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from tests.service.live import LiveServer

TIMEOUT_S = 60.0
ECHO = "import sys\nfor line in sys.stdin:\n    print(line.strip().upper(), flush=True)\nprint('bye')"


def url(server: LiveServer) -> str:
    return server.url.replace("http://", "ws://") + "/api/v2/connect"


async def messages(ws: ClientConnection) -> list[dict[str, Any]]:
    """Every message until the server closes."""
    got = []
    try:
        while True:
            got.append(json.loads(await asyncio.wait_for(ws.recv(), TIMEOUT_S)))
    except ConnectionClosed:
        return got


def init(language: str, code: str, **extra: Any) -> str:
    return json.dumps({"type": "init", "language": language, "version": "*", "files": [{"content": code}], **extra})


def test_an_interactive_program_reads_what_is_typed(open_server: LiveServer) -> None:
    async def session() -> list[dict[str, Any]]:
        async with connect(url(open_server)) as ws:
            await ws.send(init("python", ECHO))
            got = [json.loads(await asyncio.wait_for(ws.recv(), TIMEOUT_S)) for _ in range(2)]
            await ws.send(json.dumps({"type": "data", "stream": "stdin", "data": "hello\n"}))
            got.append(json.loads(await asyncio.wait_for(ws.recv(), TIMEOUT_S)))  # before its stdin ends
            await ws.send(json.dumps({"type": "signal", "signal": "SIGINT"}))
            got.append(json.loads(await asyncio.wait_for(ws.recv(), TIMEOUT_S)))
            return got  # the client leaves: stdin ends, the run goes on to its end

    got = asyncio.run(session())
    assert got[0]["type"] == "runtime" and got[0]["language"] == "python" and got[0]["version"]
    assert got[1:] == [
        {"type": "stage", "stage": "run"},
        {"type": "data", "stream": "stdout", "data": "HELLO\n"},
        {"type": "error", "message": "signals are not forwarded to the program"},
    ]


def test_a_run_ends_with_its_exit_and_close_4999(open_server: LiveServer) -> None:
    async def session() -> tuple[list[dict[str, Any]], int | None, str | None]:
        async with connect(url(open_server)) as ws:
            await ws.send(init("python", "import sys\nprint(input())\nsys.exit(3)"))
            await ws.send(json.dumps({"type": "data", "stream": "stdin", "data": "typed\n"}))
            got = await messages(ws)
            return got, ws.close_code, ws.close_reason

    got, code, reason = asyncio.run(session())
    assert [m["type"] for m in got] == ["runtime", "stage", "data", "exit"]
    assert got[2] == {"type": "data", "stream": "stdout", "data": "typed\n"}
    assert got[3] == {"type": "exit", "stage": "run", "code": 3, "signal": None}
    assert (code, reason) == (4999, "Job Completed")


def test_a_compiled_language_reports_its_compile_stage_first(open_server: LiveServer) -> None:
    async def session(code: str) -> list[dict[str, Any]]:
        async with connect(url(open_server)) as ws:
            await ws.send(init("c", code))
            return await messages(ws)

    ok = asyncio.run(session('#include <stdio.h>\nint main(void) { puts("c!"); return 0; }'))
    assert [(m["type"], m.get("stage")) for m in ok] == [
        ("runtime", None), ("stage", "compile"), ("exit", "compile"), ("stage", "run"), ("data", None), ("exit", "run"),
    ]  # fmt: skip
    assert ok[2]["code"] == 0 and ok[4]["data"] == "c!\n" and ok[5]["code"] == 0
    bad = asyncio.run(session("int main(void) { return }"))
    assert [(m["type"], m.get("stage")) for m in bad][-2:] == [("data", None), ("exit", "compile")]
    assert bad[-2]["stream"] == "stderr" and "error" in bad[-2]["data"] and bad[-1]["code"] != 0


@pytest.mark.parametrize(
    ("first", "then", "code"),
    [
        (json.dumps({"type": "data", "stream": "stdin", "data": "x"}), None, 4003),
        (init("python", "input()"), init("python", "pass"), 4000),
        (init("python", "input()"), json.dumps({"type": "data", "stream": "stdout", "data": "x"}), 4004),
        (init("python", "input()"), json.dumps({"type": "signal", "signal": "SIGNOPE"}), 4005),
        (init("python", "input()"), json.dumps({"type": "signal", "signal": ["SIGKILL"]}), 4005),
        (init("no-such-language", "x"), None, 4002),
    ],
)
def test_protocol_violations_close_with_pistons_codes(
    open_server: LiveServer, first: str, then: str | None, code: int
) -> None:
    async def session() -> tuple[list[dict[str, Any]], int | None]:
        async with connect(url(open_server)) as ws:
            await ws.send(first)
            if then is not None:
                await ws.send(then)
            return await messages(ws), ws.close_code

    got, closed = asyncio.run(session())
    assert closed == code
    if code == 4002:
        assert got[-1]["type"] == "error" and "runtime is unknown" in got[-1]["message"]
