"""Judge0 CE's wire form over ours (docs/compat.md), the request side: its statuses and fields, and a
submission body -> a wire.ExecuteIn (so the tenant's languages and maxima are checked by the one
translation, wire.to_request). The record side (an engine result -> a Judge0 status and submission
record, and its rendering) is judge0_records.py.
"""

from __future__ import annotations

import base64
import binascii
import io
import math
import shlex
import stat
import zipfile
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from stockade.engine import LimitPolicy
from stockade.runtimes.model import Language
from stockade.service.wire import ExecuteIn

JUDGE0_VERSION = "1.13.1"  # the release whose API this follows; clients key language tables on it

STATUSES: dict[int, str] = {
    1: "In Queue",
    2: "Processing",
    3: "Accepted",
    4: "Wrong Answer",
    5: "Time Limit Exceeded",
    6: "Compilation Error",
    7: "Runtime Error (SIGSEGV)",
    8: "Runtime Error (SIGXFSZ)",
    9: "Runtime Error (SIGFPE)",
    10: "Runtime Error (SIGABRT)",
    11: "Runtime Error (NZEC)",
    12: "Runtime Error (Other)",
    13: "Internal Error",
    14: "Exec Format Error",
}
IN_QUEUE, PROCESSING, ACCEPTED, WRONG_ANSWER, TLE, COMPILATION_ERROR = 1, 2, 3, 4, 5, 6
NZEC, OTHER, INTERNAL_ERROR = 11, 12, 13
SIGNAL_STATUS = {11: 7, 25: 8, 8: 9, 6: 10}  # SIGSEGV, SIGXFSZ, SIGFPE, SIGABRT; others: 12

TEXT_FIELDS = ("source_code", "stdin", "expected_output", "stdout", "stderr", "compile_output")
# Every attribute Judge0 1.13.1's serializer has (its table's columns but `id`, plus status and language).
ALL_FIELDS = (
    "source_code",
    "language_id",
    "stdin",
    "expected_output",
    "stdout",
    "status_id",
    "created_at",
    "finished_at",
    "time",
    "memory",
    "stderr",
    "token",
    "number_of_runs",
    "cpu_time_limit",
    "cpu_extra_time",
    "wall_time_limit",
    "memory_limit",
    "stack_limit",
    "max_processes_and_or_threads",
    "enable_per_process_and_thread_time_limit",
    "enable_per_process_and_thread_memory_limit",
    "max_file_size",
    "compile_output",
    "exit_code",
    "exit_signal",
    "message",
    "wall_time",
    "compiler_options",
    "command_line_arguments",
    "redirect_stderr_to_stdout",
    "callback_url",
    "additional_files",
    "enable_network",
    "status",
    "language",
)  # fmt: skip  (v1.13.1's: master's started_at, queued_at, ... are unreleased, and the SDK refuses them)
DEFAULT_FIELDS = ("token", "time", "memory", "stdout", "stderr", "compile_output", "message", "status")
MAX_TEXT_ARG = 512  # Judge0's cap on compiler_options and command_line_arguments
MAX_EXTRACT_BYTES = 4 * 1024 * 1024  # additional_files unpacked: the engine's cap on all sources
MAX_EXTRACT_FILES = 63  # and its 64 files, the main source being one
PROJECT_IDS = frozenset({89})  # Judge0's "Multi-file program": no source_code, the zip is the program


