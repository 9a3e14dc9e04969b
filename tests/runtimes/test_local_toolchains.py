"""Toolchains linked from host builds the box cannot see (pyenv's) and installed from PyPI."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

from stockade.runtimes import Language
from stockade.runtimes.local_toolchains import MARKER, install_local, link_tree


def build(root: Path, version: str) -> Path:
    """A pyenv-like build: bin/python3 -> python3.X, its stdlib, site-packages, a test suite."""
    prefix = root / version
    (prefix / "bin").mkdir(parents=True)
    (prefix / "bin" / "python3.9").write_text("interpreter")
    os.symlink("python3.9", prefix / "bin" / "python3")
    os.symlink(str(prefix / "bin" / "python3.9"), prefix / "bin" / "absolute")
    lib = prefix / "lib" / "python3.9"
    for sub in ("site-packages/numpy", "test/data", "json"):
        (lib / sub).mkdir(parents=True)
    (lib / "os.py").write_text("stdlib")
    (lib / "json" / "__init__.py").write_text("json")
    (lib / "site-packages" / "numpy" / "__init__.py").write_text("third party")
    (lib / "test" / "data" / "big").write_text("tests")
    return prefix


def language(**toolchain: Any) -> Language:
    return Language.model_validate(
        {
            "id": "toy",
            "name": "Toy",
            "extensions": ["toy"],
            "source_file": "main.toy",
            "packages": ["toy"],
            "hello": "hello",
            "version": {"command": ["{toy}", "--version"], "pattern": r"toy ([0-9.]+)"},
            "run": {"command": ["{toy}", "{entry}"]},
            "vars": {"toy": "toy"},
            "toolchains": [toolchain],
        }
    )


def test_link_tree_shares_files_keeps_links_and_leaves_out_site_packages(tmp_path: Path) -> None:
    source = build(tmp_path / "versions", "3.9.18")
    target = tmp_path / "linked"
    link_tree(source, target)
    assert (target / "bin" / "python3.9").stat().st_ino == (source / "bin" / "python3.9").stat().st_ino
    assert os.readlink(target / "bin" / "python3") == "python3.9"
    # An absolute link into the build points into the linked tree: the box sees no /root.
    assert os.readlink(target / "bin" / "absolute") == str(target / "bin" / "python3.9")
    lib = target / "lib" / "python3.9"
    assert (lib / "os.py").read_text() == "stdlib" and (lib / "json" / "__init__.py").exists()
    assert list((lib / "site-packages").iterdir()) == [] and list((lib / "test").iterdir()) == []


def test_install_local_links_every_build_once(tmp_path: Path) -> None:
    for version in ("3.9.18", "3.12.1"):
        build(tmp_path / "versions", version)
    build(tmp_path / "other", "2.7.18")
    lang = language(glob=f"{tmp_path}/out/toy/*/bin/python3", import_from=f"{tmp_path}/versions/3.*",
                    vars={"toy": "{prefix}/bin/python3"})  # fmt: skip
    first = install_local([lang], root=str(tmp_path / "out"))
    out = tmp_path / "out" / "toy"
    assert first.installed == [str(out / "3.12.1"), str(out / "3.9.18")] and first.failed == []
    assert sorted(p.name for p in out.iterdir()) == ["3.12.1", "3.9.18"]  # no partial tree left
    assert (out / "3.9.18" / MARKER).read_text() == f"{tmp_path}/versions/3.9.18\n"
    again = install_local([lang], root=str(tmp_path / "out"))
    assert again.installed == [] and again.present == first.installed


def test_optional_toolchains_wait_to_be_asked_for(tmp_path: Path) -> None:
    build(tmp_path / "versions", "3.9.18")
    lang = language(glob=f"{tmp_path}/out/toy/*/bin/python3", import_from=f"{tmp_path}/versions/*",
                    vars={"toy": "{prefix}/bin/python3"}, optional=True)  # fmt: skip
    assert install_local([lang], root=str(tmp_path / "out")).installed == []
    assert len(install_local([lang], root=str(tmp_path / "out"), optional=True).installed) == 1


def test_pypi_requirement_goes_to_its_own_dir(tmp_path: Path) -> None:
    calls: list[list[str]] = []

    def pip(argv: list[str], **_: Any) -> subprocess.CompletedProcess[str]:
        calls.append(argv)
        target = Path(argv[argv.index("--target") + 1])
        (target / "ziglang").mkdir(parents=True)
        (target / "ziglang" / "zig").write_text("zig")
        return subprocess.CompletedProcess(argv, 0, "", "")

    lang = language(name="0.13", pypi="ziglang==0.13.0", vars={"toy": "/x/zig"})
    report = install_local([lang], root=str(tmp_path), runner=pip)
    assert report.installed == [str(tmp_path / "toy" / "0.13")]
    assert calls[0][-1] == "ziglang==0.13.0" and "--no-deps" in calls[0]
    assert (tmp_path / "toy" / "0.13" / "ziglang" / "zig").exists()
    assert install_local([lang], root=str(tmp_path), runner=pip).present == report.installed and len(calls) == 1


def test_failed_pip_leaves_nothing(tmp_path: Path) -> None:
    def pip(argv: list[str], **_: Any) -> subprocess.CompletedProcess[str]:
        target = Path(argv[argv.index("--target") + 1])
        target.mkdir(parents=True, exist_ok=True)
        (target / "half").write_text("x")
        return subprocess.CompletedProcess(argv, 1, "", "no such package")

    report = install_local([language(name="0.13", pypi="ziglang==0.13.0")], root=str(tmp_path), runner=pip)
    assert report.installed == [] and "no such package" in report.failed[0]
    assert list((tmp_path / "toy").iterdir()) == []
