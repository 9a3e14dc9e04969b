"""Several toolchains per language: declared ones, glob rules, their order, and resolving a requested version."""

from __future__ import annotations

import asyncio
import os
import stat
from pathlib import Path
from typing import Any

import pytest

from stockade.runtimes import Language, Registry, expand_command
from stockade.runtimes.detection import candidates
from stockade.runtimes.registry import VersionUnavailable


def tool(path: Path, version: str) -> Path:
    """A fake compiler answering `--version` with `toy <version>`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"#!/bin/sh\necho toy {version}\n", encoding="utf-8")
    path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return path


def language(toolchains: list[dict[str, Any]], **extra: Any) -> Language:
    return Language.model_validate(
        {
            "id": "toy",
            "name": "Toy",
            "extensions": ["toy"],
            "source_file": "main.toy",
            "packages": ["toy"],
            "hello": "hello",
            "version": {"command": ["{toyc}", "--version"], "pattern": r"toy ([0-9][^\s]*)"},
            "compile": {"command": ["{toyc}", "-o", "main", "{sources}"]},
            "run": {"command": ["./main"]},
            "vars": {"toyc": "toyc"},
            "toolchains": toolchains,
            **extra,
        }
    )


def versions(registry: Registry) -> list[tuple[bool, str | None, str]]:
    found = asyncio.run(registry.detect_versions("toy"))
    return [(t.available, t.version, t.name) for t in found]


def test_declared_toolchains_newest_first_then_missing(tmp_path: Path) -> None:
    old, new = tool(tmp_path / "toyc-1", "1.9.2"), tool(tmp_path / "toyc-2", "1.10.0")
    lang = language(
        [
            {"vars": {"toyc": str(old)}},
            {"name": "ghost", "vars": {"toyc": str(tmp_path / "nothing")}, "optional": True},
            {"vars": {"toyc": str(new)}},
        ]
    )
    registry = Registry([lang])
    assert versions(registry) == [(True, "1.10.0", str(new)), (True, "1.9.2", str(old)), (False, None, "ghost")]
    default = asyncio.run(registry.detect("toy"))
    assert default.version == "1.10.0" and default.vars == {"toyc": str(new)}
    missing = asyncio.run(registry.detect_versions("toy"))[-1]
    assert "optional" in missing.detail and "--optional" in missing.detail


def test_glob_finds_each_build_once_and_fills_prefix(tmp_path: Path) -> None:
    for version in ("2.7.18", "3.12.1", "3.6.15"):
        tool(tmp_path / "builds" / version / "bin" / "toyc", version)
    os.symlink(tmp_path / "builds" / "3.12.1", tmp_path / "builds" / "current")  # the same build again
    (tmp_path / "builds" / "empty").mkdir()  # no compiler: not a toolchain
    pattern = f"{tmp_path}/builds/*/bin/toyc"
    lang = language([{"glob": pattern, "vars": {"toyc": "{prefix}/bin/toyc"}, "env": {"LIB": "{prefix}/lib"}}])
    registry = Registry([lang])
    builds = tmp_path / "builds"
    assert versions(registry) == [
        (True, "3.12.1", f"{builds}/3.12.1"),
        (True, "3.6.15", f"{builds}/3.6.15"),
        (True, "2.7.18", f"{builds}/2.7.18"),
    ]
    chosen = asyncio.run(registry.resolve("toy", "3.6"))
    assert chosen.env == {"LIB": f"{builds}/3.6.15/lib"}
    argv = expand_command(lang.compile.command, "main.toy", ["main.toy"], ["toy"], vars=chosen.vars)  # type: ignore[union-attr]
    assert argv == [f"{builds}/3.6.15/bin/toyc", "-o", "main", "main.toy"]


def test_glob_without_match_is_listed_missing_with_its_hint(tmp_path: Path) -> None:
    pattern = f"{tmp_path}/none/*/bin/toyc"
    lang = language([{"glob": pattern, "import_from": "/nowhere/*", "vars": {"toyc": "{prefix}/bin/toyc"}}])
    (missing,) = asyncio.run(Registry([lang]).detect_versions("toy"))
    assert not missing.available and missing.name == pattern
    assert f"nothing matches {pattern}" in missing.detail and "stockade toolchains install toy" in missing.detail


@pytest.fixture
def three(tmp_path: Path) -> Registry:
    entries = [{"vars": {"toyc": str(tool(tmp_path / f"toyc{v}", v))}} for v in ("3.9.18", "3.11.2", "3.13.0")]
    return Registry([language(entries)])


@pytest.mark.parametrize(
    ("spec", "version"),
    [(None, "3.13.0"), ("", "3.13.0"), ("*", "3.13.0"), ("3.11", "3.11.2"), ("3.11.2", "3.11.2"),
     ("3", "3.13.0"), (">=3.8 <3.12", "3.11.2"), ("~3.9", "3.9.18"), ("<3.11", "3.9.18")],
)  # fmt: skip
def test_resolve_takes_the_newest_match(three: Registry, spec: str | None, version: str) -> None:
    assert asyncio.run(three.resolve("toy", spec)).version == version


@pytest.mark.parametrize("spec", ["2.7", "3.12", ">=4", "3.11.3", "nonsense"])
def test_resolve_refuses_with_the_available_versions(three: Registry, spec: str) -> None:
    with pytest.raises(VersionUnavailable) as info:
        asyncio.run(three.resolve("toy", spec))
    assert info.value.requested == spec and info.value.available == ["3.13.0", "3.11.2", "3.9.18"]
    assert "3.13.0, 3.11.2, 3.9.18" in str(info.value) and repr(spec) in str(info.value)


def test_resolve_with_nothing_available_says_why(tmp_path: Path) -> None:
    lang = language([{"vars": {"toyc": str(tmp_path / "absent")}}])
    with pytest.raises(VersionUnavailable) as info:
        asyncio.run(Registry([lang]).resolve("toy"))
    assert info.value.requested is None and info.value.available == []
    assert "not found" in str(info.value)


def test_same_version_twice_counts_once(tmp_path: Path) -> None:
    a, b = tool(tmp_path / "a", "1.0.0"), tool(tmp_path / "b", "1.0.0")
    registry = Registry([language([{"vars": {"toyc": str(a)}}, {"vars": {"toyc": str(b)}}])])
    assert versions(registry) == [(True, "1.0.0", str(a))]


def test_language_without_toolchains_has_one_from_its_vars() -> None:
    (only,) = candidates(language([]))
    assert only.vars == {"toyc": "toyc"} and only.probe.command == ["toyc", "--version"]
    assert only.name == "toy"  # its package


@pytest.mark.parametrize(
    ("toolchains", "message"),
    [
        ([{"vars": {"cc": "x"}}], r"vars \['cc'\] are not in \[vars\]"),
        ([{"vars": {"toyc": "{prefix}/bin/toyc"}}], r"\{prefix\} is the match of a glob"),
        ([{"import_from": "/root/.pyenv/versions/*"}], "import_from needs a glob"),
        ([{"glob": "relative/*"}], "absolute path pattern"),
        ([{"glob": "/usr/lib/jvm/default/bin/javac"}], "no wildcard"),
        ([{"glob": "/usr/**/javac"}], "without '..' or '\\*\\*'"),
        ([{"pypi": "ziglang"}], "pypi needs a name"),
        ([{"ro_paths": ["etc/x"]}], "absolute"),
    ],
)
def test_bad_toolchains_fail_at_load(toolchains: list[dict[str, Any]], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        language(toolchains)


def test_unknown_placeholder_is_still_refused_where_vars_do_not_name_it() -> None:
    with pytest.raises(ValueError, match="unknown placeholder"):
        language([], run={"command": ["./main", "{toolchain}"]})


def test_packaged_multi_version_languages() -> None:
    registry = Registry.default()
    # What the issue asks for: GCC 11 and 12, Clang 13 to 16, every JDK under /usr/lib/jvm, pyenv's Pythons.
    assert [t.vars["cc"] for t in registry.get("c").toolchains] == ["gcc-12", "gcc-11"]
    assert [t.vars["cxx"] for t in registry.get("cpp").toolchains] == ["g++-12", "g++-11"]
    clang = registry.get("c-clang").toolchains
    assert sorted(t.vars["cc"] for t in clang) == ["clang-13", "clang-14", "clang-15", "clang-16"]
    assert [t.vars["cc"] for t in clang if not t.optional] == ["clang-14"]
    assert [t.glob for t in registry.get("java").toolchains] == ["/usr/lib/jvm/*/bin/javac"]
    python = registry.get("python").toolchains
    assert python[0].vars == {"python": "/usr/bin/python3"} and python[1].import_from == "/root/.pyenv/versions/3.*"
