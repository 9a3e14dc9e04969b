"""Build and locate stockade-init (init.c), the box's pid 1 that reports the command's real wait status."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
from importlib import resources
from pathlib import Path


class InitBuildError(RuntimeError):
    pass


def build_init(directory: Path, cc: str = "gcc") -> Path:
    """Compile init.c once per source version into `directory` (root-owned, read-only to boxes)."""
    source = (resources.files("stockade.sandbox") / "init.c").read_bytes()
    target = directory / f"stockade-init-{hashlib.sha256(source).hexdigest()[:12]}"
    if target.is_file():
        return target
    compiler = shutil.which(cc)
    if compiler is None:
        raise InitBuildError(f"{cc} not found: it builds the box init (install gcc and libc6-dev)")
    with tempfile.TemporaryDirectory(dir=directory) as tmp:
        src = Path(tmp) / "init.c"
        src.write_bytes(source)
        out = Path(tmp) / "init"
        # Static: pid 1 of a box depends on nothing the box's view of /usr may lack.
        cmd = [compiler, "-O2", "-static", "-Wall", "-Werror", "-o", str(out), str(src)]
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=120)
        if proc.returncode != 0:
            raise InitBuildError(f"cannot build the box init: {proc.stderr.strip()[-2000:]}")
        os.chmod(out, 0o755)
        os.replace(out, target)
    return target


def decode_status(report: bytes) -> tuple[str, int] | None:
    """("W", wait status) | ("E", errno of a failed exec) | None when init reported nothing."""
    parts = report.decode("ascii", "replace").split()
    if len(parts) == 2 and parts[0] in ("W", "E", "X") and parts[1].lstrip("-").isdigit():
        return parts[0], int(parts[1])
    return None
