"""Python SDK for the Stockade HTTP API, synchronous (`Client`) and asynchronous (`AsyncClient`).

The clients and their sans-IO core; the errors are in errors.py, the request and result types in
types.py, and `stockade.client` exports the lot.

Both clients share one sans-IO core: each API call is a generator that yields what it needs done
(an HTTP call or a pause before a retry) and gets the HTTP response back. The two clients only
differ in how they perform those steps, so request building, response parsing, error mapping and
the retry policy exist once.
"""

from __future__ import annotations

import os
import time
from collections.abc import Awaitable, Callable, Generator, Iterable, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Self, TypeVar, Unpack, cast

import anyio
import httpx

from stockade import __version__
from stockade.client.errors import (
    ConnectionFailed,
    Forbidden,
    InternalError,
    InvalidRequest,
    LimitOutOfRange,
    Overloaded,
    PayloadTooLarge,
    QuotaExceeded,
    RateLimited,
    StockadeError,
    ToolchainMissing,
    Unauthenticated,
    UnexpectedResponse,
    UnknownLanguage,
    error_from_response,
    json_object,
)
from stockade.client.judging import AsyncProblems, JudgeOptions, JudgeResult, Problems
from stockade.client.judging import _Flows as _JudgeFlows
from stockade.client.stream import AsyncStream, Stream, StreamOptions, stream_url
from stockade.client.types import (
    CollectedFile,
    CompileStage,
    ExecutionResult,
    File,
    FilesArg,
    Limits,
    LimitsArg,
    OutputEncoding,
    Runtime,
    RuntimeRef,
    build_execute_body,
    parse_execution,
    parse_runtimes,
)
from stockade.client.workspaces import AsyncWorkspaces, WorkspaceInfo, Workspaces

__all__ = [
    "API_KEY_ENV",
    "AsyncClient",
    "AsyncWorkspaces",
    "Client",
    "CollectedFile",
    "CompileStage",
    "ConnectionFailed",
    "ExecutionResult",
    "File",
    "Forbidden",
    "InternalError",
    "InvalidRequest",
    "LimitOutOfRange",
    "Limits",
    "Overloaded",
    "PayloadTooLarge",
    "QuotaExceeded",
    "RateLimited",
    "Runtime",
    "RuntimeRef",
    "StockadeError",
    "ToolchainMissing",
    "Unauthenticated",
    "UnexpectedResponse",
    "UnknownLanguage",
    "WorkspaceInfo",
    "Workspaces",
]

API_KEY_ENV = "STOCKADE_API_KEY"
_USER_AGENT = f"stockade-python/{__version__}"
# Extra read time on top of the run's own wall limits, for queueing and sandbox setup.
_EXECUTION_SLACK_S = 5.0

T = TypeVar("T")


def _execute_timeout(body: Mapping[str, Any], base: float | None) -> float | None:
    """A read timeout long enough for the limits the request asks for."""
    if base is None:
        return None
    wall_s = 0.0
    for key in ("limits", "compile_limits"):
        wall_ms = body.get(key, {}).get("wall_ms")
        if isinstance(wall_ms, int | float):
            wall_s += wall_ms / 1000
    return max(base, wall_s + _EXECUTION_SLACK_S) if wall_s else base


# --------------------------------------------------------------------------------------------
# Sans-IO call flows


@dataclass(frozen=True)
class _Call:
    method: str
    path: str
    body: Mapping[str, Any] | None = None
    timeout: float | None = None
    content: bytes | None = None  # a raw body (a workspace file) instead of JSON


@dataclass(frozen=True)
class _Sleep:
    seconds: float


# A flow yields steps; it is sent the httpx.Response after a _Call and None after a _Sleep.
_Flow = Generator[_Call | _Sleep, httpx.Response | None, T]


def _connection_failed(request: httpx.Request, exc: httpx.TransportError) -> ConnectionFailed:
    url = str(request.url)
    if isinstance(exc, httpx.TimeoutException):
        reason = f"timed out ({type(exc).__name__})"
    else:
        reason = str(exc) or type(exc).__name__
    return ConnectionFailed(f"could not reach Stockade at {url}: {reason}", url=url)


