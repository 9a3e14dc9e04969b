"""The box's two C helpers: stockade-launch (root -> slot uid, cgroup, rlimits) and stockade-init (pid 1)."""

from __future__ import annotations

import os
import resource
import signal
import subprocess
from pathlib import Path

import pytest

from stockade.sandbox.helpers import build_helper, decode_status
from stockade.sandbox.runner import _exit_facts


@pytest.fixture(scope="module")
def helpers(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("helpers")
    return {name: build_helper(name, d) for name in ("launch", "init")}


def test_build_is_cached_by_source_hash(helpers: dict[str, Path]) -> None:
    assert build_helper("launch", helpers["launch"].parent) == helpers["launch"]
    assert os.access(helpers["launch"], os.X_OK)


def test_launch_drops_to_the_slot_uid_with_its_rlimits(helpers: dict[str, Path]) -> None:
    argv = [str(helpers["launch"]), "-r", f"{resource.RLIMIT_NOFILE}:77", "-u", "62990", "-g", "62991", "--",
            "/bin/sh", "-c", "id -u; id -g; id -G; ulimit -n; ulimit -Hn; cat /proc/self/oom_score_adj"]  # fmt: skip
    out = subprocess.run(argv, capture_output=True, text=True, check=True).stdout.split()
    assert out == ["62990", "62991", "62991", "77", "77", "1000"]


@pytest.mark.parametrize(
    "args",
    [
        ["-p", "/nonexistent/cgroup.procs", "-u", "62990", "-g", "62990", "--", "/bin/true"],
        ["-u", "0", "-g", "62990", "--", "/bin/true"],  # never root
        ["-x", "1", "-u", "62990", "-g", "62990", "--", "/bin/true"],
        ["-u", "62990", "-g", "62990", "--", "/nonexistent"],
    ],
)
def test_launch_fails_closed_with_its_own_status(helpers: dict[str, Path], args: list[str]) -> None:
    p = subprocess.run([str(helpers["launch"]), *args], capture_output=True, text=True)
    assert p.returncode == 125 and p.stderr.startswith("stockade-launch:")


def test_init_reports_the_real_wait_status(helpers: dict[str, Path]) -> None:
    r, w = os.pipe()
    p = subprocess.run([str(helpers["init"]), str(w), "/bin/sh", "-c", "kill -TERM $$"], pass_fds=(w,))
    os.close(w)
    kind, status = decode_status(os.read(r, 64)) or ("?", 0)
    assert kind == "W" and os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGTERM
    assert p.returncode == 128 + signal.SIGTERM


def test_exit_facts() -> None:
    assert _exit_facts(("W", 3 << 8), 3, b"") == (3, None, None)
    assert _exit_facts(("W", signal.SIGSEGV), 139, b"") == (None, signal.SIGSEGV, None)
    assert _exit_facts(("E", 2), 127, b"") == (127, None, None)
    assert _exit_facts(None, -9, b"") == (None, 9, None)
    assert _exit_facts(None, 1, b"bwrap: Can't mount proc")[2] == "bwrap: Can't mount proc"
    assert _exit_facts(None, 125, b"stockade-launch: join cgroup x")[2] == "stockade-launch: join cgroup x"
    # Without a report from init, a program's own words are never taken for a setup failure.
    assert _exit_facts(None, 159, b"bwrap: fake")[2] is None
