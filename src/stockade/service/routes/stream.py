"""GET /v1/execute/stream: one execution over a WebSocket, its output sent as it is produced and its
stdin taken as the client types it (docs/api.md, "Streaming and interactive stdin").

The steps are POST /v1/execute's, in its order: a claimed place (or OVERLOADED at once),
authentication (the upgrade request's Authorization header; a browser, which cannot set it, offers
the key as a subprotocol), rate limit, quota, then the request message, execution.execute with a
LiveIO for the run stage, the result, the audit record. Every refusal is an `error` event with the
API's error body, then a close with code 4000 + its HTTP status.

Bounded both ways: output goes to the client chunk by chunk, each send awaited (the transport's
write buffer pauses it), so a client that stops reading holds the program's writes and the run ends
at its limits; stdin messages are at most STDIN_CHUNK_MAX bytes each, queued by LiveIO (16 of them),
and none is read off the socket while the queue is full.

A client that leaves before its run has taken a slot drops it (as /v1/execute); one that leaves later
ends the program's input (EOF) and its output is dropped: the run goes on to its end or its limits and
is recorded, audited and counted like any other.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import codecs
import contextlib
import hashlib
import json
import logging
from collections.abc import Callable
from typing import Any, cast
from urllib.parse import urlsplit

from fastapi import APIRouter, WebSocket
from pydantic import ValidationError
from starlette.requests import HTTPConnection
from starlette.types import Message
from starlette.websockets import WebSocketDisconnect

from stockade.sandbox import LiveIO
from stockade.service.admission import Place
from stockade.service.errors import ApiError
from stockade.service.node import AuditWrite, Caller, Service
from stockade.service.quota import QuotaHold
from stockade.service.routes import execution
from stockade.service.wire import LIMIT_FIELDS, ExecuteIn

log = logging.getLogger("stockade.service")

SUBPROTOCOL = "stockade.v1"
BEARER_PREFIX = "stockade.bearer."  # a browser's key, as a subprotocol it offers beside SUBPROTOCOL
REQUEST_WAIT_S = 10.0  # the request message comes within this of the upgrade, or the place is given back
RESULT_SEND_S = 30.0  # a client that does not take its result within this is cut off (it is recorded anyway)
STDIN_CHUNK_MAX = 64 * 1024  # decoded bytes of one stdin message: LiveIO's queue then holds at most 1 MiB

router = APIRouter(prefix="/v1")


class _Gone(Exception):
    """The client left, or broke the protocol after its request (it was told so and disconnected)."""


def service_of_ws(ws: WebSocket) -> Service:
    return cast(Service, ws.app.state.service)


def _with_bearer(ws: WebSocket) -> HTTPConnection:
    """The upgrade request, with a browser's subprotocol key as its Authorization header when it has
    none of its own."""
    offered = [p for p in ws.scope.get("subprotocols", []) if p.startswith(BEARER_PREFIX)]
    if "authorization" in ws.headers or not offered:
        return ws
    bearer = (b"authorization", f"Bearer {offered[0][len(BEARER_PREFIX) :]}".encode())
    return HTTPConnection({**ws.scope, "headers": [*ws.scope["headers"], bearer]})


def _check_origin(ws: WebSocket) -> None:
    """A browser page of another origin may open a WebSocket to us (no CORS stops it): refuse it, so a
    web page cannot run code through a local open-mode server. Clients that are not browsers send no
    Origin."""
    origin = ws.headers.get("origin")
    if origin is not None and urlsplit(origin).netloc != ws.headers.get("host"):
        raise ApiError("FORBIDDEN", "a WebSocket from a page of another origin is refused")


async def admit(service: Service, ws: WebSocket) -> tuple[Place, Caller, QuotaHold, dict[str, str]]:
    """The place, the caller, its quota hold and its rate headers; or ApiError, nothing held."""
    place = service.claim()
    hold = None
    try:
        _check_origin(ws)
        who = service.authenticate(_with_bearer(ws))
        place.who = who
        headers = await service.rate_limit(who)
        hold = service.check_quota(who)
        return place, who, hold, headers
    except BaseException:
        place.release()
        raise


def _validation_error(exc: ValidationError) -> ApiError:
    """The request message's schema errors, worded as the HTTP API words a body's (app.invalid_request)."""
    errors = exc.errors()
    parts = [f"{'.'.join(str(x) for x in e.get('loc', ())) or 'body'}: {e.get('msg', 'invalid')}" for e in errors[:5]]

    def not_an_integer_limit(e: Any) -> bool:
        loc = tuple(e.get("loc", ()))
        return len(loc) == 2 and loc[0] in LIMIT_FIELDS and e.get("type") == "int_type"

    code = "LIMIT_OUT_OF_RANGE" if errors and all(not_an_integer_limit(e) for e in errors) else "INVALID_REQUEST"
    return ApiError(code, "; ".join(parts) or "invalid request")


def _text_of(message: Message) -> str:
    if message.get("text") is not None:
        return cast(str, message["text"])
    raise ApiError("INVALID_REQUEST", "send JSON text messages")


async def _request(service: Service, ws: WebSocket) -> ExecuteIn:
    """The first message: the same JSON body as POST /v1/execute."""
    try:
        message = await asyncio.wait_for(ws.receive(), REQUEST_WAIT_S)
    except TimeoutError:
        raise ApiError("REQUEST_TIMEOUT", f"no request message within {REQUEST_WAIT_S:g} s") from None
    if message["type"] == "websocket.disconnect":
        raise _Gone
    try:
        return ExecuteIn.model_validate_json(_text_of(message))
    except ValidationError as e:
        error = _validation_error(e)
        service.reject(error.code.lower())
        raise error from None


class Output:
    """The run's output to the client, as `stdout`/`stderr` events in the request's output encoding;
    dropped once the client is gone."""

    def __init__(self, ws: WebSocket, encoding: str) -> None:
        self.ws = ws
        self.gone = False
        self.base64 = encoding == "base64"
        # A UTF-8 character may straddle two chunks: decode each stream incrementally.
        self.decoders = {s: codecs.getincrementaldecoder("utf-8")("replace") for s in ("stdout", "stderr")}

    async def send(self, event: dict[str, Any], timeout: float | None = None) -> None:
        if self.gone:
            return
        text = json.dumps(event)
        try:
            if timeout is None:
                await self.ws.send_text(text)
            else:
                await asyncio.wait_for(self.ws.send_text(text), timeout)
        except (WebSocketDisconnect, OSError, RuntimeError, TimeoutError):  # closed, lost, or stalled past timeout
            self.gone = True

    async def on_output(self, stream: str, chunk: bytes) -> None:
        data = base64.b64encode(chunk).decode() if self.base64 else self.decoders[stream].decode(chunk)
        if data:
            await self.send({"type": stream, "data": data})

    async def flush(self) -> None:
        """What an incremental decoder still holds (an incomplete character at the end: U+FFFD)."""
        if not self.base64:
            for stream, decoder in self.decoders.items():
                if tail := decoder.decode(b"", final=True):
                    await self.send({"type": stream, "data": tail})


def _stdin_of(message: Message) -> bytes | None:
    """One input message: `stdin` -> its bytes, `eof` -> None; ApiError for anything else."""
    try:
        event = json.loads(_text_of(message))
    except ValueError:
        raise ApiError("INVALID_REQUEST", "an input message is not JSON") from None
    if not isinstance(event, dict):
        event = {}
    if event == {"type": "eof"}:
        return None
    data, encoding = event.get("data"), event.get("encoding", "utf8")
    if (
        event.get("type") != "stdin"
        or not isinstance(data, str)
        or encoding not in ("utf8", "base64")
        or not set(event) <= {"type", "data", "encoding"}
    ):
        raise ApiError("INVALID_REQUEST", 'input messages are {"type": "stdin", "data": ...} or {"type": "eof"}')
    try:
        raw = base64.b64decode(data, validate=True) if encoding == "base64" else data.encode()
    except (binascii.Error, UnicodeEncodeError):
        raise ApiError("INVALID_REQUEST", "stdin data is not valid base64 or UTF-8") from None
    if len(raw) > STDIN_CHUNK_MAX:
        raise ApiError("PAYLOAD_TOO_LARGE", f"a stdin message carries at most {STDIN_CHUNK_MAX} bytes")
    return raw


async def _pump_input(ws: WebSocket, live: LiveIO, audit: dict[str, Any]) -> None:
    """Client input into the program's stdin until the client leaves (returns) or breaks the protocol
    (ApiError). Awaiting live.send is the back-pressure: nothing more is read off the socket meanwhile.
    `audit` keeps the size and digest of what was sent, for the record."""
    digest = hashlib.sha256()
    ended = False
    while True:
        message = await ws.receive()
        if message["type"] == "websocket.disconnect":
            return
        data = _stdin_of(message)
        if ended:
            raise ApiError("INVALID_REQUEST", "input after eof")
        if data is None:
            ended = True
            await live.close()
        elif await live.send(data):
            digest.update(data)
            audit["live_stdin_bytes"] += len(data)
            audit["live_stdin_sha256"] = digest.hexdigest()


async def _fail(out: Output, error: ApiError) -> None:
    """A refusal: the `error` event, then a close with 4000 + its HTTP status."""
    body: dict[str, Any] = {"status": "failed", "error": error.code, "message": error.message}
    if error.error_id:
        body["id"] = error.error_id
    event = {"type": "error", "http_status": error.status, "retry_after": error.retry_after, "error": body}
    await out.send(event, RESULT_SEND_S)
    if not out.gone:
        with contextlib.suppress(WebSocketDisconnect, OSError, RuntimeError):
            await out.ws.close(4000 + error.status)


@router.websocket("/execute/stream")
async def execute_stream(ws: WebSocket) -> None:
    service = service_of_ws(ws)
    offered = ws.scope.get("subprotocols", [])
    try:
        place, who, hold, headers = await admit(service, ws)
    except Exception as e:
        await ws.accept(SUBPROTOCOL if SUBPROTOCOL in offered else None)
        await _fail(Output(ws, "utf8"), api_error(service, e))
        return
    try:
        await ws.accept(SUBPROTOCOL if SUBPROTOCOL in offered else None, [header(k, v) for k, v in headers.items()])
        await _session(service, ws, who, place)
    finally:
        place.release()
        hold.release()


def header(name: str, value: str) -> tuple[bytes, bytes]:
    return name.lower().encode(), value.encode()


def api_error(service: Service, exc: Exception) -> ApiError:
    """A refusal as it is; any other failure is an INTERNAL_ERROR, logged with an id to quote."""
    if isinstance(exc, ApiError):
        return exc
    error_id = service.internal_failure("internal error", exc)
    service.failures.add(type(exc).__name__)
    return ApiError("INTERNAL_ERROR", "internal error; quote this id to the operator", error_id=error_id)


async def _session(service: Service, ws: WebSocket, who: Caller, place: Place) -> None:
    """The request, its run with live stdio, then the result and the record (after the result is sent,
    or could not be)."""
    out = Output(ws, "utf8")
    try:
        body = await _request(service, ws)
    except _Gone:
        return
    except ApiError as e:
        await _fail(out, e)
        return
    out = Output(ws, body.output_encoding)
    live = LiveIO(out.on_output)
    audit: dict[str, Any] = {"stream": True, "live_stdin_bytes": 0, "live_stdin_sha256": hashlib.sha256().hexdigest()}
    try:
        # The block ends with the run: its box goes to teardown then, not after a slow client's result.
        with service.sandbox.recycling_deferred() as runs:
            run = asyncio.create_task(execution.execute(service, who, body, place, live=live, audit=audit))
            answer = await run_live(service, out, live, run, lambda: runs.started, _pump_input(ws, live, audit))
    except Exception as e:
        await _fail(out, api_error(service, e))
        return
    if answer is None:
        return
    result, write = answer
    try:
        await out.flush()
        await out.send({"type": "result", "result": result}, RESULT_SEND_S)
        if not out.gone:
            with contextlib.suppress(WebSocketDisconnect, OSError, RuntimeError):
                await ws.close(1000)
    finally:  # the run is recorded whether or not its client took the result
        await service.write_audit(write)


async def run_live(
    service: Service,
    out: Output,
    live: LiveIO,
    run: asyncio.Task[tuple[dict[str, Any], AuditWrite]],
    started: Callable[[], bool],
    pump_input: Any,
) -> tuple[dict[str, Any], AuditWrite] | None:
    """The run's answer and audit write, with the client's input pumped in meanwhile; None when the
    client left before the run took a slot (the run is dropped). ApiError: a refusal to send."""
    pump = asyncio.create_task(pump_input)
    try:
        await asyncio.wait({run, pump}, return_when=asyncio.FIRST_COMPLETED)
        if pump.done() and not run.done():
            problem = pump.exception()
            if isinstance(problem, ApiError):  # a bad input message: told, then treated as gone
                await _fail(out, problem)
            elif problem is not None:
                raise problem
            out.gone = True
            if not started():
                run.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await run
                service.reject("client_gone")
                log.info("stream dropped: its client left before its run started")
                return None
            live.abort()  # input ends now; the run goes on to its end, recorded
        return await run
    except asyncio.CancelledError:
        run.cancel()
        raise
    finally:
        pump.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await pump
