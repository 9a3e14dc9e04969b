"""Package installation planning with a fake apt/dpkg runner (no network, no root needed), and how
the installed toolchains are used."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from stockade.runtimes import BOX_PATH, Registry, all_packages, install_packages
from stockade.runtimes.toolchains import packages_of


class FakeApt:
    def __init__(self, installed: set[str], cached: set[str], after_update: set[str] | None = None) -> None:
        self.installed = set(installed)
        self.cached = set(cached)
        self.after_update = after_update or set()
        self.calls: list[list[str]] = []
        self.install_rc = 0

    def __call__(self, argv: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
        self.calls.append(list(argv))
        assert kwargs.get("env", {}).get("DEBIAN_FRONTEND") == "noninteractive"
        if argv[0] == "dpkg-query":
            lines = [f"{p}\tii " for p in argv[3:] if p in self.installed]
            return subprocess.CompletedProcess(argv, 1 if len(lines) < len(argv) - 3 else 0, "\n".join(lines), "")
        if argv[:2] == ["apt-cache", "policy"]:
            pkg = argv[2]
            out = f"{pkg}:\n  Installed: (none)\n  Candidate: 1.0\n" if pkg in self.cached else ""
            return subprocess.CompletedProcess(argv, 0, out, "")
        if argv[0] == "apt-get" and "update" in argv:
            self.cached |= self.after_update
            return subprocess.CompletedProcess(argv, 0, "updated", "")
        if argv[0] == "apt-get" and "install" in argv:
            if self.install_rc == 0:
                self.installed |= {a for a in argv if not a.startswith("-") and a not in {"apt-get", "install"}}
            return subprocess.CompletedProcess(argv, self.install_rc, "installing", "")
        raise AssertionError(argv)

    def commands(self, word: str) -> list[list[str]]:
        return [c for c in self.calls if word in c]


def test_union_of_packages_is_sorted_and_unique() -> None:
    registry = Registry.default()
    langs = [registry.get("c"), registry.get("cpp"), registry.get("c-clang")]
    # The languages' own packages and their toolchains' (gcc-11 and -12, clang-14), not the optional ones.
    assert packages_of(langs) == [
        "clang",
        "clang-14",
        "g++",
        "g++-11",
        "g++-12",
        "gcc",
        "gcc-11",
        "gcc-12",
        "libc6-dev",
    ]
    assert set(packages_of(langs, optional=True)) - set(packages_of(langs)) == {"clang-13", "clang-15", "clang-16"}
    everything = all_packages(registry)
    assert everything == sorted(set(everything))
    assert {"python3", "openjdk-17-jdk-headless", "golang-go"} <= set(everything)


def test_nothing_to_do_when_installed() -> None:
    registry = Registry.default()
    apt = FakeApt(installed={"python3"}, cached=set())
    report = install_packages([registry.get("python")], runner=apt)
    assert report.ok and not report.changed
    assert report.already_installed == ["python3"]
    assert apt.commands("install") == [] and apt.commands("update") == []


def test_installs_missing_without_update_when_cached() -> None:
    registry = Registry.default()
    compilers = {"gcc-11", "gcc-12", "g++-11", "g++-12"}
    apt = FakeApt(installed={"gcc", *compilers}, cached={"libc6-dev", "g++"})
    report = install_packages([registry.get("c"), registry.get("cpp")], runner=apt)
    assert report.ok and report.installed == ["g++", "libc6-dev"]
    assert apt.commands("update") == []
    (install,) = apt.commands("install")
    assert "--no-install-recommends" in install and "-y" in install
    assert install[-2:] == ["g++", "libc6-dev"]
    # A second run is a no-op.
    again = install_packages([registry.get("c"), registry.get("cpp")], runner=apt)
    assert again.ok and not again.changed and len(apt.commands("install")) == 1


def test_updates_index_only_when_a_package_is_unknown() -> None:
    registry = Registry.default()
    apt = FakeApt(installed=set(), cached=set(), after_update={"ruby"})
    report = install_packages([registry.get("ruby")], runner=apt)
    assert report.updated_index and report.ok
    assert report.installed == ["ruby"]
    assert len(apt.commands("update")) == 1


def test_reports_unavailable_and_failed_installs() -> None:
    registry = Registry.default()
    apt = FakeApt(installed=set(), cached={"ruby"})
    report = install_packages([registry.get("ruby"), registry.get("python")], runner=apt)
    assert not report.ok
    assert report.unavailable == ["python3"]
    assert report.installed == ["ruby"]

    failing = FakeApt(installed=set(), cached={"ruby"})
    failing.install_rc = 100
    report = install_packages([registry.get("ruby")], runner=failing)
    assert not report.ok and report.installed == []
    assert "installing" in report.output


def test_go_env_keeps_the_shipped_standard_library_current(tmp_path: Path) -> None:
    # Debian ships Go's std precompiled; settings it was not built with (GOFLAGS=-trimpath,
    # CGO_ENABLED=0) make it stale and every compile in a box rebuilds it (issue 29: 3.8 s, not 0.2 s).
    go = Registry.default().get("go")
    if shutil.which("go", path=BOX_PATH) is None:
        pytest.fail("go missing: `make toolchains` installs it")
    env = {"PATH": BOX_PATH, "HOME": str(tmp_path), **{k: v.replace("/tmp", str(tmp_path)) for k, v in go.env.items()}}
    listing = subprocess.run(
        ["go", "list", "-f", "{{if .Stale}}{{.ImportPath}}: {{.StaleReason}}{{end}}", "std"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
    )
    stale = [line for line in listing.stdout.splitlines() if line]
    assert stale == [], stale[:5]