class Invalid(Exception):
    """A submission Judge0 answers with 422 `{field: [message]}`."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.errors = {field: [message]}


class BadRequest(Exception):
    """A request Judge0 answers with 400 `{"error": message}` (a query parameter, a batch's size)."""


class SubmissionIn(BaseModel):
    """A submission body. Unknown keys are ignored and numbers may come as strings, as with Rails."""

    model_config = ConfigDict(extra="ignore")

    source_code: str | None = None
    language_id: int | None = None
    compiler_options: str | None = None
    command_line_arguments: str | None = None
    number_of_runs: int | None = None
    stdin: str | None = None
    expected_output: str | None = None
    cpu_time_limit: float | None = None
    cpu_extra_time: float | None = None
    wall_time_limit: float | None = None
    memory_limit: float | None = None
    stack_limit: int | None = None
    max_processes_and_or_threads: int | None = None
    enable_per_process_and_thread_time_limit: bool | None = None
    enable_per_process_and_thread_memory_limit: bool | None = None
    max_file_size: int | None = None
    redirect_stderr_to_stdout: bool | None = None
    callback_url: str | None = None
    additional_files: str | None = None
    enable_network: bool | None = None


def parse_submission(data: Any) -> SubmissionIn:
    if not isinstance(data, dict):
        raise Invalid("base", "a submission is a JSON object")
    try:
        return SubmissionIn.model_validate(data)
    except ValidationError as e:
        first = e.errors()[0]
        field = str(first["loc"][0]) if first.get("loc") else "base"
        kind = first["type"]
        what = "a string"
        if kind.startswith(("int", "float")):
            what = "a number"
        elif kind.startswith("bool"):
            what = "a boolean"
        raise Invalid(field, f"is not {what}") from None


def flag(value: str | None, *, default: bool = False) -> bool:
    """A query flag: Rails compares with the string "true"."""
    return default if value is None else value == "true"


def requested_fields(value: str | None) -> tuple[str, ...]:
    names = [n for n in (value or "").split(",") if n]
    invalid = [n for n in names if n != "*" and n not in ALL_FIELDS]
    if invalid:
        raise BadRequest(f"invalid fields: [{', '.join(invalid)}]")
    if "*" in names:
        return ALL_FIELDS
    return tuple(names) or DEFAULT_FIELDS


# -- request -> our wire request --------------------------------------------------------------------


def _decode(text: str | None, encoded: bool, field: str) -> bytes:
    if text is None:
        return b""
    if not encoded:
        return text.encode()
    try:
        return base64.b64decode(text.replace("\n", "").replace("\r", ""), validate=True)
    except (binascii.Error, ValueError):
        raise Invalid(field, "is not valid base64") from None


def b64(data: bytes | None) -> str | None:
    return base64.b64encode(data).decode() if data else None


def _range(body: SubmissionIn, field: str, lo: float, hi: float, unit: float, *, floor: bool = False) -> int | None:
    """A Judge0 limit in its unit -> ours (times `unit`), refused outside [lo, hi] of Judge0's unit."""
    value = getattr(body, field)
    if value is None:
        return None
    if not lo <= value <= hi:
        bound = f"greater than or equal to {_num(lo)}" if value < lo else f"less than or equal to {_num(hi)}"
        raise Invalid(field, f"must be {bound}")
    converted = value * unit
    return int(math.floor(converted) if floor else math.ceil(converted))


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else str(x)


def run_limits(body: SubmissionIn, policy: LimitPolicy) -> dict[str, int]:
    """Judge0's limit fields -> our run limits, each within the engine's bounds (in Judge0's units)."""
    b = policy.run.bounds
    limits = {
        "cpu_ms": _range(body, "cpu_time_limit", b["cpu_ms"][0] / 1000, b["cpu_ms"][1] / 1000, 1000, floor=True),
        "wall_ms": _range(body, "wall_time_limit", b["wall_ms"][0] / 1000, b["wall_ms"][1] / 1000, 1000, floor=True),
        # KB -> MiB, rounded up: never less memory than asked.
        "memory_mb": _range(body, "memory_limit", b["memory_mb"][0] * 1024, b["memory_mb"][1] * 1024, 1 / 1024),
        "processes": _range(body, "max_processes_and_or_threads", *b["processes"], 1),
        "file_size_kb": _range(body, "max_file_size", *b["file_size_kb"], 1),
    }
    _range(body, "cpu_extra_time", 0, 5, 1)  # validated; the CPU limit is one hard limit here
    _range(body, "stack_limit", 0, policy.run.stack_mb * 1024, 1)  # the box's stack is always stack_mb
    return {k: v for k, v in limits.items() if v is not None}


def refuse_unsupported(body: SubmissionIn) -> None:
    """Fields whose Judge0 behaviour we do not offer: refused, never silently ignored."""
    for name in ("enable_per_process_and_thread_time_limit", "enable_per_process_and_thread_memory_limit"):
        if getattr(body, name):
            raise Invalid(name, "this option cannot be enabled (limits hold for the whole process tree)")
    if body.number_of_runs not in (None, 1):
        raise Invalid("number_of_runs", "must be 1 (one run per submission)")


def unpack_files(archive: bytes) -> list[dict[str, str]]:
    """`additional_files`, a zip, as wire files: regular files only (no links, no devices), the names
    checked later by the engine like any file's, sizes capped before anything is read."""
    try:
        zf = zipfile.ZipFile(io.BytesIO(archive))
        entries = [i for i in zf.infolist() if not i.is_dir()]
        if len(entries) > MAX_EXTRACT_FILES or sum(i.file_size for i in entries) > MAX_EXTRACT_BYTES:
            raise Invalid("additional_files", f"at most {MAX_EXTRACT_FILES} files of {MAX_EXTRACT_BYTES} bytes in all")
        files = []
        for info in entries:
            kind = stat.S_IFMT(info.external_attr >> 16)  # 0: no Unix type recorded, a plain file
            if kind and kind != stat.S_IFREG:
                raise Invalid("additional_files", f"{info.filename[:64]!r} is not a regular file")
            content = zf.read(info)
            if len(content) != info.file_size:  # a lying header
                raise Invalid("additional_files", "the archive is inconsistent")
            files.append({"name": info.filename, "content": base64.b64encode(content).decode(), "encoding": "base64"})
        return files
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, NotImplementedError, ValueError):
        raise Invalid("additional_files", "is not a readable zip archive") from None


