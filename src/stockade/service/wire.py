"""The HTTP contract's wire form: the models /openapi.json documents, the translation of a request body
into an engine request (`to_request`: sources, stdin, limits against the tenant's maxima), and of an
engine result into the response body (`response_body`, shared with the local CLI so both print the same
JSON)."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt, WithJsonSchema, create_model, model_validator

from stockade.engine import ExecutionRequest, ExecutionResult, LimitPolicy, SourceFile, StageLimits
from stockade.engine.limits import StagePolicy
from stockade.engine.outputs import Outputs
from stockade.runtimes.registry import Registry
from stockade.sandbox.netpolicy import NetworkPolicy
from stockade.sandbox.spec import BoxResult
from stockade.service.errors import ApiError
from stockade.service.tenants import Tenant

Encoding = Literal["utf8", "base64"]
# The bounds the schema documents: the engine's default policy, which the service runs with.
DEFAULT_POLICY = LimitPolicy()


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _limits_model(name: str, stage: StagePolicy) -> type[BaseModel]:
    """The wire form of the engine's StageLimits, field for field (its one declaration): strict integers
    (a JSON `true` or `"100"` is not a limit) whose schema carries the stage's bounds. The bounds are
    checked by the engine, as for every caller, so a value outside them is LIMIT_OUT_OF_RANGE."""
    fields: dict[str, Any] = {}
    for field_name, doc in StageLimits.docs().items():
        lo, hi = stage.bounds[field_name]
        bounded = Annotated[StrictInt, WithJsonSchema({"type": "integer", "minimum": lo, "maximum": hi})]
        fields[field_name] = (bounded | None, Field(None, description=doc))
    return create_model(
        name,
        __base__=_Strict,
        __doc__="Per-stage limits; omitted fields take the server default. Out of range is refused, never clamped.",
        __module__=__name__,
        **fields,
    )


if TYPE_CHECKING:  # models built at import: to mypy, any model
    RunLimitsIn = BaseModel
    CompileLimitsIn = BaseModel
else:
    RunLimitsIn = _limits_model("RunLimitsIn", DEFAULT_POLICY.run)
    CompileLimitsIn = _limits_model("CompileLimitsIn", DEFAULT_POLICY.compile)
LIMIT_FIELDS = ("limits", "compile_limits")  # the body's fields of these models


class FileIn(_Strict):
    name: str = Field(min_length=1, max_length=512, examples=["main.c"])
    content: str = Field(max_length=8 * 1024 * 1024)
    encoding: Encoding = "utf8"


class NetworkIn(_Strict):
    allow: list[Annotated[str, Field(max_length=260)]] = Field(
        max_length=64,
        description="Destinations the run may reach: names, name:port, *.suffix, networks; each within the"
        " tenant's allowlist (docs/network.md). [] = no network",
        examples=[["pypi.org", "files.pythonhosted.org:443"]],
    )


class NetworkOut(BaseModel):
    connections: int = Field(description="Connections the egress proxy made for the run")
    refused: int = Field(description="Requests it refused: outside the allowlist, or over a cap")
    bytes_out: int
    bytes_in: int
    capped: bool = Field(description="A connection was cut at the run's byte cap")
    refusals: list[str] = Field(description="The first few refusals' reasons")


class ExecuteIn(_Strict):
    # The schema says what _one_source checks: exactly one of `code` (a string) and `files` (a list).
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "oneOf": [
                {"required": ["code"], "properties": {"code": {"type": "string"}}},
                {"required": ["files"], "properties": {"files": {"type": "array"}}},
            ]
        },
    )

    language: str = Field(min_length=1, max_length=64, examples=["python"])
    version: str | None = Field(
        None,
        max_length=64,
        description="Toolchain version: exact (3.11.2), a prefix (3.11, 3.x) or a semver range (^3.9, >=3.8 <3.12);"
        " default the newest available. VERSION_UNAVAILABLE lists the available ones",
    )
    code: str | None = Field(None, max_length=8 * 1024 * 1024, examples=["print(21*2)"])
    files: list[FileIn] | None = Field(None, max_length=64)
    entry: str | None = Field(None, max_length=512, description="Entry file among `files`")
    stdin: str = Field("", max_length=8 * 1024 * 1024)
    stdin_encoding: Encoding = "utf8"
    args: list[str] = Field(default_factory=list, max_length=64)
    limits: RunLimitsIn | None = None
    compile_limits: CompileLimitsIn | None = None
    compile_options: Annotated[
        list[str] | None,
        Field(max_length=64, description="Compiler options, each allowed by the language (docs/languages.md)"),
    ] = None
    output_encoding: Encoding = "utf8"
    # Annotated, with plain defaults: the compatible surfaces build this model without naming them.
    collect: Annotated[
        list[str] | None, Field(max_length=32, description="Globs of files under /box to return (`*.png`, `out/**`)")
    ] = None
    workspace: Annotated[
        str | None, Field(max_length=64, description="A workspace id: its files are the run's /box (docs/agents.md)")
    ] = None
    network: Annotated[NetworkIn | None, Field(description="Egress for the run stage; absent: no network")] = None
    stderr_to_stdout: Annotated[
        bool, Field(description="The run's stderr goes to its stdout: one stream, in the order written")
    ] = False

    @model_validator(mode="after")
    def _one_source(self) -> ExecuteIn:
        if (self.code is None) == (self.files is None):
            raise ValueError("give exactly one of `code` or `files`")
        return self


class CompileOut(BaseModel):
    status: str
    stdout: str
    stderr: str
    exit_code: int | None
    signal: int | None
    time_ms: int
    wall_time_ms: int
    memory_kb: int
    stdout_truncated: bool
    stderr_truncated: bool


class RuntimeRef(BaseModel):
    language: str
    version: str | None


class ExecuteOut(BaseModel):
    execution_id: str
    status: str = Field(description="ok, compile_error, compile_limit, runtime_error, timeout, memory_limit, "
                        "output_limit, file_size_limit, syscall_blocked or internal_error")  # fmt: skip
    stdout: str
    stderr: str
    output_encoding: Encoding
    output_lossy: bool = Field(description="utf8 encoding only: some bytes were not valid UTF-8 and were replaced")
    stdout_truncated: bool
    stderr_truncated: bool
    exit_code: int | None
    signal: int | None
    signal_name: str | None = Field(description="The signal that ended the program, named: SIGSEGV, SIGABRT, …")
    explanation: str | None = Field(description="One line on what that signal means, e.g. why SIGSYS (32-bit x86)")
    timeout_kind: Literal["cpu", "wall"] | None
    time_ms: int = Field(description="CPU time of the run stage, ms")
    wall_time_ms: int
    memory_kb: int = Field(description="Peak memory of the run stage, KiB")
    compile: CompileOut | None
    runtime: RuntimeRef
    files: list[FileOut] | None = Field(None, description="With `collect`: the matching files the run left")
    files_skipped: list[SkippedOut] | None = Field(None, description="With `collect`: matching paths not returned")
    workspace: WorkspaceOut | None = Field(None, description="With `workspace`: what became of the run's files")
    network: NetworkOut | None = Field(None, description="With `network`: what the run's egress proxy did")


class FileOut(BaseModel):
    path: str
    content: str = Field(description="base64")
    size: int
    executable: bool


class SkippedOut(BaseModel):
    path: str
    reason: str = Field(description="not_regular, count_cap or size_cap; bad_name in a workspace write-back")


class WorkspaceOut(BaseModel):
    id: str
    saved: bool = Field(description="The workspace is now what the run left; false: it is as it was (`error`)")
    files: int
    bytes: int
    skipped: list[SkippedOut]
    error: ErrorOut | None


class ErrorOut(BaseModel):
    status: Literal["failed"] = "failed"
    error: str
    message: str
    id: str | None = None


class VersionOut(BaseModel):
    version: str | None = Field(description="Detected version; null while the toolchain is missing")
    available: bool
    toolchain: str = Field(description="Which toolchain: gcc-11, /usr/lib/jvm/temurin-25-jdk-amd64, …")
    detail: str


class RuntimeOut(BaseModel):
    language: str
    name: str
    aliases: list[str]
    extensions: list[str]
    version: str | None = Field(description="The default: the newest available version")
    available: bool
    compiled: bool
    hello: str
    detail: str
    versions: list[VersionOut] = Field(description="Every toolchain, available ones newest first, then missing ones")


class MissingOut(BaseModel):
    language: str
    name: str
    reason: str = Field(description="Why no toolchain of it is provided")


class RuntimesOut(BaseModel):
    runtimes: list[RuntimeOut]
    missing: list[MissingOut] = Field(description="Languages users send that Stockade has no toolchain for")
    limits: dict[str, dict[str, dict[str, int | None]]]


# -- request: body -> engine request ------------------------------------------------------------------


def to_request(body: ExecuteIn, tenant: Tenant, registry: Registry, policy: LimitPolicy) -> ExecutionRequest:
    """The engine request of a validated body, within what the tenant may use; ApiError otherwise."""
    if not tenant.allows_language(body.language) and not any(
        tenant.allows_language(n) for n in _names(registry, body.language)
    ):
        raise ApiError("FORBIDDEN", f"tenant {tenant.id!r} may not use {body.language!r}")
    try:
        if body.code is not None:
            files = [SourceFile("", body.code.encode())]
        else:
            files = [SourceFile(f.name, decode(f.content, f.encoding, f"file {f.name!r}")) for f in body.files or []]
        stdin = decode(body.stdin, body.stdin_encoding, "stdin")
    except UnicodeEncodeError:
        raise ApiError("INVALID_REQUEST", "text fields must be valid Unicode (no lone surrogates)") from None
    return ExecutionRequest(
        language=body.language,
        version=body.version,
        files=files,
        entry=body.entry,
        stdin=stdin,
        args=list(body.args),
        collect=tuple(body.collect or ()),
        compile_options=tuple(body.compile_options or ()),
        limits=stage_limits(body.limits, tenant, policy.run.default, "run"),
        compile_limits=stage_limits(body.compile_limits, tenant, policy.compile.default, "compile"),
        network=network_policy(body.network.allow if body.network else [], tenant),
        stderr_to_stdout=body.stderr_to_stdout,
    )


def network_policy(allow: Sequence[str], tenant: Tenant) -> NetworkPolicy | None:
    """The run's egress policy: `allow`, every entry within the tenant's allowlist; None for no network."""
    if not allow:
        return None
    try:
        wanted = NetworkPolicy.parse(allow)
    except ValueError as e:
        raise ApiError("INVALID_REQUEST", f"network.allow: {e}") from None
    outside = wanted.outside(NetworkPolicy.parse(tenant.network_allow))
    if outside:
        has = ", ".join(tenant.network_allow) or "none"
        why = f"tenant {tenant.id!r} may not reach {', '.join(outside)} (its allowlist: {has})"
        raise ApiError("NETWORK_FORBIDDEN", why)
    return wanted


def _names(registry: Registry, language: str) -> tuple[str, ...]:
    try:
        return registry.get(language).names
    except LookupError:
        return ()


def stage_limits(given: BaseModel | None, tenant: Tenant, default: StageLimits, stage: str) -> StageLimits:
    """Requested values above the tenant's maxima are refused; defaults above them are lowered."""
    requested = given.model_dump() if given else {}
    out: dict[str, int | None] = {}
    for name in StageLimits.names():
        cap = getattr(tenant.max_limits, name)
        value = requested.get(name)
        if value is not None and cap is not None and value > cap:
            raise ApiError("LIMIT_OUT_OF_RANGE", f"{stage} limit {name}={value} exceeds the tenant maximum {cap}")
        fallback = getattr(default, name)
        out[name] = value if value is not None else (min(fallback, cap) if cap is not None else None)
    return StageLimits(**out)


