"""Finding a language's toolchains on the host: what its `[[toolchains]]` name or glob, and what each answers.

Nothing is assumed: a toolchain is available only if its version command, run on the host with the box's
PATH, exits 0 and prints a version. A language lists its toolchains newest first (`order`); the first
available one is its default.
"""

from __future__ import annotations

import asyncio
import contextlib
import glob
import os
import re
import secrets
import shutil
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace

from . import versions
from .model import PREFIX, Language, Toolchain, ToolchainDef, VersionProbe

# The PATH the box sees; detection uses the same so the host never finds a tool the box lacks.
BOX_PATH = "/usr/local/bin:/usr/bin:/bin"
DETECT_TIMEOUT_S = 10.0
# Where `stockade toolchains install` puts toolchains that are no Debian package (a wheel's binary, a
# pyenv build linked out of /root, which the box cannot see): under /usr, which every box binds.
TOOLCHAINS_DIR = "/usr/local/lib/stockade/toolchains"
MAX_GLOB_MATCHES = 32
_DETAIL_MAX = 300
# Makes the dir "$0", runs a version command ("$@") in it, then removes it; exits with the command's status.
# The shell makes it, so no kill of the detector can come between its making and its removal's owner.
_IN_OWN_HOME = 'mkdir -m 700 -- "$0" && cd -- "$0" || exit 125; "$@"; status=$?; cd / && rm -rf -- "$0"; exit $status'
_VAR_RE = re.compile(r"\{([a-z][a-z0-9_]*)\}")


@dataclass(frozen=True)
class Candidate:
    """A toolchain to probe: one `[[toolchains]]` entry, or one match of its glob."""

    name: str
    probe: VersionProbe
    vars: Mapping[str, str] = field(default_factory=dict)
    env: Mapping[str, str] = field(default_factory=dict)
    ro_paths: tuple[str, ...] = ()
    optional: bool = False
    missing: str | None = None  # set: nothing to probe (a glob that matched nothing), and why


def fill(text: str, values: Mapping[str, str]) -> str:
    """Replace `{name}` for the names in `values`; anything else in braces stays (`${Version}`)."""
    return _VAR_RE.sub(lambda m: values.get(m.group(1), m.group(0)), text)


def _prefix(pattern: str, match: str) -> str:
    parts = pattern.split("/")
    first = next(i for i, part in enumerate(parts) if set("*?[") & set(part))
    return "/".join(match.split("/")[: first + 1])


def _glob_prefixes(pattern: str) -> list[str]:
    """Each toolchain a glob finds: its prefix, once per real directory (JDK links such as default-java
    name the same one), the real name preferred, at most MAX_GLOB_MATCHES."""
    by_real: dict[str, str] = {}
    for match in sorted(glob.glob(pattern))[: MAX_GLOB_MATCHES * 4]:
        prefix = _prefix(pattern, match)
        real = os.path.realpath(prefix)
        if real not in by_real or os.path.islink(by_real[real]):
            by_real[real] = prefix
    return sorted(by_real.values())[:MAX_GLOB_MATCHES]


def _candidate(language: Language, entry: ToolchainDef, prefix: str | None) -> Candidate:
    base = {PREFIX: prefix} if prefix is not None else {}
    values = {**language.vars, **{k: fill(v, base) for k, v in entry.vars.items()}}
    everything = {**values, **base}
    probe = entry.version or language.version
    probe = VersionProbe(command=[fill(a, everything) for a in probe.command], pattern=probe.pattern)
    # The name: given, else the glob's match, the toolchain's first var ("gcc-11"), its or the language's
    # first Debian package.
    packages = [*entry.packages, *language.packages]
    default = next(iter(entry.vars.values()), packages[0] if packages else probe.command[0])
    name = entry.name or (prefix if prefix is not None else default)
    return Candidate(
        name=fill(name, everything),
        probe=probe,
        vars=values,
        env={k: fill(v, everything) for k, v in entry.env.items()},
        ro_paths=tuple(fill(p, everything) for p in entry.ro_paths),
        optional=entry.optional,
    )


