"""Judge0 submission records (docs/compat.md): an engine result -> a Judge0 status and record, and the
records' rendering with `fields` and `base64_encoded`; the node's /languages and /config_info answers.

A record is kept as Judge0 keeps it: text attributes base64-encoded (our outputs are bytes), the rest
as JSON values. Rendering decodes them unless the caller asked for base64.
"""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from typing import Any

from stockade.engine import ExecutionResult, LimitPolicy, Plan, Verdict
from stockade.engine.checkers import Checker, check
from stockade.runtimes.model import Language
from stockade.service.compat.judge0 import (
    ACCEPTED,
    COMPILATION_ERROR,
    IN_QUEUE,
    INTERNAL_ERROR,
    MAX_EXTRACT_BYTES,
    NZEC,
    OTHER,
    PROCESSING,
    SIGNAL_STATUS,
    STATUSES,
    TEXT_FIELDS,
    TLE,
    WRONG_ANSWER,
    SubmissionIn,
    Translated,
    b64,
)

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
        "source_code": b64(t.source), "stdin": b64(t.stdin),
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
        "command_line_arguments": body.command_line_arguments,
        "redirect_stderr_to_stdout": bool(body.redirect_stderr_to_stdout),
        "callback_url": body.callback_url, "additional_files": body.additional_files,
        "enable_network": bool(body.enable_network), "queue_host": None, "execution_host": None,
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
        return {**out, "compile_output": b64(text), "time": None, "wall_time": None, "memory": None}
    if result.compile is not None:
        out["compile_output"] = b64(result.compile.stdout + result.compile.stderr)
    run = result.run
    if run is not None:
        out.update(
            stdout=b64(run.stdout),
            stderr=b64(run.stderr),
            time=f"{run.cpu_time_ms / 1000:.3f}",
            wall_time=f"{run.wall_time_ms / 1000:.3f}",
            memory=run.peak_memory_kb,
            exit_code=run.exit_code if run.exit_code is not None else (None if run.signal else 0),
            exit_signal=run.signal,
        )
    return out


def started(record: dict[str, Any]) -> dict[str, Any]:
    """Its run began: status Processing."""
    return {**record, "status_id": PROCESSING, "started_at": now(), "updated_at": now()}


def failed(record: dict[str, Any], message: str, code: str | None = None) -> dict[str, Any]:
    """Judge0 has one status for every failure to run; `code` stays in Stockade's own records."""
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