class _BaseClient:
    """Configuration plus the call flows; subclasses only perform the steps."""

    def __init__(
        self,
        base_url: str,
        api_key: str | None,
        timeout: float | None,
        retries: int,
        retry_budget_s: float,
    ) -> None:
        if retries < 0 or retry_budget_s < 0:
            raise ValueError("retries and retry_budget_s must not be negative")
        if api_key is None:
            api_key = os.environ.get(API_KEY_ENV) or None
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.retries = retries
        self.retry_budget_s = retry_budget_s
        self._headers = {"User-Agent": _USER_AGENT, "Accept": "application/json"}
        if api_key:
            self._headers["Authorization"] = f"Bearer {api_key}"

    def _retry_delay(self, error: StockadeError, attempt: int, waited: float) -> float | None:
        """Seconds to wait before the next attempt, or None to give up with `error`."""
        if not isinstance(error, RateLimited | Overloaded) or attempt >= self.retries:
            return None
        delay = error.retry_after if error.retry_after is not None else min(0.5 * 2**attempt, 8.0)
        if waited + delay > self.retry_budget_s:
            return None
        return delay

    def _call_flow(self, call: _Call, retry: bool = True) -> _Flow[httpx.Response]:
        """Perform `call`, retrying throttling answers; returns the success response."""
        waited = 0.0
        attempt = 0
        while True:
            response = yield call
            assert response is not None
            if response.is_success:
                return response
            error = error_from_response(response)
            delay = self._retry_delay(error, attempt, waited) if retry else None
            if delay is None:
                raise error
            attempt += 1
            waited += delay
            yield _Sleep(delay)

    def _submit_flow(self, body: dict[str, Any]) -> _Flow[ExecutionResult]:
        call = _Call("POST", "/v1/execute", body, _execute_timeout(body, self.timeout))
        response = yield from self._call_flow(call)
        data = json_object(response)
        if data.get("status") == "failed":
            # Defensive: a failure must never pass for a verdict, whatever HTTP status it came with.
            raise error_from_response(response)
        return parse_execution(data)

    def _runtimes_flow(self) -> _Flow[list[Runtime]]:
        response = yield from self._call_flow(_Call("GET", "/v1/runtimes"))
        return parse_runtimes(json_object(response))

    def _probe_flow(self, path: str, want: str) -> _Flow[bool]:
        """Health/readiness probes: any non-success answer means False, no retries."""
        response = yield _Call("GET", path)
        assert response is not None
        if not response.is_success:
            return False
        try:
            data = response.json()
        except ValueError:
            return False
        return isinstance(data, dict) and data.get("status") == want


# --------------------------------------------------------------------------------------------
# Clients


