"""Judge0 CE's wire form over ours (docs/compat.md): a submission body -> a wire.ExecuteIn (so the
tenant's languages and maxima are checked by the one translation, wire.to_request), an engine result ->
a Judge0 status and submission record, and the records' rendering with `fields` and `base64_encoded`.

A record is kept as Judge0 keeps it: text attributes base64-encoded (our outputs are bytes), the rest
as JSON values. Rendering decodes them unless the caller asked for base64.
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
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from stockade.engine import ExecutionResult, LimitPolicy, Plan, Verdict
from stockade.engine.checkers import Checker, check
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


def _b64(data: bytes | None) -> str | None:
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
    if body.enable_network:
        raise Invalid("enable_network", "enabling network is not allowed")
    if body.redirect_stderr_to_stdout:
        raise Invalid("redirect_stderr_to_stdout", "this option cannot be enabled (stdout and stderr are kept apart)")
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
    if body.source_code is None or body.source_code == "":
        raise Invalid("source_code", "can't be blank")
    source = _decode(body.source_code, encoded, "source_code")
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
    content, encoding = _text(source)
    files = [{"name": language.source_file, "content": content, "encoding": encoding}]
    if body.additional_files:
        files += unpack_files(base64.b64decode(_strict_b64(body.additional_files)))
    stdin_text, stdin_encoding = _text(stdin)
    try:
        request = ExecuteIn(
            language=language.id,
            version=None,
            code=None,
            files=files,  # type: ignore[arg-type]  # validated into FileIn
            entry=language.source_file,
            stdin=stdin_text,
            stdin_encoding=stdin_encoding,  # type: ignore[arg-type]  # a wire.Encoding
            args=args,
            compile_options=options or None,
            limits=run_limits(body, policy) or None,  # type: ignore[arg-type]  # validated into RunLimitsIn
            output_encoding="base64",
        )
    except ValidationError as e:
        first = e.errors()[0]
        raise Invalid("base", f"{'.'.join(map(str, first.get('loc', ())))}: {first.get('msg')}") from None
    return Translated(request, source, stdin, expected)


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


# -- result -> a Judge0 status and record ------------------------------------------------------------


def status_of(result: ExecutionResult, expected: bytes | None) -> tuple[int, str | None]:
    """Judge0's status and isolate-style message for one of our results."""
    v, final = result.status, result.final
    if v is Verdict.OK:
        if expected is None:
            return ACCEPTED, None
        verdict = check(Checker(kind="lines"), expected, result.run.stdout if result.run else b"")
        return (ACCEPTED, None) if verdict.ok else (WRONG_ANSWER, None)
    if v in (Verdict.COMPILE_ERROR, Verdict.COMPILE_LIMIT):
        return COMPILATION_ERROR, None
    if v is Verdict.TIMEOUT:
        wall = final is not None and final.timeout_kind is not None and final.timeout_kind.value == "wall"
        return TLE, "Time limit exceeded (wall clock)" if wall else "Time limit exceeded"
    if v is Verdict.RUNTIME_ERROR and final is not None:
        if final.signal:
            return SIGNAL_STATUS.get(final.signal, OTHER), f"Caught fatal signal {final.signal}"
        return NZEC, f"Exited with error status {final.exit_code}"
    if v is Verdict.FILE_SIZE_LIMIT:
        return SIGNAL_STATUS[25], "File size limit exceeded"
    if v is Verdict.MEMORY_LIMIT:
        return OTHER, "Memory limit exceeded"
    if v is Verdict.OUTPUT_LIMIT:
        return OTHER, "Output limit exceeded"
    if v is Verdict.SYSCALL_BLOCKED:
        return OTHER, "Blocked system call"
    return INTERNAL_ERROR, "Internal error (the operator's log has the details)"


def now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def new_record(token: str, body: SubmissionIn, plan: Plan, t: Translated, policy: LimitPolicy) -> dict[str, Any]:
    """A queued submission's record (status In Queue), its text fields base64 as Judge0 stores them,
    its limits those the plan runs with (the defaults filled in)."""
    default = policy.run.default.as_dict()
    limits = {k: v if v is not None else default[k] for k, v in plan.request.limits.as_dict().items()}
    stamp = now()
    return {
        "token": token, "language_id": body.language_id,
        "language_name": language_name(plan.language, plan.toolchain.version),
        "source_code": _b64(t.source), "stdin": _b64(t.stdin),
        "expected_output": base64.b64encode(t.expected).decode() if t.expected is not None else None,
        "stdout": None, "stderr": None, "compile_output": None, "message": None,
        "status_id": IN_QUEUE, "created_at": stamp, "queued_at": stamp, "started_at": None, "finished_at": None,
        "updated_at": stamp, "time": None, "wall_time": None, "memory": None, "exit_code": None, "exit_signal": None,
        "number_of_runs": 1,
        "cpu_time_limit": _seconds(limits.get("cpu_ms")), "cpu_extra_time": body.cpu_extra_time or 0,
        "wall_time_limit": _seconds(limits.get("wall_ms")),
        "memory_limit": (limits.get("memory_mb") or 0) * 1024 or None,
        "stack_limit": body.stack_limit, "max_processes_and_or_threads": limits.get("processes"),
        "enable_per_process_and_thread_time_limit": False, "enable_per_process_and_thread_memory_limit": False,
        "max_file_size": limits.get("file_size_kb"), "compiler_options": body.compiler_options,
        "command_line_arguments": body.command_line_arguments, "redirect_stderr_to_stdout": False,
        "callback_url": body.callback_url, "additional_files": body.additional_files, "enable_network": False,
        "queue_host": None, "execution_host": None,
    }  # fmt: skip


