"""Regenerate requirements.txt: the runtime dependency closure of `stockade`, at the versions installed in
the running interpreter (the checkout's .venv, which `make test` tested). Run: .venv/bin/python lock.py"""

from __future__ import annotations

from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

HEADER = "# The image's Python packages, pinned (deploy/image/lock.py writes this from the tested .venv).\n"
# The image runs Debian 12's python3, older than the .venv's: markers are read for it (redis-py needs
# async-timeout below 3.11.3), and what only it needs is installed in the .venv too (pyproject, dev).
IMAGE_PYTHON = {"python_version": "3.11", "python_full_version": "3.11.2"}


def closure(root: str) -> dict[str, str]:
    found: dict[str, str] = {}
    todo: list[tuple[str, frozenset[str]]] = [(root, frozenset())]
    while todo:
        name, extras = todo.pop()
        for text in metadata.distribution(name).requires or []:
            req = Requirement(text)
            wanted = extras or frozenset({""})
            if req.marker and not any(req.marker.evaluate({"extra": e, **IMAGE_PYTHON}) for e in wanted):
                continue  # an extra nobody asked for (dev), or another platform's
            key = canonicalize_name(req.name)
            if key not in found:
                found[key] = metadata.version(key)
                todo.append((key, frozenset(req.extras)))
    return found


if __name__ == "__main__":
    pins = closure("stockade")
    body = "".join(f"{name}=={version}\n" for name, version in sorted(pins.items()))
    Path(__file__).with_name("requirements.txt").write_text(HEADER + body)
