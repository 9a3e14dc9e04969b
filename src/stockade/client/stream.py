"""`Client.stream()` and `AsyncClient.stream()`: one execution over GET /v1/execute/stream (a WebSocket,
docs/api.md "Streaming and interactive stdin"), its output as events while it runs, its stdin sent as
you go.

    with client.stream("python", code) as run:
        for event in run:                 # stdout and stderr chunks as they come, then the result
            if event.type == "stdout" and event.text.endswith("? "):
                run.send("42\\n")
            elif event.type == "result":
                print(event.result.status)
        run.close()                       # end of input (EOF), when the program reads to the end

`send()` and `close()` (end of input) may be called at any time, from any thread for the sync one.
A refusal raises the same StockadeError subclass as `submit()`; there are no retries. The async one
runs on asyncio (the websockets library), not trio. The `websockets` import is deferred to the first
stream, so the SDK's import (and the CLI's start-up) does not pay for it.
"""

from __future__ import annotations

import base64
import contextlib
import json
from collections.abc import AsyncIterator, Iterator, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal, Self, TypedDict

import httpx

from stockade.client.errors import ConnectionFailed, StockadeError, UnexpectedResponse, error_from_response
from stockade.client.types import (
    ExecutionResult,
    FilesArg,
    LimitsArg,
    OutputEncoding,
    parse_execution,
)

if TYPE_CHECKING:
    from collections.abc import Iterable

    from websockets.asyncio.client import ClientConnection as AsyncConnection
    from websockets.sync.client import ClientConnection

STREAM_PATH = "/v1/execute/stream"
SUBPROTOCOL = "stockade.v1"


class StreamOptions(TypedDict, total=False):
    """submit()'s keyword arguments, for stream()."""

    files: FilesArg | None
    entry: str | None
    stdin: str | None
    args: Iterable[str] | None
    limits: LimitsArg | None
    compile_limits: LimitsArg | None
    version: str | None
    output_encoding: OutputEncoding | None


@dataclass(frozen=True)
class StreamEvent:
    """One event of a stream: a chunk of `stdout` or `stderr` (`data` its bytes, `text` their UTF-8
    decoding), or the final `result` (the same ExecutionResult as submit()'s)."""

    type: Literal["stdout", "stderr", "result"]
    data: bytes = b""
    text: str = ""
    result: ExecutionResult | None = None


def stream_url(base_url: str) -> str:
    """ws(s)://... of the stream endpoint under an http(s) base URL."""
    if base_url.startswith("https://"):
        return "wss://" + base_url[len("https://") :] + STREAM_PATH
    if base_url.startswith("http://"):
        return "ws://" + base_url[len("http://") :] + STREAM_PATH
    raise ValueError(f"base_url must start with http:// or https://: {base_url!r}")


def stdin_message(data: str | bytes) -> str:
    """A `stdin` input message: text as it is, bytes as base64."""
    if isinstance(data, str):
        return json.dumps({"type": "stdin", "data": data})
    return json.dumps({"type": "stdin", "data": base64.b64encode(data).decode(), "encoding": "base64"})


EOF_MESSAGE = json.dumps({"type": "eof"})


def _synthetic(url: str, status: int, body: bytes, headers: Mapping[str, str] | None = None) -> httpx.Response:
    return httpx.Response(status, headers=headers, content=body, request=httpx.Request("GET", url))


def parse_event(url: str, raw: str | bytes, encoding: str) -> StreamEvent:
    """One server message as an event; StockadeError for an `error` event or anything off the contract."""
    try:
        event = json.loads(raw)
        kind = event["type"]
        if kind in ("stdout", "stderr"):
            if encoding == "base64":
                data = base64.b64decode(event["data"], validate=True)
                return StreamEvent(kind, data, data.decode("utf-8", "replace"))
            text = str(event["data"])
            return StreamEvent(kind, text.encode("utf-8", "surrogatepass"), text)
        if kind == "result":
            return StreamEvent("result", result=parse_execution(event["result"]))
        if kind == "error":
            retry = event.get("retry_after")
            headers = {"Retry-After": str(retry)} if retry is not None else None
            body = json.dumps(event["error"]).encode()
            refusal = error_from_response(_synthetic(url, int(event["http_status"]), body, headers))
        else:
            raise ValueError(f"unknown event type {kind!r}")
    except (ValueError, KeyError, TypeError) as exc:
        text = raw if isinstance(raw, str) else raw.decode("utf-8", "replace")
        raise UnexpectedResponse(UnexpectedResponse.CODE, f"not a stream event from {url}: {text[:200]!r}") from exc
    raise refusal  # outside the try: a refusal is not a malformed event


def _closed_early(url: str, code: int | None) -> StockadeError:
    return ConnectionFailed(f"the stream from {url} ended before its result (close code {code})", url=url)


