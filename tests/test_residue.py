"""tests/residue.py, the suite's check that no test leaves a box instance or a probe dir behind."""

from __future__ import annotations

import fcntl
import os
import subprocess
import tempfile
from pathlib import Path

import pytest

from tests import residue

NAME = "stockade-t-residue"


def _instance() -> tuple[Path, Path]:
    """A run dir with its lock file and a cgroup parent of the pids controller, as a sandbox leaves them."""
    run_dir = Path(f"/run/{NAME}")
    (run_dir / "boxes").mkdir(parents=True, exist_ok=True)
    (run_dir / "roots").mkdir(exist_ok=True)
    (run_dir / ".lock").touch()
    cgroup = residue.CGROUP_ROOT / "pids" / NAME
    cgroup.mkdir(exist_ok=True)
    return run_dir, cgroup


def test_an_instance_holding_a_box_is_reported_and_kept_then_removed_once_empty() -> None:
    run_dir, cgroup = _instance()
    (cgroup / "box-0123").mkdir()
    (run_dir / "boxes" / "0123").mkdir()
    try:
        problems = residue.remove(run_dir, NAME)
        assert any("box cgroups left: ['box-0123']" in p for p in problems), problems
        assert any("box dirs and roots left" in p and "0123" in p for p in problems), problems
        assert cgroup.is_dir() and run_dir.is_dir()  # nothing of a box is removed behind the sandbox's back
    finally:
        (cgroup / "box-0123").rmdir()
        (run_dir / "boxes" / "0123").rmdir()
    assert residue.remove(run_dir, NAME) == []
    assert not cgroup.exists() and not run_dir.exists()
    assert residue.cgroup_dirs(NAME) == []


def test_a_held_instance_is_left_to_its_holder_until_the_end_of_the_session() -> None:
    run_dir, cgroup = _instance()
    residue.track(run_dir, NAME)
    fd = os.open(run_dir / ".lock", os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        assert residue.in_use(run_dir)
        assert residue.sweep() == [] and cgroup.is_dir()
        assert any("still held" in p for p in residue.sweep(final=True))
    finally:
        os.close(fd)
    assert not residue.in_use(run_dir)
    assert residue.sweep() == []
    assert not cgroup.exists() and not run_dir.exists()


def test_a_probe_dir_of_an_ended_detector_is_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    ended = subprocess.Popen(["/bin/true"])
    ended.wait()
    left = Path(tempfile.mkdtemp(prefix=f"stockade-detect-{ended.pid}-"))
    monkeypatch.setattr(residue, "PROBE_DIRS_WAIT_S", 0.2)
    try:
        residue.track(Path("/run/stockade-t-residue-none"), "stockade-t-residue-none", pid=ended.pid)
        assert residue.sweep() == [f"toolchain probe dir left: {left}"]
    finally:
        left.rmdir()
    assert residue.sweep() == []
