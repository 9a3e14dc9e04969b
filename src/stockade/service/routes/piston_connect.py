"""Piston v2's interactive WebSocket, /api/v2/connect (docs/compat.md): Piston's messages over the steps of
GET /v1/execute/stream (routes/stream.py: admission, authentication, rate limit, quota, execution.execute
with a LiveIO, the audit record).

The client sends `init` (POST /execute's body), then `data` on `stdin` as it likes; the server sends
`runtime`, then per stage `stage`, its `data` on stdout/stderr (the compile stage's once it has ended: it
is not live) and `exit`, then closes with 4999 "Job Completed". A refusal is an `error` message and close
4002; Piston's other close codes as Piston uses them. A `signal` message is answered with an `error`
message: signals are not forwarded (Piston's own server does not deliver them either).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import signal
from typing import Any

from fastapi import APIRouter, WebSocket
from starlette.websockets import WebSocketDisconnect

from stockade.sandbox import BoxResult, LiveIO
from stockade.service.compat import piston as pi
from stockade.service.errors import ApiError
from stockade.service.node import Caller, Service
from stockade.service.routes import execution, stream
from stockade.service.routes.piston import PREFIXES, translate

INIT_WAIT_S = stream.REQUEST_WAIT_S  # Piston gives 1 s; a slow client here gets the API's 10
CLOSE = {
    "already_initialized": (4000, "Already Initialized"),
    "init_timeout": (4001, "Initialization Timeout"),
    "error": (4002, "Notified Error"),
    "not_initialized": (4003, "Not yet Initialized"),
    "stdin_only": (4004, "Can only write to stdin"),
    "invalid_signal": (4005, "Invalid Signal"),
    "done": (4999, "Job Completed"),
}


class _Closed(Exception):
    """The session ends with this close (CLOSE's key)."""

    def __init__(self, why: str) -> None:
        super().__init__(why)
        self.why = why


class _PistonOutput(stream.Output):
    """The run's output as Piston's `data` messages."""

    async def on_output(self, stream_name: str, chunk: bytes) -> None:
        if data := self.decoders[stream_name].decode(chunk):
            await self.send({"type": "data", "stream": stream_name, "data": data})

    async def started(self, name: str) -> None:
        await self.send({"type": "stage", "stage": name})

    async def ended(self, name: str, box: BoxResult) -> None:
        """A finished stage that was not live (the compile): its output, then its exit."""
        for stream_name in ("stdout", "stderr"):
            if data := getattr(box, stream_name).decode("utf-8", "replace"):
                await self.send({"type": "data", "stream": stream_name, "data": data})
        shape = pi.stage(box)
        await self.send({"type": "exit", "stage": name, "code": shape["code"], "signal": shape["signal"]})


async def _close(ws: WebSocket, why: str) -> None:
    code, reason = CLOSE[why]
    with contextlib.suppress(WebSocketDisconnect, OSError, RuntimeError):
        await ws.close(code, reason)


async def _init(ws: WebSocket) -> Any:
    """The `init` message's body (Piston's execute request)."""
    try:
        message = await asyncio.wait_for(ws.receive(), INIT_WAIT_S)
    except TimeoutError:
        raise _Closed("init_timeout") from None
    if message["type"] == "websocket.disconnect":
        raise WebSocketDisconnect
    event = _event(message)
    if event.get("type") != "init":
        raise _Closed("not_initialized")
    return {k: v for k, v in event.items() if k != "type"}


def _event(message: Any) -> dict[str, Any]:
    try:
        event = json.loads(message.get("text") or message.get("bytes") or b"")
    except ValueError:
        raise ApiError("INVALID_REQUEST", "messages are JSON objects") from None
    if not isinstance(event, dict):
        raise ApiError("INVALID_REQUEST", "messages are JSON objects")
    return event


async def _pump(ws: WebSocket, out: _PistonOutput, live: LiveIO, audit: dict[str, Any]) -> None:
    """Client messages: stdin into the program (back-pressure as stream.py's), until the client leaves or
    breaks the protocol: then it is closed with Piston's code and treated as gone (stream.run_live: a run
    that has started goes on to its end and is recorded)."""
    digest = hashlib.sha256()
    try:
        while True:
            message = await ws.receive()
            if message["type"] == "websocket.disconnect":
                return
            data = await _stdin(out, _event(message))
            if data is not None and await live.send(data):
                digest.update(data)
                audit["live_stdin_bytes"] += len(data)
                audit["live_stdin_sha256"] = digest.hexdigest()
    except _Closed as e:
        await _close(ws, e.why)
    except ApiError as e:
        await _refuse(ws, e.message)


async def _stdin(out: _PistonOutput, event: dict[str, Any]) -> bytes | None:
    """The bytes of a stdin message; None for a signal (answered, not forwarded); _Closed otherwise."""
    kind = event.get("type")
    if kind == "init":
        raise _Closed("already_initialized")
    if kind == "signal":
        name = event.get("signal")
        named = isinstance(name, str) and name in signal.Signals.__members__
        numbered = isinstance(name, int) and not isinstance(name, bool) and 0 < name < 65
        if not (named or numbered):  # a list or an object too: never an exception out of the pump
            raise _Closed("invalid_signal")
        await out.send({"type": "error", "message": "signals are not forwarded to the program"})
        return None
    if kind != "data" or event.get("stream") != "stdin" or not isinstance(event.get("data"), str):
        raise _Closed("stdin_only")
    return str(event["data"]).encode()


async def _session(service: Service, ws: WebSocket, who: Caller, place: Any) -> None:
    body = await _init(ws)
    lang, execute_in = await translate(service, body)
    out = _PistonOutput(ws, "utf8")
    await out.send({"type": "runtime", "language": lang.id, "version": execute_in.version})
    live = LiveIO(out.on_output)
    audit: dict[str, Any] = {"stream": "piston", "live_stdin_bytes": 0}
    audit["live_stdin_sha256"] = hashlib.sha256().hexdigest()

    async def compiled(box: BoxResult | None) -> None:
        if box is not None:
            await out.started("compile")
            await out.ended("compile", box)
            if box.status.value != "ok":
                return  # no run stage
        await out.started("run")

    with service.sandbox.recycling_deferred() as runs:
        run = asyncio.create_task(
            execution.execute(service, who, execute_in, place, live=live, audit=audit, on_compiled=compiled)
        )
        answer = await stream.run_live(service, out, live, run, lambda: runs.started, _pump(ws, out, live, audit))
    if answer is None:
        return
    result, write = answer
    try:
        await out.flush()
        if result["compile"] is None or result["compile"]["status"] == "ok":
            code = result["exit_code"]
            await out.send({"type": "exit", "stage": "run", "code": code, "signal": result["signal_name"]})
        await _close(ws, "done")
    finally:
        await service.write_audit(write)


async def connect(ws: WebSocket) -> None:
    service = stream.service_of_ws(ws)
    try:
        place, who, hold, headers = await stream.admit(service, ws)
    except Exception as e:
        await ws.accept()
        await _refuse(ws, stream.api_error(service, e).message)
        return
    try:
        await ws.accept(None, [stream.header(k, v) for k, v in headers.items()])
        await _session(service, ws, who, place)
    except _Closed as e:
        await _close(ws, e.why)
    except (ApiError, pi.PistonInvalid) as e:
        await _refuse(ws, e.message if isinstance(e, ApiError) else str(e))
    except WebSocketDisconnect:
        pass
    except Exception as e:
        await _refuse(ws, stream.api_error(service, e).message)
    finally:
        place.release()
        hold.release()


async def _refuse(ws: WebSocket, message: str) -> None:
    with contextlib.suppress(WebSocketDisconnect, OSError, RuntimeError):
        await ws.send_text(json.dumps({"type": "error", "message": message}))
    await _close(ws, "error")


router = APIRouter(include_in_schema=False)
for _prefix in PREFIXES:
    router.add_api_websocket_route(f"{_prefix}/connect", connect)
