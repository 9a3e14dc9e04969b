"""Installing the Debian packages that provide the languages' toolchains."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from .model import Language
from .registry import Registry

Runner = Callable[..., "subprocess.CompletedProcess[str]"]

# Wait for a concurrent apt/dpkg run instead of failing on its lock.
_LOCK_WAIT = ("-o", "DPkg::Lock::Timeout=600")


@dataclass
class InstallReport:
    requested: list[str]
    already_installed: list[str] = field(default_factory=list)
    installed: list[str] = field(default_factory=list)
    unavailable: list[str] = field(default_factory=list)  # not known to apt even after an update
    updated_index: bool = False
    ok: bool = True
    output: str = ""

    @property
    def changed(self) -> bool:
        return bool(self.installed)


def packages_of(languages: Iterable[Language], *, optional: bool = False) -> list[str]:
    """Union of the languages' packages and their toolchains' (the optional ones too if `optional`)."""
    found: set[str] = set()
    for language in languages:
        found.update(language.packages)
        for toolchain in language.toolchains:
            if optional or not toolchain.optional:
                found.update(toolchain.packages)
    return sorted(found)


def all_packages(registry: Registry | Mapping[str, Language] | Iterable[Language]) -> list[str]:
    """Every package needed by a Registry (or a mapping/iterable of languages)."""
    if isinstance(registry, Registry):
        return packages_of(registry.languages)
    if isinstance(registry, Mapping):
        return packages_of(registry.values())
    return packages_of(registry)


def _env() -> dict[str, str]:
    return {**os.environ, "DEBIAN_FRONTEND": "noninteractive", "LC_ALL": "C"}


def installed_packages(packages: Sequence[str], *, runner: Runner = subprocess.run) -> set[str]:
    if not packages:
        return set()
    proc = runner(
        ["dpkg-query", "-W", "-f=${Package}\t${db:Status-Abbrev}\n", *packages],
        capture_output=True,
        text=True,
        check=False,
        env=_env(),
    )
    found: set[str] = set()
    for line in (proc.stdout or "").splitlines():
        name, _, status = line.partition("\t")
        if status.startswith("ii"):
            found.add(name.split(":", 1)[0])
    return found


def _known_to_apt(packages: Sequence[str], runner: Runner) -> set[str]:
    """Packages that apt-cache has an install candidate for."""
    known: set[str] = set()
    for pkg in packages:
        proc = runner(["apt-cache", "policy", pkg], capture_output=True, text=True, check=False, env=_env())
        for line in (proc.stdout or "").splitlines():
            key, _, value = line.strip().partition(":")
            if key == "Candidate" and value.strip() not in {"", "(none)"}:
                known.add(pkg)
    return known


def install_packages(
    languages: Iterable[Language], *, runner: Runner = subprocess.run, optional: bool = False
) -> InstallReport:
    """Idempotently apt-get install the union of the languages' packages.

    The package index is refreshed only when a missing package has no candidate,
    so a warm machine installs without touching the network.
    """
    requested = packages_of(languages, optional=optional)
    report = InstallReport(requested=requested)
    present = installed_packages(requested, runner=runner)
    report.already_installed = [p for p in requested if p in present]
    missing = [p for p in requested if p not in present]
    if not missing:
        return report

    log: list[str] = []
    known = _known_to_apt(missing, runner)
    if len(known) < len(missing):
        update = runner(["apt-get", *_LOCK_WAIT, "update"], capture_output=True, text=True, check=False, env=_env())
        report.updated_index = True
        log.append((update.stdout or "") + (update.stderr or ""))
        if update.returncode != 0:
            report.ok = False
        known = _known_to_apt(missing, runner)
    report.unavailable = [p for p in missing if p not in known]
    to_install = [p for p in missing if p in known]
    if to_install:
        proc = runner(
            ["apt-get", *_LOCK_WAIT, "install", "-y", "--no-install-recommends", *to_install],
            capture_output=True,
            text=True,
            check=False,
            env=_env(),
        )
        log.append((proc.stdout or "") + (proc.stderr or ""))
        if proc.returncode == 0:
            report.installed = to_install
        else:
            report.ok = False
    if report.unavailable:
        report.ok = False
    report.output = "\n".join(part for part in log if part)
    return report
