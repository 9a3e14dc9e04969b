"""The CLI starts light: what each command imports, the kept answer of `stockade runtimes`, the launcher.

How long it takes is measured in bench/cli_startup.py, not here; these tests hold what makes it fast (the modules
a process never loads) and that the shortcut never returns an answer whose inputs changed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from stockade.cli import runtimes_cache

STOCKADE = str(Path(sys.executable).with_name("stockade"))
# Runs the console script itself (as `stockade ARGS` would) and writes the modules loaded by its exit.
PROBE = """
import atexit, json, os, runpy, sys
atexit.register(lambda: open(os.environ["MODULES_OUT"], "w").write(json.dumps(sorted(sys.modules))))
if len(sys.argv) > 1:
    sys.argv = sys.argv[1:]  # the script, then its arguments, as its own process would see them
    runpy.run_path(sys.argv[0], run_name="__main__")
else:
    import stockade.cli
"""
WEB = {"fastapi", "starlette", "uvicorn"}
# What `import stockade.cli` and `stockade --help` must not load: each costs tens of ms.
HEAVY = WEB | {
    "cryptography", "pydantic", "rich", "httpx",
    "stockade.service.store", "stockade.engine", "stockade.runtimes", "stockade.sandbox", "stockade.clients",
}  # fmt: skip


def loaded(tmp_path: Path, *args: str, env: dict[str, str] | None = None) -> tuple[set[str], str]:
    """Modules loaded by a `stockade ARGS` process (only `import stockade.cli` without ARGS), and its stdout."""
    out = tmp_path / "modules.json"
    argv = [sys.executable, "-c", PROBE, *([STOCKADE, *args] if args else [])]
    proc = subprocess.run(
        argv, capture_output=True, text=True, timeout=120, env={**os.environ, **(env or {}), "MODULES_OUT": str(out)}
    )
    assert proc.returncode == 0, proc.stderr
    return set(json.loads(out.read_text())), proc.stdout


def top_level(modules: set[str], names: set[str]) -> set[str]:
    return {n for n in names if n in modules or any(m.startswith(n + ".") for m in modules)}


def test_import_and_help_load_no_heavy_module(tmp_path: Path) -> None:
    modules, _ = loaded(tmp_path)
    assert "stockade.cli" in modules and "click" in modules
    assert top_level(modules, HEAVY) == set()
    modules, out = loaded(tmp_path, "--help")
    assert "Usage: stockade" in out and "sandbox" in out
    assert top_level(modules, HEAVY) == set()
    modules, out = loaded(tmp_path, "keys", "create", "--help")
    assert "--create-tenant" in out
    assert top_level(modules, HEAVY) == set()


def test_local_commands_never_load_the_web_stack(tmp_path: Path) -> None:
    (tmp_path / "hello.py").write_text("print('hello')\n")
    modules, out = loaded(tmp_path, "run", str(tmp_path / "hello.py"), "--json")
    assert json.loads(out)["stdout"] == "hello\n"
    assert top_level(modules, WEB | {"cryptography", "rich", "httpx", "stockade.clients"}) == set()
    modules, out = loaded(tmp_path, "sandbox", "run", "--", "/bin/echo", "boxed")
    assert json.loads(out)["stdout"] == "boxed\n"
    assert top_level(modules, HEAVY - {"stockade.sandbox"}) == set()


def test_runtimes_answer_is_kept_and_reused_without_probing(tmp_path: Path) -> None:
    env = {"STOCKADE_CACHE_DIR": str(tmp_path / "cache")}
    probed_modules, probed = loaded(tmp_path, "runtimes", "--json", env=env)
    assert "stockade.runtimes" in probed_modules  # the first call probes
    rows = json.loads(probed)
    assert {r["language"] for r in rows} >= {"python", "c"} and (tmp_path / "cache" / "runtimes.json").is_file()
    kept_modules, kept = loaded(tmp_path, "runtimes", "--json", env=env)
    assert json.loads(kept) == rows
    assert top_level(kept_modules, HEAVY) == set()  # neither the registry nor a version command
    table_modules, table = loaded(tmp_path, "runtimes", env=env)
    assert "languages available" in table.splitlines()[0]
    python = next(r for r in rows if r["language"] == "python")
    assert any(line.split()[:1] == ["python"] and python["version"] in line for line in table.splitlines())
    swift = next(r for r in rows if r["language"] == "swift")  # a language no registry here provides
    assert swift["missing"] and not swift["available"] and swift["detail"]
    assert any(line.startswith("swift ") and f"not provided ({swift['detail']})" in line for line in table.splitlines())
    assert top_level(table_modules, HEAVY) == set()
    refreshed_modules, refreshed = loaded(tmp_path, "runtimes", "--json", "--refresh", env=env)
    assert "stockade.runtimes" in refreshed_modules
    assert [(r["language"], r["available"]) for r in json.loads(refreshed)] == [
        (r["language"], r["available"]) for r in rows
    ]


PROGRAMS = {"tool": "tool", "gone": "absent-program"}  # language -> its version command's program
ROWS = [{"language": "tool", "name": "Tool", "available": True, "version": "1.0", "detail": "", "compiled": False}]


@pytest.fixture
def fake_host(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """A cache dir, a dpkg status file and a PATH with one program, all of this test's own."""
    monkeypatch.setenv(runtimes_cache.CACHE_ENV, str(tmp_path / "cache"))
    dpkg = tmp_path / "dpkg-status"
    dpkg.write_text("Package: tool\n")
    monkeypatch.setattr(runtimes_cache, "DPKG_STATUS", dpkg)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "tool").write_text("#!/bin/sh\necho tool 1.0\n")
    (bin_dir / "tool").chmod(0o755)
    path = f"{tmp_path / 'empty'}:{bin_dir}"
    runtimes_cache._save(ROWS, runtimes_cache.fingerprint(PROGRAMS, path))
    assert runtimes_cache.load() is not None and runtimes_cache.load()[0] == ROWS  # type: ignore[index]
    return {"dpkg": dpkg, "bin": bin_dir, "path": path, "tmp": tmp_path}


