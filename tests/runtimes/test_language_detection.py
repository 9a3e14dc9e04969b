"""Toolchain detection: found/missing binaries, failures, timeouts and caching."""

from __future__ import annotations

import asyncio
import os
import stat
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from stockade.runtimes import Language, Registry
from stockade.runtimes.registry import probe_toolchain


def make_language(lang_id: str, version_cmd: list[str], pattern: str = r"toy ([0-9.]+)") -> Language:
    return Language.model_validate(
        {
            "id": lang_id,
            "name": lang_id,
            "extensions": [lang_id],
            "default_for_extension": False,
            "source_file": f"main.{lang_id}",
            "packages": ["toy"],
            "hello": "hello",
            "version": {"command": version_cmd, "pattern": pattern},
            "run": {"command": ["toy", "{entry}"]},
        }
    )


def script(tmp_path: Path, name: str, body: str) -> str:
    path = tmp_path / name
    path.write_text("#!/bin/sh\n" + body, encoding="utf-8")
    path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return str(path)


async def test_missing_binary_is_unavailable() -> None:
    lang = make_language("ghost", ["stockade-no-such-compiler-xyz", "--version"])
    result = await Registry([lang]).detect("ghost")
    assert (result.available, result.version) == (False, None)
    assert "stockade-no-such-compiler-xyz not found" in result.detail


async def test_binary_outside_box_path_is_not_found(tmp_path: Path) -> None:
    # A relative name is looked up only on the box PATH, never on the caller's PATH.
    lang = make_language("ghost", [Path(script(tmp_path, "toyc", "echo toy 1.0\n")).name])
    result = await probe_toolchain(lang)
    assert not result.available and "not found" in result.detail


async def test_version_parsed_from_stderr(tmp_path: Path) -> None:
    lang = make_language("toy", [script(tmp_path, "toyc", "echo 'toy 1.2.3 (test)' >&2\n")])
    result = await probe_toolchain(lang)
    assert result.available
    assert result.version == "1.2.3"


async def test_failing_version_command(tmp_path: Path) -> None:
    lang = make_language("toy", [script(tmp_path, "toyc", "echo broken install; exit 4\n")])
    result = await probe_toolchain(lang)
    assert not result.available
    assert "exited with 4" in result.detail and "broken install" in result.detail


async def test_pattern_mismatch(tmp_path: Path) -> None:
    lang = make_language("toy", [script(tmp_path, "toyc", "echo something else\n")])
    result = await probe_toolchain(lang)
    assert not result.available
    assert "did not match" in result.detail


async def test_timeout_kills_the_probe(tmp_path: Path) -> None:
    lang = make_language("toy", [script(tmp_path, "toyc", "sleep 30 & sleep 30\n")])
    started = asyncio.get_running_loop().time()
    result = await probe_toolchain(lang, timeout=0.5)
    assert asyncio.get_running_loop().time() - started < 5
    assert not result.available
    assert "timed out" in result.detail


async def test_probe_sees_box_environment(tmp_path: Path) -> None:
    body = 'echo "toy 1.0 $PATH $LANG $TOY_MODE"\n'
    lang = make_language("toy", [script(tmp_path, "toyc", body)], pattern=r"toy ([0-9.]+ \S+ \S+ \S+)")
    lang = lang.model_copy(update={"env": {"TOY_MODE": "quiet"}})
    result = await probe_toolchain(lang)
    assert result.version == "1.0 /usr/local/bin:/usr/bin:/bin C.UTF-8 quiet"


async def test_detect_caches_and_refreshes(tmp_path: Path) -> None:
    counter = tmp_path / "count"
    body = f'echo x >> "{counter}"\necho toy 2.0\n'
    lang = make_language("toy", [script(tmp_path, "toyc", body)])
    registry = Registry([lang])
    assert registry.cached("toy") is None
    first = await registry.detect("toy")
    second = await registry.detect(lang)
    assert first is second and first.version == "2.0"
    assert counter.read_text().count("x") == 1
    await registry.detect("toy", refresh=True)
    assert counter.read_text().count("x") == 2
    assert registry.cached("toy") is not None


