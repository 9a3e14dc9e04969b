"""Files out of a run box: the `collect` patterns and the caps of what a result returns, and a run box's
/box used as a workspace (its files copied in before the run, every regular file read back after it).

The sandbox reads the run box's /box after every box process is dead, without following links and
never opening a FIFO or device (sandbox/hostfs.collect_outputs); what it could not read as a regular
file it lists as skipped. Here that read-out is cut down to what a caller asked for:

- `collect`: the files whose path matches one of the patterns, at most COLLECT_MAX_FILES of them and
  COLLECT_MAX_BYTES together (the rest are listed as skipped, with why);
- a workspace: every file the run left there, the program's own files excepted (its sources or the
  compiler's artifact, as the engine put them there: one the program changed is the program's output).

The program's own files win over a workspace's at the same path (or where one would be the directory
of the other): such workspace files are not copied in, and are kept as they were unless the run left a
file in their place.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from typing import Literal

from stockade.sandbox.spec import InputFile, OutputFile

MAX_PATTERNS = 32
MAX_PATTERN_CHARS = 256
COLLECT_MAX_FILES = 64  # files a result returns...
COLLECT_MAX_BYTES = 8 * 1024 * 1024  # ...and their bytes together (before base64)

SkipReason = Literal["not_regular", "count_cap", "size_cap"]


@dataclass(frozen=True)
class Skipped:
    """A path left out of a result: `not_regular` (a symlink, FIFO, device, socket or an unreadable
    directory: never followed nor opened), or over the result's file count or byte cap."""

    path: str
    reason: SkipReason


@dataclass
class Outputs:
    """What a run box left: the collected files (sorted by path), and its whole /box when it was a
    workspace (`box` is None otherwise)."""

    files: list[OutputFile] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    box: list[OutputFile] | None = None
    box_skipped: list[Skipped] = field(default_factory=list)


class BadPattern(ValueError):
    """A collect pattern that is not a relative glob."""


def check_patterns(patterns: Sequence[str]) -> None:
    """At most MAX_PATTERNS relative globs (`*`, `?`, `[...]` within a part, `**` for any parts)."""
    if len(patterns) > MAX_PATTERNS:
        raise BadPattern(f"at most {MAX_PATTERNS} collect patterns")
    for p in patterns:
        parts = p.split("/")
        if not p or len(p) > MAX_PATTERN_CHARS or p.startswith("/"):
            raise BadPattern(f"a collect pattern is a relative path of 1..{MAX_PATTERN_CHARS} chars: {p[:64]!r}")
        if any(part in ("", ".", "..") for part in parts) or re.search(r"[\x00-\x1f\\]", p):
            raise BadPattern(f"a collect pattern has an empty, '.' or '..' part, or a control char: {p[:64]!r}")


def matches(pattern: str, path: str) -> bool:
    """Whether `path` matches `pattern` part by part: `*` never crosses a `/`, `**` is any parts."""
    return _match(pattern.split("/"), path.split("/"))


def _match(pat: list[str], parts: list[str]) -> bool:
    if not pat:
        return not parts
    if pat[0] == "**":
        return any(_match(pat[1:], parts[i:]) for i in range(len(parts) + 1))
    return bool(parts) and fnmatchcase(parts[0], pat[0]) and _match(pat[1:], parts[1:])


def _conflicts(path: str, own: set[str]) -> bool:
    """`path` is one of `own`, or the directory of one, or inside one."""
    if path in own:
        return True
    parts = path.split("/")
    if any("/".join(parts[:i]) in own for i in range(1, len(parts))):
        return True
    prefix = path + "/"
    return any(o.startswith(prefix) for o in own)


def seed(workspace: Iterable[InputFile], own: Iterable[str]) -> tuple[list[InputFile], list[InputFile]]:
    """(the workspace files copied into the run box, those the program's own files shadow)."""
    names = set(own)
    copied: list[InputFile] = []
    shadowed: list[InputFile] = []
    for f in workspace:
        (shadowed if _conflicts(f.path, names) else copied).append(f)
    return copied, shadowed


def left_by_run(box: Iterable[OutputFile], own: Mapping[str, bytes]) -> list[OutputFile]:
    """The regular files of a run box that are not the program's own files as they were put there."""
    return [f for f in box if own.get(f.path) != f.content]


def collect(
    left: Sequence[OutputFile],
    not_regular: Iterable[str],
    patterns: Sequence[str],
    *,
    max_files: int = COLLECT_MAX_FILES,
    max_bytes: int = COLLECT_MAX_BYTES,
) -> tuple[list[OutputFile], list[Skipped]]:
    """The files of `left` matching a pattern, within the caps; the matching paths left out, with why."""
    files: list[OutputFile] = []
    skipped = [Skipped(p.rstrip("/"), "not_regular") for p in not_regular if _any(patterns, p.rstrip("/"))]
    total = 0
    for f in sorted(left, key=lambda f: f.path):
        if not _any(patterns, f.path):
            continue
        if len(files) >= max_files:
            skipped.append(Skipped(f.path, "count_cap"))
        elif total + len(f.content) > max_bytes:
            skipped.append(Skipped(f.path, "size_cap"))
        else:
            files.append(f)
            total += len(f.content)
    return files, sorted(skipped, key=lambda s: s.path)


def _any(patterns: Sequence[str], path: str) -> bool:
    return any(matches(p, path) for p in patterns)


def workspace_after(left: Sequence[OutputFile], shadowed: Sequence[InputFile]) -> list[OutputFile]:
    """A workspace after its run: what the run left, and the shadowed files no longer in its way."""
    names = {f.path for f in left}
    kept = [OutputFile(f.path, f.content, f.executable) for f in shadowed if not _conflicts(f.path, names)]
    return sorted([*left, *kept], key=lambda f: f.path)


def after_run(
    box: Sequence[OutputFile],
    not_regular: Sequence[str],
    own: Sequence[InputFile],
    patterns: Sequence[str],
    shadowed: Sequence[InputFile] | None,
) -> Outputs:
    """The Outputs of a run box read back (`box`, `not_regular`: the sandbox's read-out), given the
    program's own files put there and, for a workspace, the files they shadowed."""
    left = left_by_run(box, {f.path: f.content for f in own})
    files, skipped = collect(left, not_regular, patterns) if patterns else ([], [])
    out = Outputs(files=files, skipped=skipped)
    if shadowed is not None:
        out.box = workspace_after(left, shadowed)
        out.box_skipped = [Skipped(p.rstrip("/"), "not_regular") for p in not_regular]
    return out