def test_a_package_change_drops_the_kept_answer(fake_host: dict[str, Any]) -> None:
    with fake_host["dpkg"].open("a") as f:
        f.write("Package: other\n")
    assert runtimes_cache.load() is None


def test_a_replaced_program_drops_the_kept_answer(fake_host: dict[str, Any]) -> None:
    tool = fake_host["bin"] / "tool"
    tool.unlink()
    tool.write_text("#!/bin/sh\necho tool 2.0\n")
    tool.chmod(0o755)
    assert runtimes_cache.load() is None


def test_a_program_found_earlier_on_the_path_drops_the_kept_answer(fake_host: dict[str, Any]) -> None:
    # A program shadowing the one probed (first PATH entry), and a missing one that appears.
    earlier = fake_host["tmp"] / "empty"
    earlier.mkdir()
    (earlier / "tool").write_text("#!/bin/sh\necho tool 9\n")
    (earlier / "tool").chmod(0o755)
    assert runtimes_cache.load() is None


def test_a_missing_program_that_appears_drops_the_kept_answer(fake_host: dict[str, Any]) -> None:
    (fake_host["bin"] / "absent-program").write_text("#!/bin/sh\n")
    (fake_host["bin"] / "absent-program").chmod(0o755)
    assert runtimes_cache.load() is None


def test_a_switched_alternative_drops_the_kept_answer(fake_host: dict[str, Any]) -> None:
    tool = fake_host["bin"] / "tool"
    real = fake_host["tmp"] / "tool-real"
    tool.rename(real)
    tool.symlink_to(real)  # same file, now through a link: the target's stat is the same
    assert runtimes_cache.load() is None  # the path found differs from the probed one
    runtimes_cache._save(
        ROWS, runtimes_cache.fingerprint({"tool": "tool", "gone": "absent-program"}, fake_host["path"])
    )
    assert runtimes_cache.load() is not None
    other = fake_host["tmp"] / "tool-other"
    other.write_text("#!/bin/sh\necho tool 3.0\n")
    other.chmod(0o755)
    tool.unlink()
    tool.symlink_to(other)
    assert runtimes_cache.load() is None


def test_a_damaged_cache_file_is_probed_again(fake_host: dict[str, Any]) -> None:
    path = runtimes_cache.cache_path()
    for damaged in ("not json", "[]", '{"format": 1}', json.dumps({**json.loads(path.read_text()), "format": 0})):
        path.write_text(damaged)
        assert runtimes_cache.load() is None


def test_stockade_is_on_a_new_root_shells_path() -> None:
    """`make setup` links /usr/local/bin/stockade to this checkout's entry point (README: commands as typed)."""
    proc = subprocess.run(
        ["env", "-i", "HOME=/root", "bash", "-lc", "command -v stockade && stockade --help"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    found, *help_lines = proc.stdout.splitlines()
    assert Path(found).resolve() == Path(STOCKADE).resolve()
    assert help_lines[0].startswith("Usage: stockade")
