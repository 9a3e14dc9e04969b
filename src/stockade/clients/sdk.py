"""Python SDK for the Stockade HTTP API, synchronous (`Client`) and asynchronous (`AsyncClient`).

Both clients share one sans-IO core: each API call is a generator that yields what it needs done
(an HTTP call or a pause before a retry) and gets the HTTP response back. The two clients only
differ in how they perform those steps, so request building, response parsing, error mapping and
the retry policy exist once.
"""

from __future__ import annotations

import base64
import binascii
import email.utils
import math
import os
import time
from collections.abc import Awaitable, Callable, Generator, Iterable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, Literal, Self, TypeVar, cast

import anyio
import httpx

from stockade import __version__

__all__ = [
    "API_KEY_ENV",
    "AsyncClient",
    "Client",
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
]

API_KEY_ENV = "STOCKADE_API_KEY"
_USER_AGENT = f"stockade-python/{__version__}"
# Extra read time on top of the run's own wall limits, for queueing and sandbox setup.
_EXECUTION_SLACK_S = 5.0

T = TypeVar("T")


# --------------------------------------------------------------------------------------------
# Errors


class StockadeError(Exception):
    """An API call that did not produce an execution. `code` is the API's error code."""

    CODE = ""

    def __init__(
        self,
        code: str,
        message: str,
        status_code: int | None = None,
        error_id: str | None = None,
        *,
        retry_after: float | None = None,
    ) -> None:
        text = f"{code}: {message}"
        if error_id:
            text += f" (error id {error_id})"
        super().__init__(text)
        self.code = code
        self.message = message
        self.status_code = status_code
        self.error_id = error_id
        # Seconds the server asked us to wait (Retry-After), when it said so.
        self.retry_after = retry_after


class InvalidRequest(StockadeError):
    CODE = "INVALID_REQUEST"


class UnknownLanguage(StockadeError):
    CODE = "UNKNOWN_LANGUAGE"


class ToolchainMissing(StockadeError):
    CODE = "TOOLCHAIN_MISSING"


class LimitOutOfRange(StockadeError):
    CODE = "LIMIT_OUT_OF_RANGE"


class PayloadTooLarge(StockadeError):
    CODE = "PAYLOAD_TOO_LARGE"


class Unauthenticated(StockadeError):
    CODE = "UNAUTHENTICATED"


class Forbidden(StockadeError):
    CODE = "FORBIDDEN"


class RateLimited(StockadeError):
    CODE = "RATE_LIMITED"


class QuotaExceeded(StockadeError):
    CODE = "QUOTA_EXCEEDED"


class Overloaded(StockadeError):
    CODE = "OVERLOADED"


class InternalError(StockadeError):
    CODE = "INTERNAL_ERROR"


class UnexpectedResponse(StockadeError):
    """The server answered something outside the API contract (wrong URL, proxy page, bad JSON)."""

    CODE = "UNEXPECTED_RESPONSE"


class ConnectionFailed(StockadeError):
    """No HTTP answer at all: refused, DNS failure, TLS error, timeout..."""

    CODE = "CONNECTION_FAILED"

    def __init__(self, message: str, *, url: str) -> None:
        super().__init__(self.CODE, message)
        self.url = url


_ERRORS_BY_CODE: dict[str, type[StockadeError]] = {
    cls.CODE: cls
    for cls in (
        InvalidRequest,
        UnknownLanguage,
        ToolchainMissing,
        LimitOutOfRange,
        PayloadTooLarge,
        Unauthenticated,
        Forbidden,
        RateLimited,
        QuotaExceeded,
        Overloaded,
        InternalError,
    )
}

# Used only when a body carries no error code (e.g. a reverse proxy's own 503 page).
_ERRORS_BY_STATUS: dict[int, type[StockadeError]] = {
    401: Unauthenticated,
    403: Forbidden,
    413: PayloadTooLarge,
    429: RateLimited,
    500: InternalError,
    503: Overloaded,
}


# --------------------------------------------------------------------------------------------
# Request and result types


@dataclass(frozen=True)
class Limits:
    """Resource limits for one stage; unset fields take the server's defaults."""

    cpu_ms: int | None = None
    wall_ms: int | None = None
    memory_mb: int | None = None
    processes: int | None = None
    output_kb: int | None = None
    file_size_kb: int | None = None

    def to_json(self) -> dict[str, int]:
        return {key: value for key, value in asdict(self).items() if value is not None}


@dataclass(frozen=True)
class File:
    """A source file. `bytes` content is sent base64-encoded, `str` content as UTF-8."""

    name: str
    content: str | bytes

    def to_json(self) -> dict[str, str]:
        if isinstance(self.content, str):
            return {"name": self.name, "content": self.content, "encoding": "utf8"}
        encoded = base64.b64encode(bytes(self.content)).decode("ascii")
        return {"name": self.name, "content": encoded, "encoding": "base64"}