def _seconds(ms: int | None) -> float | None:
    return None if ms is None else ms / 1000


def finish(record: dict[str, Any], result: ExecutionResult) -> dict[str, Any]:
    """The record of a finished submission: status, outputs and measurements from our result."""
    expected = base64.b64decode(record["expected_output"]) if record.get("expected_output") is not None else None
    status, message = status_of(result, expected)
    out = {**record, "status_id": status, "message": message, "finished_at": now(), "updated_at": now()}
    if result.compile is not None and status == COMPILATION_ERROR:
        c = result.compile
        text = c.stdout + c.stderr
        if result.status is Verdict.COMPILE_LIMIT and c.status.value == "timeout":
            text = b"Compilation time limit exceeded."
        return {**out, "compile_output": _b64(text), "time": None, "wall_time": None, "memory": None}
    if result.compile is not None:
        out["compile_output"] = _b64(result.compile.stdout + result.compile.stderr)
    run = result.run
    if run is not None:
        out.update(
            stdout=_b64(run.stdout),
            stderr=_b64(run.stderr),
            time=f"{run.cpu_time_ms / 1000:.3f}",
            wall_time=f"{run.wall_time_ms / 1000:.3f}",
            memory=run.peak_memory_kb,
            exit_code=run.exit_code if run.exit_code is not None else (None if run.signal else 0),
            exit_signal=run.signal,
        )
    return out


def failed(record: dict[str, Any], message: str) -> dict[str, Any]:
    return {**record, "status_id": INTERNAL_ERROR, "message": message, "finished_at": now(), "updated_at": now()}


class Unconvertible(Exception):
    """A text attribute is not UTF-8: Judge0 asks for base64_encoded=true."""

    MESSAGE = (
        "some attributes for this submission cannot be converted to UTF-8, use base64_encoded=true query parameter"
    )


def render(record: dict[str, Any], fields: tuple[str, ...], encoded: bool) -> dict[str, Any]:
    """The record with the requested attributes; text decoded unless `encoded` (Unconvertible if it
    is not UTF-8). `message` is base64 too when encoded, as in Judge0."""
    out: dict[str, Any] = {}
    for name in fields:
        if name == "status":
            out[name] = {"id": record["status_id"], "description": STATUSES[record["status_id"]]}
        elif name == "language":
            out[name] = {"id": record["language_id"], "name": record.get("language_name")}
        elif name in TEXT_FIELDS:
            value = record.get(name)
            if value is None or encoded:
                out[name] = value
            else:
                try:
                    out[name] = base64.b64decode(value).decode("utf-8")
                except UnicodeDecodeError:
                    raise Unconvertible(Unconvertible.MESSAGE) from None
        elif name == "message" and encoded and record.get("message") is not None:
            out[name] = base64.b64encode(record["message"].encode()).decode()
        else:
            out[name] = record.get(name)
    return out


# -- the informational endpoints -------------------------------------------------------------------


def language_name(language: Language, version: str | None) -> str:
    """Judge0 names a language with its version inside the parentheses: "C (GCC 12.2.0)"."""
    if not version:
        return language.name
    if language.name.endswith(")"):
        return f"{language.name[:-1]} {version})"
    return f"{language.name} ({version})"


def config_info(
    policy: LimitPolicy,
    *,
    batch_size: int,
    queue_size: int,
    callback_tries: int,
    callback_timeout: float,
    option_languages: list[str],
) -> dict[str, Any]:
    """GET /config_info: Judge0's keys with this node's values (its defaults and maxima)."""
    d, b = policy.run.default, policy.run.bounds
    return {
        "maintenance_mode": False, "enable_wait_result": True, "enable_compiler_options": True,
        "allowed_languages_for_compile_options": option_languages, "enable_command_line_arguments": True,
        "enable_submission_delete": True, "enable_callbacks": True, "callbacks_max_tries": callback_tries,
        "callbacks_timeout": callback_timeout, "enable_additional_files": True, "max_queue_size": queue_size,
        "cpu_time_limit": (d.cpu_ms or 0) / 1000, "max_cpu_time_limit": b["cpu_ms"][1] / 1000,
        "cpu_extra_time": 0.0, "max_cpu_extra_time": 5.0,
        "wall_time_limit": (d.wall_ms or 0) / 1000, "max_wall_time_limit": b["wall_ms"][1] / 1000,
        "memory_limit": (d.memory_mb or 0) * 1024, "max_memory_limit": b["memory_mb"][1] * 1024,
        "stack_limit": policy.run.stack_mb * 1024, "max_stack_limit": policy.run.stack_mb * 1024,
        "max_processes_and_or_threads": d.processes, "max_max_processes_and_or_threads": b["processes"][1],
        "enable_per_process_and_thread_time_limit": False, "allow_enable_per_process_and_thread_time_limit": False,
        "enable_per_process_and_thread_memory_limit": False,
        "allow_enable_per_process_and_thread_memory_limit": False,
        "max_file_size": d.file_size_kb, "max_max_file_size": b["file_size_kb"][1],
        "number_of_runs": 1, "max_number_of_runs": 1, "redirect_stderr_to_stdout": False,
        "max_extract_size": MAX_EXTRACT_BYTES // 1024, "enable_batched_submissions": True,
        "max_submission_batch_size": batch_size, "submission_cache_duration": 0.0, "use_docs_as_homepage": False,
        "allow_enable_network": False, "enable_network": False, "disable_implicit_base64_encoding": True,
    }  # fmt: skip
