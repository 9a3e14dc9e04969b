"""Operator commands: `stockade sandbox check` and `stockade sandbox run` (JSON, exit 0 whatever the verdict)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

STOCKADE = str(Path(sys.executable).with_name("stockade"))


def stockade(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([STOCKADE, *args], capture_output=True, text=True, timeout=120, input=stdin)


def test_check_reports_the_host_and_passes_here() -> None:
    p = stockade("sandbox", "check", "--json")
    assert p.returncode == 0, p.stderr
    report = json.loads(p.stdout)
    assert report["ok"] is True and report["problems"] == []
    facts = report["facts"]
    assert facts["bubblewrap"].startswith("bubblewrap ")
    assert facts["cgroup"]["mode"] in ("v1", "v2") and facts["seccomp"] is True
    assert facts["probe_run"]["status"] == "ok"


def test_run_prints_the_result_and_exits_0_whatever_the_verdict(tmp_path: Path) -> None:
    (tmp_path / "data.txt").write_text("from a file\n")
    (tmp_path / "in.txt").write_text("from stdin\n")
    p = stockade(
        "sandbox", "run", "--stdin", str(tmp_path / "in.txt"), "--file", f"d.txt={tmp_path / 'data.txt'}", "--",
        "/bin/sh", "-c", "cat d.txt; cat; exit 4",
    )  # fmt: skip
    assert p.returncode == 0, p.stderr
    r = json.loads(p.stdout)
    assert (r["status"], r["exit_code"], r["stdout"]) == ("runtime_error", 4, "from a file\nfrom stdin\n")

    p = stockade("sandbox", "run", "--memory-mb", "32", "--", "/usr/bin/python3", "-c", "x = bytearray(300 << 20)")
    assert p.returncode == 0 and json.loads(p.stdout)["status"] == "memory_limit"

    p = stockade("sandbox", "run", "--cpu-ms", "300", "--", "/bin/sh", "-c", "while :; do :; done")
    r = json.loads(p.stdout)
    assert p.returncode == 0 and (r["status"], r["timeout_kind"]) == ("timeout", "cpu")


def test_run_rejects_a_malformed_file_option() -> None:
    p = stockade("sandbox", "run", "--file", "no-equals-sign", "--", "/bin/true")
    assert p.returncode == 2 and "NAME=PATH" in p.stderr