@dataclass(frozen=True)
class CompileStage:
    status: str
    stdout: str
    stderr: str
    exit_code: int | None
    time_ms: int
    wall_time_ms: int
    memory_kb: int

    @property
    def ok(self) -> bool:
        return self.status == "ok"


@dataclass(frozen=True)
class RuntimeRef:
    """The language and toolchain version an execution actually ran with."""

    language: str
    version: str | None


@dataclass(frozen=True)
class ExecutionResult:
    """One execution. Any verdict (timeout, runtime_error...) is a result, not an exception."""

    execution_id: str
    status: str
    stdout: str
    stderr: str
    exit_code: int | None
    signal: int | None
    timeout_kind: str | None
    time_ms: int
    wall_time_ms: int
    memory_kb: int
    compile: CompileStage | None
    runtime: RuntimeRef
    stdout_truncated: bool = False
    stderr_truncated: bool = False
    output_encoding: str = "utf8"
    # Exact output bytes; `stdout`/`stderr` are their UTF-8 decoding (invalid bytes replaced).
    stdout_bytes: bytes = field(default=b"", repr=False)
    stderr_bytes: bytes = field(default=b"", repr=False)
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def ok(self) -> bool:
        return self.status == "ok"


@dataclass(frozen=True)
class Runtime:
    """One entry of GET /v1/runtimes."""

    language: str
    name: str
    aliases: tuple[str, ...]
    extensions: tuple[str, ...]
    version: str | None
    available: bool
    compiled: bool
    hello: str


LimitsArg = Limits | Mapping[str, int]
FilesArg = Mapping[str, str | bytes] | Iterable[File]
OutputEncoding = Literal["utf8", "base64"]


# --------------------------------------------------------------------------------------------
# Request building and response parsing (shared by both clients)


def _limits_json(limits: LimitsArg) -> dict[str, int]:
    if isinstance(limits, Limits):
        return limits.to_json()
    return {str(key): value for key, value in limits.items() if value is not None}


def _files_json(files: FilesArg) -> list[dict[str, str]]:
    items: Iterable[File] = (
        [File(name, content) for name, content in files.items()] if isinstance(files, Mapping) else files
    )
    out = []
    for item in items:
        if not isinstance(item, File):
            raise TypeError(f"files must be a mapping of name to content or File objects, got {item!r}")
        if not isinstance(item.content, str | bytes | bytearray | memoryview):
            raise TypeError(f"content of {item.name!r} must be str or bytes")
        out.append(item.to_json())
    if not out:
        raise ValueError("files must not be empty")
    return out


