"""Results and payloads in their wire form: shared by the HTTP service and the local CLI, so both print
the same JSON."""

from __future__ import annotations

import base64
from typing import Any

from stockade.engine import ExecutionResult
from stockade.sandbox.spec import BoxResult


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
        "timeout_kind": run.timeout_kind.value if run and run.timeout_kind else None,
        "time_ms": run.cpu_time_ms if run else 0,
        "wall_time_ms": sum(b.wall_time_ms for b in (result.compile, result.run) if b is not None),
        "memory_kb": run.peak_memory_kb if run else 0,
        "compile": compile_rec,
        "runtime": {"language": result.language, "version": result.version},
    }