def _handshake_error(url: str, exc: Exception) -> StockadeError:
    """What connect() raised, as the SDK's errors: an HTTP answer (a server without streaming, a proxy)
    through error_from_response, anything else as ConnectionFailed."""
    from websockets.exceptions import InvalidStatus

    if isinstance(exc, InvalidStatus):
        r = exc.response
        return error_from_response(_synthetic(url, r.status_code, bytes(r.body or b""), dict(r.headers.raw_items())))
    return ConnectionFailed(f"could not open a stream to {url}: {exc or type(exc).__name__}", url=url)


class _Base:
    def __init__(self, url: str, headers: Mapping[str, str], body: dict[str, Any], timeout: float | None) -> None:
        self.url = url
        self.headers = dict(headers)
        self.body = body
        self.timeout = timeout
        self.encoding = str(body.get("output_encoding") or "utf8")
        self.result: ExecutionResult | None = None  # set once the result event has come

    def _event(self, raw: str | bytes) -> StreamEvent:
        event = parse_event(self.url, raw, self.encoding)
        if event.result is not None:
            self.result = event.result
        return event


class Stream(_Base):
    """A synchronous stream (Client.stream). Iterate for its events; it connects at `with` or first use."""

    _conn: ClientConnection | None = None

    def _connection(self) -> ClientConnection:
        if self._conn is None:
            from websockets.sync.client import connect

            try:
                conn = connect(
                    self.url,
                    additional_headers=self.headers,
                    subprotocols=[SUBPROTOCOL],  # type: ignore[list-item]
                    open_timeout=self.timeout,
                    max_size=None,  # a result carries the whole (capped) output, as POST /v1/execute's does
                    user_agent_header=None,
                ).__enter__()  # the connection itself; this object's `with` and disconnect() close it
            except Exception as exc:
                raise _handshake_error(self.url, exc) from exc
            self._conn = conn
            from websockets.exceptions import ConnectionClosed

            # A refusal may close the stream before the request is sent: its error event is read next.
            with contextlib.suppress(ConnectionClosed):
                conn.send(json.dumps(self.body))
        return self._conn

    def __iter__(self) -> Iterator[StreamEvent]:
        from websockets.exceptions import ConnectionClosed

        conn = self._connection()
        while self.result is None:
            try:
                raw = conn.recv()
            except ConnectionClosed as exc:
                raise _closed_early(self.url, exc.rcvd.code if exc.rcvd else None) from exc
            yield self._event(raw)

    def send(self, data: str | bytes) -> bool:
        """Send `data` to the program's stdin (text as UTF-8, bytes exactly), after what was sent before.
        False when the stream is closed already (the run is over, or refused: iterating says which)."""
        return self._send(stdin_message(data))

    def close(self) -> bool:
        """End of input: the program reads EOF once it has read what was sent. False as for send()."""
        return self._send(EOF_MESSAGE)

    def _send(self, message: str) -> bool:
        from websockets.exceptions import ConnectionClosed

        try:
            self._connection().send(message)
        except ConnectionClosed:
            return False
        return True

    def disconnect(self) -> None:
        """Leave: the program's input ends and its output is no longer sent; the run still ends under its
        limits and is recorded (or, not yet started, is dropped)."""
        if self._conn is not None:
            self._conn.close()

    def __enter__(self) -> Self:
        self._connection()
        return self

    def __exit__(self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None) -> None:
        self.disconnect()


class AsyncStream(_Base):
    """An asynchronous stream (AsyncClient.stream), on asyncio: `async with` and `async for`."""

    _conn: AsyncConnection | None = None

    async def _connection(self) -> AsyncConnection:
        if self._conn is None:
            from websockets.asyncio.client import connect

            try:
                conn = await connect(
                    self.url,
                    additional_headers=self.headers,
                    subprotocols=[SUBPROTOCOL],  # type: ignore[list-item]
                    open_timeout=self.timeout,
                    max_size=None,
                    user_agent_header=None,
                )
            except Exception as exc:
                raise _handshake_error(self.url, exc) from exc
            self._conn = conn
            from websockets.exceptions import ConnectionClosed

            with contextlib.suppress(ConnectionClosed):
                await conn.send(json.dumps(self.body))
        return self._conn

    async def __aiter__(self) -> AsyncIterator[StreamEvent]:
        from websockets.exceptions import ConnectionClosed

        conn = await self._connection()
        while self.result is None:
            try:
                raw = await conn.recv()
            except ConnectionClosed as exc:
                raise _closed_early(self.url, exc.rcvd.code if exc.rcvd else None) from exc
            yield self._event(raw)

    async def send(self, data: str | bytes) -> bool:
        """Stream.send, awaited."""
        return await self._send(stdin_message(data))

    async def close(self) -> bool:
        """Stream.close (end of input), awaited."""
        return await self._send(EOF_MESSAGE)

    async def _send(self, message: str) -> bool:
        from websockets.exceptions import ConnectionClosed

        try:
            await (await self._connection()).send(message)
        except ConnectionClosed:
            return False
        return True

    async def disconnect(self) -> None:
        """Stream.disconnect, awaited."""
        if self._conn is not None:
            await self._conn.close()

    async def __aenter__(self) -> Self:
        await self._connection()
        return self

    async def __aexit__(self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None) -> None:
        await self.disconnect()
