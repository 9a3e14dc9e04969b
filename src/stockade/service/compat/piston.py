"""Piston v2's wire form over ours (docs/compat.md): an execute body -> a wire.ExecuteIn, its version
(a semver range, as Piston reads it) against the toolchain we have, an engine result -> Piston's
`run` and `compile` stage objects. Every refusal is Piston's 400 `{"message": ...}` with its wording.
"""

from __future__ import annotations

import base64
import binascii
import math
import signal
from typing import Any

import semantic_version
from pydantic import ValidationError

from stockade.engine import LimitPolicy
from stockade.runtimes.model import Language
from stockade.sandbox.spec import BoxResult, Status
from stockade.service.wire import ExecuteIn

MIB = 1024 * 1024


class PistonInvalid(Exception):
    """Piston's 400 `{"message": ...}`."""


def version_matches(wanted: str, have: str | None) -> bool:
    """Piston's rule (node-semver's `satisfies(have, wanted)`), over our detected version."""
    if have is None:
        return False
    if wanted.strip() in ("*", "x", "", have):
        return True
    try:
        return bool(semantic_version.NpmSpec(wanted).match(semantic_version.Version.coerce(have)))
    except ValueError:
        return False


def _field(body: dict[str, Any], name: str, kind: type, what: str) -> Any:
    value = body.get(name)
    if not value or not isinstance(value, kind):
        raise PistonInvalid(f"{name} is required as {what}")
    return value


def check_shape(body: Any) -> tuple[str, str, list[dict[str, Any]]]:
    """language, version and files, as Piston checks them first."""
    if not isinstance(body, dict):
        raise PistonInvalid("language is required as a string")
    language = _field(body, "language", str, "a string")
    version = _field(body, "version", str, "a string")
    files = body.get("files")
    if not isinstance(files, list):
        raise PistonInvalid("files is required as an array")
    for i, f in enumerate(files):
        if not isinstance(f, dict) or not isinstance(f.get("content"), str):
            raise PistonInvalid(f"files[{i}].content is required as a string")
    return language, version, files


def _limit(body: dict[str, Any], stage: str, kind: str, policy: LimitPolicy) -> int | None:
    """One of Piston's six limits -> ours, against our bounds (Piston's "configured limit")."""
    name = f"{stage}_{kind}"
    value = body.get(name)
    if not value:  # Piston skips 0 and absent alike
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise PistonInvalid(f"If specified, {name} must be a number")
    bounds = (policy.run if stage == "run" else policy.compile).bounds
    if kind == "memory_limit":
        if value == -1:  # Piston's "no limit": our default
            return None
        lo, hi = bounds["memory_mb"][0] * MIB, bounds["memory_mb"][1] * MIB
        ours = math.ceil(value / MIB)
    else:
        key = "wall_ms" if kind == "timeout" else "cpu_ms"
        lo, hi = bounds[key]
        ours = math.ceil(value)
    if value > hi:
        raise PistonInvalid(f"{name} cannot exceed the configured limit of {hi}")
    if value < 0:
        raise PistonInvalid(f"{name} must be non-negative")
    if value < lo:
        raise PistonInvalid(f"{name} must be at least {lo}")
    return ours


def _stage_limits(body: dict[str, Any], stage: str, policy: LimitPolicy) -> dict[str, int] | None:
    limits = {
        "wall_ms": _limit(body, stage, "timeout", policy),
        "cpu_ms": _limit(body, stage, "cpu_time", policy),
        "memory_mb": _limit(body, stage, "memory_limit", policy),
    }
    given = {k: v for k, v in limits.items() if v is not None}
    return given or None