@dataclass(frozen=True)
class Translated:
    """A submission as our wire request, with the bytes its record keeps."""

    request: ExecuteIn
    source: bytes
    stdin: bytes
    expected: bytes | None


def _text(data: bytes) -> tuple[str, str]:
    """(text, encoding) for a wire field: UTF-8 as is, anything else base64."""
    try:
        return data.decode("utf-8"), "utf8"
    except UnicodeDecodeError:
        return base64.b64encode(data).decode(), "base64"


def to_execute_in(body: SubmissionIn, language: Language, encoded: bool, policy: LimitPolicy) -> Translated:
    """Our wire request for a validated submission; Invalid names the field at fault."""
    refuse_unsupported(body)
    stdin = _decode(body.stdin, encoded, "stdin")
    expected = _decode(body.expected_output, encoded, "expected_output") if body.expected_output is not None else None
    args_text = body.command_line_arguments or ""
    if len(args_text) > MAX_TEXT_ARG:
        raise Invalid("command_line_arguments", f"is too long (maximum is {MAX_TEXT_ARG} characters)")
    try:
        args = shlex.split(args_text)  # split as Judge0's shell would, but no shell ever sees them
    except ValueError as e:
        raise Invalid("command_line_arguments", f"cannot be split into arguments: {e}") from None
    options = compiler_options(body.compiler_options, language)
    source, files, entry = program_files(body, language, encoded)
    stdin_text, stdin_encoding = _text(stdin)
    try:
        request = ExecuteIn(
            language=language.id,
            version=None,
            code=None,
            files=files,  # type: ignore[arg-type]  # validated into FileIn
            entry=entry,
            stdin=stdin_text,
            stdin_encoding=stdin_encoding,  # type: ignore[arg-type]  # a wire.Encoding
            args=args,
            compile_options=options or None,
            limits=run_limits(body, policy) or None,  # type: ignore[arg-type]  # validated into RunLimitsIn
            output_encoding="base64",
            stderr_to_stdout=bool(body.redirect_stderr_to_stdout),
        )
    except ValidationError as e:
        first = e.errors()[0]
        raise Invalid("base", f"{'.'.join(map(str, first.get('loc', ())))}: {first.get('msg')}") from None
    return Translated(request, source, stdin, expected)


def program_files(body: SubmissionIn, language: Language, encoded: bool) -> tuple[bytes, list[dict[str, str]], str]:
    """(source, wire files, entry): the source under the language's file name beside `additional_files`;
    for a multi-file program (id 89) no source, the zip's files, its `run` or `run.sh` script."""
    extra = unpack_files(base64.b64decode(_strict_b64(body.additional_files))) if body.additional_files else []
    if body.language_id in PROJECT_IDS:
        if body.source_code:
            raise Invalid("source_code", "must be absent for a multi-file program (its files are additional_files)")
        names = {f["name"] for f in extra}
        entry = next((n for n in ("run", "run.sh") if n in names), None)
        if entry is None:
            raise Invalid("additional_files", "a multi-file program needs a run (or run.sh) script")
        return b"", extra, entry
    if body.source_code is None or body.source_code == "":
        raise Invalid("source_code", "can't be blank")
    source = _decode(body.source_code, encoded, "source_code")
    content, encoding = _text(source)
    return (
        source,
        [{"name": language.source_file, "content": content, "encoding": encoding}, *extra],
        language.source_file,
    )


def compiler_options(text: str | None, language: Language) -> list[str]:
    """Judge0's compiler_options, split as its shell would (no shell ever sees them), each allowed by the
    language's list (runtimes: compile.options); Invalid otherwise."""
    if not text:
        return []
    if len(text) > MAX_TEXT_ARG:
        raise Invalid("compiler_options", f"is too long (maximum is {MAX_TEXT_ARG} characters)")
    if language.compile is None or not language.compile.options:
        raise Invalid("compiler_options", f"setting compiler options is not allowed for {language.name}")
    try:
        options = shlex.split(text)
    except ValueError as e:
        raise Invalid("compiler_options", f"cannot be split into options: {e}") from None
    for option in options:
        if why := language.compile.refused_option(option):
            raise Invalid("compiler_options", why)
    return options


def _strict_b64(text: str) -> str:
    try:
        base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise Invalid("additional_files", "is not valid base64") from None
    return text
