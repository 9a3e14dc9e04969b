"""Wire models of the HTTP contract (they are what /openapi.json documents)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

Encoding = Literal["utf8", "base64"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class LimitsIn(_Strict):
    """Per-stage limits; omitted fields take the server default. Out of range is refused, never clamped."""

    cpu_ms: int | None = Field(None, description="CPU time of the whole process tree, ms")
    wall_ms: int | None = Field(None, description="Wall-clock time, ms")
    memory_mb: int | None = Field(None, description="Memory (RAM, no swap), MiB")
    processes: int | None = Field(None, description="Processes and threads")
    output_kb: int | None = Field(None, description="stdout and stderr cap, each, KiB")
    file_size_kb: int | None = Field(None, description="Largest file the program may write, KiB")


class FileIn(_Strict):
    name: str = Field(min_length=1, max_length=512, examples=["main.c"])
    content: str = Field(max_length=8 * 1024 * 1024)
    encoding: Encoding = "utf8"


class ExecuteIn(_Strict):
    language: str = Field(min_length=1, max_length=64, examples=["python"])
    version: str | None = Field(None, max_length=64, description="Prefix of the toolchain version, e.g. 3.11")
    code: str | None = Field(None, max_length=8 * 1024 * 1024, examples=["print(21*2)"])
    files: list[FileIn] | None = Field(None, max_length=64)
    entry: str | None = Field(None, max_length=512, description="Entry file among `files`")
    stdin: str = Field("", max_length=8 * 1024 * 1024)
    stdin_encoding: Encoding = "utf8"
    args: list[str] = Field(default_factory=list, max_length=64)
    limits: LimitsIn | None = None
    compile_limits: LimitsIn | None = None
    output_encoding: Encoding = "utf8"

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
    timeout_kind: Literal["cpu", "wall"] | None
    time_ms: int = Field(description="CPU time of the run stage, ms")
    wall_time_ms: int
    memory_kb: int = Field(description="Peak memory of the run stage, KiB")
    compile: CompileOut | None
    runtime: RuntimeRef


class ErrorOut(BaseModel):
    status: Literal["failed"] = "failed"
    error: str
    message: str
    id: str | None = None


class RuntimeOut(BaseModel):
    language: str
    name: str
    aliases: list[str]
    extensions: list[str]
    version: str | None
    available: bool
    compiled: bool
    hello: str
    detail: str


class RuntimesOut(BaseModel):
    runtimes: list[RuntimeOut]
    limits: dict[str, dict[str, dict[str, int | None]]]
