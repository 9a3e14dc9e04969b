"""docs/sdk.md's install command, verbatim, into a new venv: the SDK alone, none of the server's packages,
and the doc's first example against a live server."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from tests.service.live import LiveServer

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "sdk.md"
# What the server needs and a client must not pull in.
SERVER_ONLY = {"fastapi", "starlette", "uvicorn", "pydantic", "pyseccomp", "mcp", "prometheus-client", "rich"}


def _install_command() -> str:
    section = DOC.read_text(encoding="utf-8").split("## Install", 1)[1]
    block = re.search(r"```\n(.*?)```", section, re.S)
    assert block, "docs/sdk.md: no command block under ## Install"
    (command,) = block.group(1).strip().splitlines()
    return command


def _first_example() -> str:
    block = re.search(r"```python\n(.*?)```", DOC.read_text(encoding="utf-8"), re.S)
    assert block
    return block.group(1)


def test_the_sdk_installs_alone_and_runs_the_first_example(tmp_path: Path, open_server: LiveServer) -> None:
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    env = {**os.environ, "PATH": f"{venv / 'bin'}:{os.environ['PATH']}", "VIRTUAL_ENV": str(venv)}
    env.pop("PYTHONPATH", None)
    command = _install_command()
    assert command.startswith("pip install ")
    done = subprocess.run(command, shell=True, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]

    python = str(venv / "bin" / "python")
    listed = subprocess.run([python, "-m", "pip", "list", "--format=freeze"], env=env, capture_output=True, text=True)
    installed = {line.split("==")[0].lower().replace("_", "-") for line in listed.stdout.splitlines()}
    assert {"stockade-client", "httpx", "websockets"} <= installed
    assert installed & SERVER_ONLY == set()
    probe = "import importlib.util as u; print(u.find_spec('stockade.sandbox'), u.find_spec('stockade.service'))"
    assert subprocess.run([python, "-c", probe], env=env, capture_output=True, text=True).stdout == "None None\n"

    program = tmp_path / "first.py"
    program.write_text(_first_example(), encoding="utf-8")
    env["STOCKADE_URL"] = open_server.url
    ran = subprocess.run([python, str(program)], env=env, capture_output=True, text=True, timeout=120)
    assert ran.returncode == 0, ran.stderr
    lines = ran.stdout.splitlines()
    assert lines[:2] == ["ok", "Hello, World!"]
    assert re.fullmatch(r"cpu \d+ ms, wall \d+ ms, \d+ KiB", lines[2])