def build_execute_body(
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
) -> dict[str, Any]:
    """The JSON body of POST /v1/execute. Raises ValueError/TypeError before anything is sent."""
    if (code is None) == (files is None):
        raise ValueError("pass exactly one of code= or files=")
    if code is not None and entry is not None:
        raise ValueError("entry= only applies with files=")
    body: dict[str, Any] = {"language": language, "version": version}
    if code is not None:
        body["code"] = code
    else:
        assert files is not None
        body["files"] = _files_json(files)
        if entry is not None:
            body["entry"] = entry
    if stdin is not None:
        body["stdin"] = stdin
    if args is not None:
        # A bare string would silently become one argument per character.
        if isinstance(args, str | bytes):
            raise TypeError("args must be a list of strings, not a single string")
        body["args"] = [str(arg) for arg in args]
    if limits is not None:
        body["limits"] = _limits_json(limits)
    if compile_limits is not None:
        body["compile_limits"] = _limits_json(compile_limits)
    if output_encoding is not None:
        body["output_encoding"] = output_encoding
    return body


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


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Retry-After as seconds: either delta-seconds or an HTTP date."""
    if value is None or not value.strip():
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - (now or datetime.now(UTC))).total_seconds()
    if math.isnan(seconds) or math.isinf(seconds):
        return None
    return max(0.0, seconds)


def error_from_response(response: httpx.Response) -> StockadeError:
    """Map a non-success HTTP response to the matching exception."""
    status = response.status_code
    retry_after = parse_retry_after(response.headers.get("retry-after"))
    try:
        data = response.json()
    except ValueError:
        data = None
    if isinstance(data, dict) and isinstance(data.get("error"), str):
        code = data["error"]
        message = str(data.get("message") or code)
        error_id = data.get("id")
        cls = _ERRORS_BY_CODE.get(code, StockadeError)
        return cls(
            code,
            message,
            status,
            str(error_id) if error_id is not None else None,
            retry_after=retry_after,
        )
    fallback = _ERRORS_BY_STATUS.get(status)
    snippet = response.text[:200].strip() or response.reason_phrase
    if fallback is not None:
        return fallback(fallback.CODE, f"HTTP {status}: {snippet}", status, retry_after=retry_after)
    return UnexpectedResponse(
        UnexpectedResponse.CODE,
        f"HTTP {status} from {response.request.url} is not a Stockade API answer: {snippet}",
        status,
    )


def _json_object(response: httpx.Response) -> dict[str, Any]:
    try:
        data = response.json()
    except ValueError:
        data = None
    if not isinstance(data, dict):
        raise UnexpectedResponse(
            UnexpectedResponse.CODE,
            f"expected a JSON object from {response.request.url}, got: {response.text[:200]!r}",
            response.status_code,
        )
    return data


def _decode_output(text: str, encoding: str) -> tuple[str, bytes]:
    if encoding == "base64":
        try:
            raw = base64.b64decode(text, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise ValueError(f"output is not valid base64: {exc}") from exc
        return raw.decode("utf-8", errors="replace"), raw
    return text, text.encode("utf-8", errors="surrogatepass")


def _opt_int(value: Any) -> int | None:
    return None if value is None else int(value)


def parse_execution(data: Mapping[str, Any]) -> ExecutionResult:
    """Build an ExecutionResult from a 200 body of POST /v1/execute."""
    try:
        encoding = str(data.get("output_encoding") or "utf8")
        stdout, stdout_bytes = _decode_output(str(data.get("stdout") or ""), encoding)
        stderr, stderr_bytes = _decode_output(str(data.get("stderr") or ""), encoding)
        compile_data = data.get("compile")
        compile_stage = None
        if compile_data is not None:
            compile_stage = CompileStage(
                status=str(compile_data["status"]),
                stdout=str(compile_data.get("stdout") or ""),
                stderr=str(compile_data.get("stderr") or ""),
                exit_code=_opt_int(compile_data.get("exit_code")),
                time_ms=int(compile_data.get("time_ms") or 0),
                wall_time_ms=int(compile_data.get("wall_time_ms") or 0),
                memory_kb=int(compile_data.get("memory_kb") or 0),
            )
        runtime_data = data.get("runtime") or {}
        version = runtime_data.get("version")
        return ExecutionResult(
            execution_id=str(data.get("execution_id") or ""),
            status=str(data["status"]),
            stdout=stdout,
            stderr=stderr,
            exit_code=_opt_int(data.get("exit_code")),
            signal=_opt_int(data.get("signal")),
            timeout_kind=data.get("timeout_kind"),
            time_ms=int(data.get("time_ms") or 0),
            wall_time_ms=int(data.get("wall_time_ms") or 0),
            memory_kb=int(data.get("memory_kb") or 0),
            compile=compile_stage,
            runtime=RuntimeRef(
                language=str(runtime_data.get("language") or ""),
                version=None if version is None else str(version),
            ),
            stdout_truncated=bool(data.get("stdout_truncated", False)),
            stderr_truncated=bool(data.get("stderr_truncated", False)),
            output_encoding=encoding,
            stdout_bytes=stdout_bytes,
            stderr_bytes=stderr_bytes,
            raw=dict(data),
        )
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise UnexpectedResponse(
            UnexpectedResponse.CODE, f"malformed execution result ({exc!r}): {dict(data)!r:.300}"
        ) from exc


def parse_runtimes(data: Mapping[str, Any]) -> list[Runtime]:
    """Build the Runtime list from a GET /v1/runtimes body."""
    try:
        out = []
        for item in data["runtimes"]:
            version = item.get("version")
            out.append(
                Runtime(
                    language=str(item["language"]),
                    name=str(item.get("name") or item["language"]),
                    aliases=tuple(str(a) for a in item.get("aliases") or ()),
                    extensions=tuple(str(e) for e in item.get("extensions") or ()),
                    version=None if version is None else str(version),
                    available=bool(item.get("available", True)),
                    compiled=bool(item.get("compiled", False)),
                    hello=str(item.get("hello") or ""),
                )
            )
        return out
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise UnexpectedResponse(
            UnexpectedResponse.CODE, f"malformed runtimes list ({exc!r}): {dict(data)!r:.300}"
        ) from exc


# --------------------------------------------------------------------------------------------
# Sans-IO call flows


@dataclass(frozen=True)
class _Call:
    method: str
    path: str
    body: Mapping[str, Any] | None = None
    timeout: float | None = None


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
        data = _json_object(response)
        if data.get("status") == "failed":
            # Defensive: a failure must never pass for a verdict, whatever HTTP status it came with.
            raise error_from_response(response)
        return parse_execution(data)

    def _runtimes_flow(self) -> _Flow[list[Runtime]]:
        response = yield from self._call_flow(_Call("GET", "/v1/runtimes"))
        return parse_runtimes(_json_object(response))

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
    ) -> ExecutionResult:
        """Run `code` (or `files` + `entry`) and return its result, whatever the verdict."""
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
        )
        return self._run(self._submit_flow(body))

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
    ) -> ExecutionResult:
        """Run `code` (or `files` + `entry`) and return its result, whatever the verdict."""
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
        )
        return await self._run(self._submit_flow(body))

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