def decode(text: str, encoding: str, what: str) -> bytes:
    if encoding == "utf8":
        return text.encode()
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise ApiError("INVALID_REQUEST", f"{what} is not valid base64") from None


# -- response: engine result -> body ------------------------------------------------------------------


def encode(data: bytes, encoding: str) -> tuple[str, bool]:
    """(text, lossy): base64 is exact; utf8 replaces invalid bytes and says so."""
    if encoding == "base64":
        return base64.b64encode(data).decode(), False
    try:
        return data.decode("utf-8"), False
    except UnicodeDecodeError:
        return data.decode("utf-8", "replace"), True


def response_body(execution_id: str, result: ExecutionResult, encoding: str) -> dict[str, Any]:
    run: BoxResult | None = result.run
    out, lossy_out = encode(run.stdout if run else b"", encoding)
    err, lossy_err = encode(run.stderr if run else b"", encoding)
    compile_rec = None
    lossy_compile = False
    if result.compile is not None:
        c = result.compile
        c_out, lo1 = encode(c.stdout, encoding)
        c_err, lo2 = encode(c.stderr, encoding)
        lossy_compile = lo1 or lo2
        compile_rec = {
            "status": c.status.value,
            "stdout": c_out,
            "stderr": c_err,
            "exit_code": c.exit_code,
            "signal": c.signal,
            "time_ms": c.cpu_time_ms,
            "wall_time_ms": c.wall_time_ms,
            "memory_kb": c.peak_memory_kb,
            "stdout_truncated": c.stdout_truncated,
            "stderr_truncated": c.stderr_truncated,
        }
    final = result.final
    return {
        "execution_id": execution_id,
        "status": result.status.value,
        "stdout": out,
        "stderr": err,
        "output_encoding": encoding,
        "output_lossy": lossy_out or lossy_err or lossy_compile,
        "stdout_truncated": run.stdout_truncated if run else False,
        "stderr_truncated": run.stderr_truncated if run else False,
        "exit_code": final.exit_code if final else None,
        "signal": final.signal if final else None,
        "signal_name": result.signal_name,
        "explanation": result.explanation,
        "timeout_kind": run.timeout_kind.value if run and run.timeout_kind else None,
        "time_ms": run.cpu_time_ms if run else 0,
        "wall_time_ms": sum(b.wall_time_ms for b in (result.compile, result.run) if b is not None),
        "memory_kb": run.peak_memory_kb if run else 0,
        "compile": compile_rec,
        "runtime": {"language": result.language, "version": result.version},
        "network": run.network.to_json() if run and run.network else None,
    }


def files_body(outputs: Outputs | None) -> dict[str, Any]:
    """The `files` and `files_skipped` of a result with `collect` (both empty when nothing was read)."""
    if outputs is None:
        return {"files": [], "files_skipped": []}
    return {
        "files": [
            {"path": f.path, "content": _b64(f.content), "size": len(f.content), "executable": f.executable}
            for f in outputs.files
        ],
        "files_skipped": [{"path": s.path, "reason": s.reason} for s in outputs.skipped],
    }


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()
