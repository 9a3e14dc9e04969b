"""The npm `piston-client` (pinned in tests/compat/npm, installed by `make test` with npm ci) against a
live node: its runtimes() and execute() as its README uses them (docs/compat.md)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import httpx

from tests.service.live import LiveServer

NPM = Path(__file__).resolve().parent / "npm"


def test_piston_client_lists_runtimes_and_runs_code(open_server: LiveServer, client: httpx.Client) -> None:
    assert (NPM / "node_modules" / "piston-client").is_dir(), "run `make test` (npm ci in tests/compat/npm)"
    done = subprocess.run(
        ["node", str(NPM / "piston_client.mjs"), open_server.url], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    got: dict[str, Any] = json.loads(done.stdout)
    assert got["runtimes"] == client.get("/api/v2/runtimes").json()
    assert {"language": "python", "aliases": ["python3", "py", "py3"]}.items() <= next(
        r for r in got["runtimes"] if r["language"] == "python"
    ).items()
    assert got["hello"]["language"] == "python" and got["hello"]["run"]["stdout"] == "Hello World!\n"
    assert got["hello"]["run"]["code"] == 0 and got["hello"]["run"]["output"] == "Hello World!\n"
    assert got["stdin"]["run"]["stdout"] == "42\n" and got["stdin"]["compile"]["code"] == 0
    assert got["broken"]["compile"]["code"] != 0 and "error" in got["broken"]["compile"]["stderr"]
    assert got["broken"]["run"]["stderr"] == got["broken"]["compile"]["stderr"]  # Piston repeats it in `run`
    assert got["args"]["run"]["stdout"] == "['1', '2', '3']\n"  # the client's default args
