"""What the SDK sends and gets back: limits, files, results and runtimes, with the building of an execute
body and the parsing of the answers (shared by both clients)."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from stockade.client.errors import UnexpectedResponse


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
    # With collect=: the files returned, and the matching paths that were not ({"path", "reason"}).
    files: tuple[CollectedFile, ...] = ()
    files_skipped: tuple[Mapping[str, str], ...] = ()
    # With workspace=: {"id", "saved", "files", "bytes", "skipped", "error"} (docs/agents.md).
    workspace: Mapping[str, Any] | None = None

    @property
    def ok(self) -> bool:
        return self.status == "ok"


@dataclass(frozen=True)
class CollectedFile:
    """A file the run left in /box, returned by `collect`."""

    path: str
    content: bytes = field(repr=False)
    executable: bool = False


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
    collect: Iterable[str] | None = None,
    workspace: str | None = None,
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
    if collect is not None:
        if isinstance(collect, str | bytes):
            raise TypeError("collect must be a list of globs, not a single string")
        body["collect"] = [str(c) for c in collect]
    if workspace is not None:
        body["workspace"] = workspace
    return body


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
            files=tuple(
                CollectedFile(str(f["path"]), base64.b64decode(f["content"]), bool(f.get("executable")))
                for f in data.get("files") or ()
            ),
            files_skipped=tuple(dict(s) for s in data.get("files_skipped") or ()),
            workspace=data.get("workspace"),
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
