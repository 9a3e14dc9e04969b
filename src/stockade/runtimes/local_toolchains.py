"""Toolchains that are no Debian package, put under TOOLCHAINS_DIR (below /usr, which every box sees).

- `import_from`: host builds the box cannot see (pyenv's, under /root) are linked there: a tree of hard
  links (a copy across file systems) of their files, leaving out `site-packages` (what the host installed
  into that interpreter is no part of it) and the test suite. Symbolic links are kept as they are, an
  absolute one into the build pointed at the linked tree instead.
- `pypi`: a requirement pip installs there with `--target` (a toolchain shipped as a wheel: `ziglang`).

Both are idempotent: a finished tree holds a marker naming where it came from, and is built under a
temporary name first, so an interrupted install leaves nothing that detection would find.
"""

from __future__ import annotations

import errno
import functools
import glob
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from .detection import TOOLCHAINS_DIR
from .model import Language

Runner = Callable[..., "subprocess.CompletedProcess[str]"]
MARKER = ".stockade-source"
_SKIPPED_DIRS = ("site-packages", "test", "tests", "idle_test")


@dataclass
class LocalReport:
    installed: list[str] = field(default_factory=list)  # trees made now
    present: list[str] = field(default_factory=list)  # trees already there
    failed: list[str] = field(default_factory=list)  # "what: why"


def _skipped(relative: Path) -> bool:
    # lib/pythonX.Y/site-packages and lib/pythonX.Y/test: the parts that are not the interpreter.
    parts = relative.parts
    return len(parts) == 3 and parts[0] == "lib" and parts[1].startswith("python") and parts[2] in _SKIPPED_DIRS


def _link_file(src: Path, dst: Path) -> None:
    try:
        os.link(src, dst, follow_symlinks=False)
    except OSError as exc:
        if exc.errno not in (errno.EXDEV, errno.EPERM, errno.EMLINK):
            raise
        shutil.copy2(src, dst, follow_symlinks=False)


def link_tree(source: Path, target: Path) -> None:
    """Make `target` a tree of hard links to `source`'s files (see the module's docstring)."""
    for directory, dirs, files in os.walk(source):
        here = Path(directory)
        relative = here.relative_to(source)
        out = target / relative
        out.mkdir(mode=0o755, exist_ok=True)
        if _skipped(relative):
            dirs[:] = []  # an empty directory stays: the interpreter expects site-packages to exist
            continue
        for name in [*files, *(d for d in dirs if (here / d).is_symlink())]:
            src = here / name
            if src.is_symlink():
                link = os.readlink(src)
                if os.path.isabs(link) and (link == str(source) or link.startswith(f"{source}/")):
                    link = str(target) + link[len(str(source)) :]
                os.symlink(link, out / name)
            elif src.is_file():
                _link_file(src, out / name)
        dirs[:] = [d for d in dirs if not (here / d).is_symlink()]


def _done(path: Path, source: str) -> bool:
    try:
        return (path / MARKER).read_text(encoding="utf-8").strip() == source
    except OSError:
        return False


def _build(dest: Path, source: str, make: Callable[[Path], None]) -> None:
    """Build into a temporary sibling, then rename it into place (replacing an older tree)."""
    temporary = dest.with_name(f".{dest.name}.partial")
    shutil.rmtree(temporary, ignore_errors=True)
    temporary.parent.mkdir(mode=0o755, parents=True, exist_ok=True)
    try:
        make(temporary)
        (temporary / MARKER).write_text(source + "\n", encoding="utf-8")
        os.chmod(temporary, 0o755)
        shutil.rmtree(dest, ignore_errors=True)
        os.rename(temporary, dest)
    finally:
        shutil.rmtree(temporary, ignore_errors=True)


def install_local(
    languages: Iterable[Language],
    *,
    optional: bool = False,
    root: str = TOOLCHAINS_DIR,
    runner: Runner = subprocess.run,
) -> LocalReport:
    """Link every `import_from` build and pip-install every `pypi` requirement the languages declare."""
    report = LocalReport()
    for language in languages:
        for toolchain in language.toolchains:
            if toolchain.optional and not optional:
                continue
            base = Path(root) / language.id
            if toolchain.import_from is not None:
                for source in sorted({os.path.realpath(p) for p in glob.glob(toolchain.import_from)}):
                    if os.path.isdir(source):
                        _one(report, base / Path(source).name, source, functools.partial(link_tree, Path(source)))
            if toolchain.pypi is not None and toolchain.name is not None:
                pip = functools.partial(_pip, requirement=toolchain.pypi, runner=runner)
                _one(report, base / toolchain.name, f"pypi:{toolchain.pypi}", pip)
    return report


def _one(report: LocalReport, dest: Path, source: str, make: Callable[[Path], None]) -> None:
    if _done(dest, source):
        report.present.append(str(dest))
        return
    try:
        _build(dest, source, make)
    except (OSError, RuntimeError) as exc:
        report.failed.append(f"{dest}: {exc}")
    else:
        report.installed.append(str(dest))


def _pip(target: Path, *, requirement: str, runner: Runner) -> None:
    argv = [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-compile", "--target", str(target)]
    proc = runner([*argv, requirement], capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"pip install {requirement} failed: {(proc.stderr or proc.stdout or '')[-500:]}")
