"""Build the two small C helpers of every box, once per source version, into the sandbox's run dir:
stockade-launch (launch.c: cgroup, rlimits, uid drop, exec bubblewrap) and stockade-init (init.c: the
box's pid 1, which reports the command's real wait status)."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
from importlib import resources
from pathlib import Path


class HelperBuildError(RuntimeError):
    pass


def build_helper(name: str, directory: Path, cc: str = "gcc") -> Path:
    """Compile `<name>.c` into `directory` (root-owned; boxes see only the init, read-only)."""
    source = (resources.files("stockade.sandbox") / f"{name}.c").read_bytes()
    target = directory / f"stockade-{name}-{hashlib.sha256(source).hexdigest()[:12]}"
    if target.is_file():
        return target
    compiler = shutil.which(cc)
    if compiler is None:
        raise HelperBuildError(f"{cc} not found: it builds the box helpers (install gcc and libc6-dev)")
    with tempfile.TemporaryDirectory(dir=directory) as tmp:
        src = Path(tmp) / f"{name}.c"
        src.write_bytes(source)
        out = Path(tmp) / name
        # Static: pid 1 of a box depends on nothing the box's view of /usr may lack.
        cmd = [compiler, "-O2", "-static", "-Wall", "-Werror", "-o", str(out), str(src)]
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=120)
        if proc.returncode != 0:
            raise HelperBuildError(f"cannot build stockade-{name}: {proc.stderr.strip()[-2000:]}")
        os.chmod(out, 0o755)
        os.replace(out, target)
    return target


def decode_status(report: bytes) -> tuple[str, int, int] | None:
    """(kind, value, refused forks) of init's report: ("W", wait status, n) | ("E", errno of a failed
    exec, 0) | ("X", errno of init's own failure, 0); None when init reported nothing."""
    parts = report.decode("ascii", "replace").split()
    if not parts or parts[0] not in ("W", "E", "X") or len(parts) != (3 if parts[0] == "W" else 2):
        return None
    if not all(p.lstrip("-").isdigit() for p in parts[1:]):
        return None
    return parts[0], int(parts[1]), int(parts[2]) if len(parts) == 3 else 0