async def test_concurrent_detects_share_one_probe(tmp_path: Path) -> None:
    counter = tmp_path / "count"
    body = f'echo x >> "{counter}"\nsleep 0.3\necho toy 2.0\n'
    registry = Registry([make_language("toy", [script(tmp_path, "toyc", body)])])
    results = await asyncio.gather(*(registry.detect("toy") for _ in range(5)))
    assert all(r.version == "2.0" for r in results)
    assert counter.read_text().count("x") == 1


async def test_detect_all_runs_every_language(tmp_path: Path) -> None:
    ok = make_language("toy", [script(tmp_path, "toyc", "echo toy 3.1\n")])
    missing = make_language("ghost", ["stockade-no-such-compiler-xyz"])
    results = await Registry([ok, missing]).detect_all()
    assert list(results) == ["toy", "ghost"]
    assert results["toy"].available and results["toy"].version == "3.1"
    assert not results["ghost"].available


async def test_real_shell_is_detected() -> None:
    # /bin/sh exists on every Debian machine; its probe needs no language package.
    lang = make_language("shtest", ["sh", "-c", "echo toy 9.9"])
    result = await probe_toolchain(lang)
    assert result.available and result.version == "9.9"


def _detect_dirs(pid: int) -> list[Path]:
    return sorted(Path(tempfile.gettempdir()).glob(f"stockade-detect-{pid}-*"))


async def test_the_probe_home_is_removed_after_the_probe(tmp_path: Path) -> None:
    seen = tmp_path / "home"
    lang = make_language("toy", [script(tmp_path, "toyc", f'echo "$HOME" > "{seen}"\necho toy 1.0\n')])
    assert (await probe_toolchain(lang)).available
    home = Path(seen.read_text().strip())
    assert home.name.startswith(f"stockade-detect-{os.getpid()}-")
    assert not home.exists()
    timed_out = make_language("toy", [script(tmp_path, "hangs", f'echo "$HOME" > "{seen}"\nsleep 30\n')])
    assert not (await probe_toolchain(timed_out, timeout=0.5)).available
    assert not Path(seen.read_text().strip()).exists()


KILLED_DETECTOR = """
import asyncio, sys
from tests.runtimes.test_language_detection import make_language
from stockade.runtimes.registry import probe_toolchain
asyncio.run(probe_toolchain(make_language("toy", [sys.argv[1]]), timeout=120))
"""


def test_the_probe_home_is_removed_when_the_detecting_process_is_killed(tmp_path: Path) -> None:
    """kill -9 of the service during start-up detection: no finally of it runs, so the dir's removal
    must not depend on it (tests/residue.py checks the whole suite for such dirs)."""
    seen = tmp_path / "home"
    # A chatty command, like a version command that writes its banner: it dies at its first write after
    # its reader has gone.
    body = f'echo "$HOME" > "{seen}.tmp" && mv "{seen}.tmp" "{seen}"\nwhile :; do echo toy; sleep 0.05; done\n'
    toyc = script(tmp_path, "toyc", body)
    proc = subprocess.Popen([sys.executable, "-c", KILLED_DETECTOR, toyc], cwd=Path(__file__).parents[2])
    try:
        deadline = time.monotonic() + 60
        while not seen.exists():
            assert proc.poll() is None and time.monotonic() < deadline, "the probe never started"
            time.sleep(0.02)
        home = Path(seen.read_text().strip())
        assert home.is_dir() and home.name.startswith(f"stockade-detect-{proc.pid}-")
    finally:
        proc.kill()
        proc.wait()
    deadline = time.monotonic() + 30
    while home.exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not home.exists(), "the killed detector's probe home is still there"
    assert _detect_dirs(proc.pid) == []


async def test_version_is_the_first_alternative_that_matched(tmp_path: Path) -> None:
    # Kotlin's pattern prefers the compiler jar's release and falls back to what kotlinc says.
    pattern = r"toy-([0-9][^\s]*)\.jar|toy ([0-9][^\s]*)"
    both = make_language("toy", [script(tmp_path, "both", "echo toy-1.3.31.jar; echo toy 1.3-SNAPSHOT\n")], pattern)
    second = make_language("toy", [script(tmp_path, "second", "echo toy 1.3-SNAPSHOT\n")], pattern)
    assert (await probe_toolchain(both)).version == "1.3.31"
    assert (await probe_toolchain(second)).version == "1.3-SNAPSHOT"