def _file(f: dict[str, Any], i: int, language: Language, only: bool) -> dict[str, str]:
    name = f.get("name")
    if not isinstance(name, str) or not name:
        name = language.source_file if only else f"file{i}.code"  # Piston's name for an unnamed file
    encoding = f.get("encoding") or "utf8"
    content: str = f["content"]
    if encoding == "hex":
        try:
            content, encoding = base64.b64encode(bytes.fromhex(content)).decode(), "base64"
        except ValueError:
            raise PistonInvalid(f"files[{i}].content is not valid hex") from None
    elif encoding == "base64":
        try:
            base64.b64decode(content, validate=True)
        except (binascii.Error, ValueError):
            raise PistonInvalid(f"files[{i}].content is not valid base64") from None
    elif encoding != "utf8":
        raise PistonInvalid(f"files[{i}].encoding must be one of utf8, base64, hex")
    return {"name": name, "content": content, "encoding": encoding}


def to_execute_in(
    body: dict[str, Any], language: Language, version: str, files: list[dict[str, Any]], policy: LimitPolicy
) -> ExecuteIn:
    """The execution of a Piston request, on the toolchain of `version` (an exact, detected one)."""
    if not files or not any((f.get("encoding") or "utf8") == "utf8" for f in files):
        raise PistonInvalid("files must include at least one utf8 encoded file")
    stdin, args = body.get("stdin") or "", body.get("args") or []
    if not isinstance(stdin, str):
        raise PistonInvalid("stdin must be a string")
    if not isinstance(args, list) or not all(isinstance(a, str) for a in args):
        raise PistonInvalid("args must be an array of strings")
    wire_files = [_file(f, i, language, len(files) == 1) for i, f in enumerate(files)]
    try:
        return ExecuteIn(
            language=language.id,
            version=version,
            code=None,
            files=wire_files,  # type: ignore[arg-type]  # validated into FileIn
            entry=wire_files[0]["name"],  # Piston runs the first file
            stdin=stdin,
            args=args,
            limits=_stage_limits(body, "run", policy),  # type: ignore[arg-type]  # validated into RunLimitsIn
            compile_limits=_stage_limits(body, "compile", policy),  # type: ignore[arg-type]
        )
    except ValidationError as e:
        first = e.errors()[0]
        raise PistonInvalid(f"{'.'.join(map(str, first.get('loc', ())))}: {first.get('msg')}") from None


def _signal_name(number: int | None) -> str | None:
    if not number:
        return None
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"SIG{number}"


def stage(box: BoxResult) -> dict[str, Any]:
    """One stage in Piston's shape: isolate's status letters and messages, times in ms, memory in bytes."""
    stdout = box.stdout.decode("utf-8", "replace")
    stderr = box.stderr.decode("utf-8", "replace")
    st, sig, code = box.status, box.signal, box.exit_code
    status: str | None = None
    message: str | None = None
    if st is Status.TIMEOUT:
        status, message, sig = "TO", "Time limit exceeded", signal.SIGKILL
    elif st is Status.OUTPUT_LIMIT:
        status = "OL" if box.stdout_truncated else "EL"
        message, sig = ("stdout" if status == "OL" else "stderr") + " length exceeded", signal.SIGKILL
    elif st is Status.INTERNAL_ERROR:
        status, message = "XX", "Internal error (the operator's log has the details)"
    elif st is Status.MEMORY_LIMIT:
        status, message, sig = "SG", "Memory limit exceeded", sig or signal.SIGKILL
    elif st is Status.FILE_SIZE_LIMIT:
        status, message, sig = "SG", "File size limit exceeded", sig or signal.SIGXFSZ
    elif st is Status.SYSCALL_BLOCKED:
        status, message, sig = "SG", "Blocked system call", sig or signal.SIGSYS
    elif sig:
        status, message = "SG", f"Caught fatal signal {sig}"
    elif st is Status.RUNTIME_ERROR:
        status, message = "RE", f"Exited with error status {code}"
    return {
        "stdout": stdout,
        "stderr": stderr,
        "output": stdout + stderr,  # Piston interleaves them; ours are captured apart
        "code": None if sig else code,
        "signal": _signal_name(int(sig) if sig else None),
        "message": message,
        "status": status,
        "cpu_time": box.cpu_time_ms,
        "wall_time": box.wall_time_ms,
        "memory": box.peak_memory_kb * 1024,
    }
