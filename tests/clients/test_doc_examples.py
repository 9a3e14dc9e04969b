"""Every curl example in the README and docs/, run as written (bash, a new environment with no key set)
against a live server in open mode, so the docs cannot drift from the API. Only the address changes:
the docs' 127.0.0.1:8000 becomes the test server's.

A block's `# ` lines are the output it shows (`…` stands for anything); a block without them has its
check in CHECKS, keyed by a string unique to it. A new example without either fails here."""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.service.live import LiveServer

ROOT = Path(__file__).resolve().parents[2]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
ADDRESS = re.compile(r"(?:http://)?(?:127\.0\.0\.1|localhost):8000")


def _blocks() -> list[tuple[str, str]]:
    found = []
    for doc in DOCS:
        text = doc.read_text(encoding="utf-8")
        for match in re.finditer(r"^```[a-z]*\n(.*?)^```", text, re.S | re.M):
            if re.search(r"(^|\$\()curl ", match.group(1), re.M):
                found.append((f"{doc.name}:{text.count(chr(10), 0, match.start()) + 1}", match.group(1)))
    return found


def _replies(out: str) -> list[dict[str, Any]]:
    """The JSON objects printed, in order (curl puts no newline between two bodies)."""
    found, at, decoder = [], 0, json.JSONDecoder()
    while (at := out.find("{", at)) >= 0:
        try:
            value, at = decoder.raw_decode(out, at)
            found.append(value)
        except json.JSONDecodeError:  # a metric's labels, not JSON
            at += 1
    return found


def _ok(stdout: str) -> Callable[[str], None]:
    def check(out: str) -> None:
        reply = _replies(out)[-1]  # the execution's, after any others the example makes
        assert reply["status"] == "ok" and reply["stdout"] == stdout, reply

    return check


def _three_files(out: str) -> None:
    (reply,) = _replies(out)
    assert reply["status"] == "ok" and base64.b64decode(str(reply["stdout"])) == b"49\n", reply


def _overview(out: str) -> None:
    runtimes, ready = _replies(out)[:2]
    assert isinstance(runtimes["runtimes"], list) and ready["status"] == "ready"
    assert re.search(r"^stockade_executions_total\{", out, re.M)
    assert _replies(out)[-1]["build"]


def _collected_png(out: str) -> None:
    (reply,) = _replies(out)
    files = reply["files"]
    assert reply["status"] == "ok" and isinstance(files, list)
    assert [f["path"] for f in files] == ["plot.png"]
    assert base64.b64decode(files[0]["content"]).startswith(b"\x89PNG")


CHECKS: dict[str, Callable[[str], None]] = {
    '"print(21*2)"}': _ok("42\n"),
    "print(input()[::-1])": _ok("cba\n"),
    '"output_encoding":"base64"': _three_files,
    "/v1/runtimes\n": _overview,
    "print(len(open('data.csv').readlines()))": _ok("3\n"),
    "plt.savefig": _collected_png,
}


def _shown_output(block: str) -> list[str]:
    return [line[2:] for line in block.splitlines() if line.startswith("# ")]


@pytest.mark.parametrize(("name", "block"), _blocks(), ids=[name for name, _ in _blocks()])
def test_the_example_runs_as_written(name: str, block: str, open_server: LiveServer, tmp_path: Path) -> None:
    (tmp_path / "data.csv").write_text("a,b\n1,2\n3,4\n")  # the file the workspace example uploads
    env = {k: v for k, v in os.environ.items() if k not in ("STOCKADE_API_KEY", "ADMIN_KEY")}
    script = ADDRESS.sub(open_server.url, block)
    done = subprocess.run(
        ["bash", "-e", "-o", "pipefail", "-c", script],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    out = done.stdout.replace("\r\n", "\n")
    if shown := _shown_output(block):
        pattern = ".*?".join(".*?".join(map(re.escape, line.split("…"))) for line in shown)
        assert re.search(pattern, out, re.S), f"{name}: shows {shown}, printed {out!r}"
        return
    checks = [check for key, check in CHECKS.items() if key in block]
    assert len(checks) == 1, f"{name}: add one check for this example to CHECKS"
    checks[0](out)