def candidates(language: Language) -> list[Candidate]:
    """Every toolchain the language declares, globs expanded on this host, in declaration order."""
    entries = language.toolchains or [ToolchainDef()]
    out: list[Candidate] = []
    for entry in entries:
        if entry.glob is None:
            out.append(_candidate(language, entry, None))
            continue
        prefixes = _glob_prefixes(entry.glob)
        out.extend(_candidate(language, entry, prefix) for prefix in prefixes)
        if not prefixes:
            hint = ""
            if entry.import_from:
                hint = f" (`stockade toolchains install {language.id}` links {entry.import_from})"
            missing = _candidate(language, entry, entry.glob)
            out.append(replace(missing, name=entry.name or entry.glob, missing=f"nothing matches {entry.glob}{hint}"))
    return out


def order(found: Iterable[Toolchain]) -> tuple[Toolchain, ...]:
    """Available toolchains newest first (one per version: the first declared), then the missing ones."""
    available: dict[str | None, Toolchain] = {}
    missing: list[Toolchain] = []
    for toolchain in found:
        if toolchain.available:
            available.setdefault(toolchain.version, toolchain)
        else:
            missing.append(toolchain)
    newest = sorted(available.values(), key=lambda t: versions.key(t.version), reverse=True)
    return (*newest, *missing)


async def probe_candidate(language: Language, candidate: Candidate, *, timeout: float = DETECT_TIMEOUT_S) -> Toolchain:
    """Run the candidate's version command on the host and parse its version."""
    if candidate.missing is not None:
        available, version, detail = False, None, candidate.missing
    else:
        available, version, detail = await _run_probe(language, candidate, timeout)
    if not available and candidate.optional:
        detail = f"optional, `stockade toolchains install {language.id} --optional`: {detail}"
    return Toolchain(
        available,
        version,
        detail,
        name=candidate.name,
        vars=dict(candidate.vars),
        env=dict(candidate.env),
        ro_paths=candidate.ro_paths,
        optional=candidate.optional,
    )


async def probe_toolchain(language: Language, *, timeout: float = DETECT_TIMEOUT_S) -> Toolchain:
    """The language's first declared toolchain, probed."""
    return await probe_candidate(language, candidates(language)[0], timeout=timeout)


async def _run_probe(language: Language, candidate: Candidate, timeout: float) -> tuple[bool, str | None, str]:
    argv = list(candidate.probe.command)
    program = shutil.which(argv[0], path=BOX_PATH)
    if program is None:
        return False, None, f"{argv[0]} not found on {BOX_PATH}"
    argv[0] = program
    # The pid names the creator; the shell removes the dir once the command ends, even if this process was
    # killed meanwhile (the command then dies of SIGPIPE at its next write, or ends on its own). The name's
    # random part is unguessable, and mkdir refuses one that exists (a planted link).
    home = os.path.join(tempfile.gettempdir(), f"stockade-detect-{os.getpid()}-{secrets.token_hex(8)}")
    try:
        env = {"PATH": BOX_PATH, "LANG": "C.UTF-8", "TZ": "UTC", "HOME": home, **language.env, **candidate.env}
        try:
            proc = await asyncio.create_subprocess_exec(
                *("/bin/sh", "-c", _IN_OWN_HOME, home, *argv),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT,
                env=env,
                start_new_session=True,  # lets a timeout kill the whole process group
            )
        except OSError as exc:
            return False, None, f"{argv[0]}: cannot execute: {exc}"
        try:
            output, _ = await asyncio.wait_for(proc.communicate(), timeout)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, 9)
            await proc.wait()
            return False, None, f"version command timed out after {timeout:g} s"
        except asyncio.CancelledError:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, 9)
            await asyncio.shield(proc.wait())
            raise
    finally:
        shutil.rmtree(home, ignore_errors=True)
    text = output.decode("utf-8", "replace")
    if proc.returncode != 0:
        return False, None, f"version command exited with {proc.returncode}: {_excerpt(text)}".rstrip(": ")
    match = re.search(candidate.probe.pattern, text)
    # The first group that matched: a pattern may offer alternatives, best first.
    version = next((g for g in match.groups() if g), None) if match is not None else None
    if version is None:
        return False, None, f"version pattern did not match output: {_excerpt(text)!r}"
    return True, version, f"{program} {version}"


def _excerpt(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= _DETAIL_MAX else text[: _DETAIL_MAX - 1] + "…"