class Client(_BaseClient):
    """Synchronous Stockade client.

    >>> with Client("http://127.0.0.1:8000") as c:          # doctest: +SKIP
    ...     print(c.submit("python", "print(1)").stdout)
    """

    def __init__(
        self,
        base_url: str,
        api_key: str | None = None,
        timeout: float | None = 30.0,
        retries: int = 3,
        retry_budget_s: float = 30.0,
        transport: httpx.BaseTransport | None = None,
        *,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        super().__init__(base_url, api_key, timeout, retries, retry_budget_s)
        self._sleep = sleep
        self._http = httpx.Client(base_url=self.base_url, headers=self._headers, timeout=timeout, transport=transport)
        self.workspaces = Workspaces(self)  # client.workspaces.create(), .put(), .read(), ...
        self.problems = Problems(self)  # stored problems for judge(problem=...) (docs/judge.md)

    def _run(self, flow: _Flow[T]) -> T:
        try:
            step = next(flow)
            while True:
                if isinstance(step, _Sleep):
                    self._sleep(step.seconds)
                    step = flow.send(None)
                else:
                    step = flow.send(self._send(step))
        except StopIteration as done:
            return cast(T, done.value)
        finally:
            flow.close()

    def _send(self, call: _Call) -> httpx.Response:
        request = self._http.build_request(
            call.method,
            call.path,
            json=call.body,
            content=call.content,
            timeout=call.timeout if call.timeout is not None else httpx.USE_CLIENT_DEFAULT,
        )
        try:
            return self._http.send(request)
        except httpx.TransportError as exc:
            raise _connection_failed(request, exc) from exc

    def submit(
        self,
        language: str,
        code: str | None = None,
        *,
        files: FilesArg | None = None,
        entry: str | None = None,
        stdin: str | None = None,
        args: Iterable[str] | None = None,
        limits: LimitsArg | None = None,
        compile_limits: LimitsArg | None = None,
        version: str | None = None,
        output_encoding: OutputEncoding | None = None,
        collect: Iterable[str] | None = None,
        workspace: str | None = None,
    ) -> ExecutionResult:
        """Run `code` (or `files` + `entry`) and return its result, whatever the verdict. `collect`: globs
        of the files to return (`result.files`); `workspace`: a workspace id (docs/agents.md)."""
        body = build_execute_body(
            language,
            code,
            files=files,
            entry=entry,
            stdin=stdin,
            args=args,
            limits=limits,
            compile_limits=compile_limits,
            version=version,
            output_encoding=output_encoding,
            collect=collect,
            workspace=workspace,
        )
        return self._run(self._submit_flow(body))

    def judge(self, language: str, code: str | None = None, **options: Unpack[JudgeOptions]) -> JudgeResult:
        """Judge `code` (or `files`) against `tests=` with a `checker=` or `interactor=`, or against a
        stored problem (`problem=` its id); every verdict is a result (docs/judge.md, judging.py)."""
        return self._run(_JudgeFlows(self).judge(language, code, options))  # type: ignore[no-any-return]

    def stream(self, language: str, code: str | None = None, **options: Unpack[StreamOptions]) -> Stream:
        """Run `code` with its output as events while it runs and its stdin sent as you go (stream.py)."""
        body = build_execute_body(language, code, **options)
        return Stream(stream_url(self.base_url), self._headers, body, self.timeout)

    def runtimes(self) -> list[Runtime]:
        return self._run(self._runtimes_flow())

    def health(self) -> bool:
        """True when GET /healthz answers {"status": "ok"}; False otherwise, unreachable included."""
        try:
            return self._run(self._probe_flow("/healthz", "ok"))
        except ConnectionFailed:
            return False

    def ready(self) -> bool:
        """True when GET /readyz answers 200 {"status": "ready"}."""
        try:
            return self._run(self._probe_flow("/readyz", "ready"))
        except ConnectionFailed:
            return False

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class AsyncClient(_BaseClient):
    """Asynchronous Stockade client (asyncio or trio, via anyio); same methods as `Client`."""

    def __init__(
        self,
        base_url: str,
        api_key: str | None = None,
        timeout: float | None = 30.0,
        retries: int = 3,
        retry_budget_s: float = 30.0,
        transport: httpx.AsyncBaseTransport | None = None,
        *,
        sleep: Callable[[float], Awaitable[None]] = anyio.sleep,
    ) -> None:
        super().__init__(base_url, api_key, timeout, retries, retry_budget_s)
        self._sleep = sleep
        self._http = httpx.AsyncClient(
            base_url=self.base_url, headers=self._headers, timeout=timeout, transport=transport
        )
        self.workspaces = AsyncWorkspaces(self)
        self.problems = AsyncProblems(self)

    async def _run(self, flow: _Flow[T]) -> T:
        try:
            step = next(flow)
            while True:
                if isinstance(step, _Sleep):
                    await self._sleep(step.seconds)
                    step = flow.send(None)
                else:
                    step = flow.send(await self._send(step))
        except StopIteration as done:
            return cast(T, done.value)
        finally:
            flow.close()

    async def _send(self, call: _Call) -> httpx.Response:
        request = self._http.build_request(
            call.method,
            call.path,
            json=call.body,
            content=call.content,
            timeout=call.timeout if call.timeout is not None else httpx.USE_CLIENT_DEFAULT,
        )
        try:
            return await self._http.send(request)
        except httpx.TransportError as exc:
            raise _connection_failed(request, exc) from exc

    async def submit(
        self,
        language: str,
        code: str | None = None,
        *,
        files: FilesArg | None = None,
        entry: str | None = None,
        stdin: str | None = None,
        args: Iterable[str] | None = None,
        limits: LimitsArg | None = None,
        compile_limits: LimitsArg | None = None,
        version: str | None = None,
        output_encoding: OutputEncoding | None = None,
        collect: Iterable[str] | None = None,
        workspace: str | None = None,
    ) -> ExecutionResult:
        """Run `code` (or `files` + `entry`) and return its result, whatever the verdict. `collect`: globs
        of the files to return (`result.files`); `workspace`: a workspace id (docs/agents.md)."""
        body = build_execute_body(
            language,
            code,
            files=files,
            entry=entry,
            stdin=stdin,
            args=args,
            limits=limits,
            compile_limits=compile_limits,
            version=version,
            output_encoding=output_encoding,
            collect=collect,
            workspace=workspace,
        )
        return await self._run(self._submit_flow(body))

    async def judge(self, language: str, code: str | None = None, **options: Unpack[JudgeOptions]) -> JudgeResult:
        """Client.judge, awaited."""
        return await self._run(_JudgeFlows(self).judge(language, code, options))

    def stream(self, language: str, code: str | None = None, **options: Unpack[StreamOptions]) -> AsyncStream:
        """Client.stream, on asyncio: `async with client.stream(...) as run: async for event in run`."""
        body = build_execute_body(language, code, **options)
        return AsyncStream(stream_url(self.base_url), self._headers, body, self.timeout)

    async def runtimes(self) -> list[Runtime]:
        return await self._run(self._runtimes_flow())

    async def health(self) -> bool:
        try:
            return await self._run(self._probe_flow("/healthz", "ok"))
        except ConnectionFailed:
            return False

    async def ready(self) -> bool:
        try:
            return await self._run(self._probe_flow("/readyz", "ready"))
        except ConnectionFailed:
            return False

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()
