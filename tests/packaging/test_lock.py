"""deploy/image/requirements.txt pins exactly the runtime dependency closure of stockade: a dependency
added to pyproject.toml without regenerating the lock would build an image that cannot start."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from packaging.utils import canonicalize_name

IMAGE = Path(__file__).resolve().parents[2] / "deploy" / "image"


def test_the_image_lock_names_every_runtime_dependency_and_nothing_else() -> None:
    spec = importlib.util.spec_from_file_location("image_lock", IMAGE / "lock.py")
    assert spec and spec.loader
    lock = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(lock)
    pinned = {
        canonicalize_name(line.split("==")[0])
        for line in (IMAGE / "requirements.txt").read_text().splitlines()
        if line and not line.startswith("#")
    }
    needed = set(lock.closure("stockade"))
    assert needed == pinned, (
        f"run .venv/bin/python deploy/image/lock.py: missing {needed - pinned}, extra {pinned - needed}"
    )
