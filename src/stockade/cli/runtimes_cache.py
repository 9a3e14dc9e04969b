"""What `stockade runtimes` found, kept for the next call while nothing the answer depends on has changed.

Probing runs every language's version command: 3-4 s for 70 languages on a 2-core host (a JVM start is ~1 s
each). A kept answer is used only while its fingerprint still holds:
- the language definitions and the probing code (every file of stockade.runtimes, and this one, by stat);
- the dpkg database (/var/lib/dpkg/status: any package installed, upgraded or removed);
- for each language, the program its version command resolves to on the box PATH: the path found, its
  target with symlinks resolved (so update-alternatives counts), and that file's stat.
Only a complete, deterministic answer is kept: every language either found with a version or its program
missing from the PATH (which is checked again each time). A probe that timed out, exited non-zero or printed no
version is not kept, so the next call probes again. What this cannot see is a change outside dpkg to a file the
version command uses besides its program (a JVM deleted by hand under a kotlinc script): `--refresh` probes anew.
"""

from __future__ import annotations

import contextlib
import glob
import importlib.util
import json
import os
import shutil
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

CACHE_ENV = "STOCKADE_CACHE_DIR"
DPKG_STATUS = Path("/var/lib/dpkg/status")
FORMAT = 3  # 2: a row per toolchain; 3: and one per missing language
Row = dict[str, Any]


def cache_path() -> Path:
    configured = os.environ.get(CACHE_ENV)
    if configured:
        return Path(configured) / "runtimes.json"
    if os.geteuid() == 0:
        return Path("/var/cache/stockade/runtimes.json")
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "stockade" / "runtimes.json"


def _stat(path: str | Path) -> list[int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return [st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns]


def _runtimes_dir() -> Path:
    # Found without importing the package (its import builds the pydantic models: the cost this avoids).
    spec = importlib.util.find_spec("stockade.runtimes")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("stockade.runtimes not found")
    return Path(next(iter(spec.submodule_search_locations)))


def _program(name: str, box_path: str) -> list[Any] | None:
    found = shutil.which(name, path=box_path)
    if found is None:
        return None
    real = os.path.realpath(found)
    return [found, real, _stat(real)]


def fingerprint(programs: dict[str, str], box_path: str, globs: list[str] | None = None) -> dict[str, Any]:
    """Everything a kept answer depends on, as JSON values (so a loaded one compares equal). `programs`: each
    toolchain's ("lang#n") version command program; `globs`: the toolchain rules' patterns, and what they match."""
    pkg = _runtimes_dir()
    files = sorted([*pkg.rglob("*.py"), *pkg.glob("*.toml"), *(pkg / "languages").glob("*.toml")])
    return {
        "code": {str(f.relative_to(pkg)): _stat(f) for f in files} | {"cli": _stat(__file__)},
        "dpkg": _stat(DPKG_STATUS),
        "box_path": box_path,
        "programs": {key: [name, _program(name, box_path)] for key, name in sorted(programs.items())},
        "globs": {pattern: sorted(glob.glob(pattern)) for pattern in sorted(globs or [])},
    }


def load() -> tuple[list[Row], str] | None:
    """The kept rows and when they were probed, if their fingerprint still holds."""
    try:
        data = json.loads(cache_path().read_text(encoding="utf-8"))
        if data["format"] != FORMAT:
            return None
        kept = data["fingerprint"]
        programs = {str(key): str(entry[0]) for key, entry in kept["programs"].items()}
        if fingerprint(programs, str(kept["box_path"]), [str(g) for g in kept["globs"]]) != kept:
            return None
        rows, probed_at = data["rows"], str(data["probed_at"])
    except (OSError, ValueError, LookupError, TypeError, AttributeError):
        return None  # absent, unreadable or another shape: probe
    return (rows, probed_at) if isinstance(rows, list) else None


def _save(rows: list[Row], kept: dict[str, Any]) -> None:
    path = cache_path()
    body = {"format": FORMAT, "probed_at": datetime.now(UTC).isoformat(timespec="seconds"), "fingerprint": kept,
            "rows": rows}  # fmt: skip
    # Best effort: a cache that cannot be written only means the next call probes again.
    with contextlib.suppress(OSError):
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".runtimes-")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                json.dump(body, f)
            os.chmod(tmp, 0o644)
            os.replace(tmp, path)
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)


def probe() -> list[Row]:
    """Probe every language now, a row per toolchain (the default first); keep the answer when it is complete
    and nothing changed meanwhile."""
    import asyncio

    from stockade.cli.languages import default_registry
    from stockade.runtimes.detection import candidates
    from stockade.runtimes.registry import BOX_PATH

    registry = default_registry()
    declared = {lang.id: candidates(lang) for lang in registry.languages}
    programs = {f"{lang}#{i}": c.probe.command[0] for lang, cs in declared.items() for i, c in enumerate(cs)}
    globs = [t.glob for lang in registry.languages for t in lang.toolchains if t.glob is not None]
    before = fingerprint(programs, BOX_PATH, globs)
    found = asyncio.run(registry.detect_all_versions())
    rows = [
        {
            "language": lang.id,
            "name": lang.name,
            "toolchain": toolchain.name,
            "default": i == 0,
            "available": toolchain.available,
            "version": toolchain.version,
            "detail": toolchain.detail,
            "compiled": lang.compiled,
        }
        for lang in registry.languages
        for i, toolchain in enumerate(found[lang.id])
    ]
    rows += [
        {"language": m.id, "name": m.name, "toolchain": "", "default": True, "available": False, "version": None,
         "detail": m.reason, "compiled": None, "missing": True}
        for m in registry.missing
    ]  # fmt: skip
    ready = {(lang, t.name) for lang, toolchains in found.items() for t in toolchains if t.available}
    settled = all(
        (lang, c.name) in ready or before["programs"][f"{lang}#{i}"][1] is None
        for lang, cs in declared.items()
        for i, c in enumerate(cs)
    )
    if settled and fingerprint(programs, BOX_PATH, globs) == before:
        _save(rows, before)
    return rows
