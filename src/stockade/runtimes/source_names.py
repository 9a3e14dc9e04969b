"""Source files whose name the language ties to a declaration: placed under the name it requires.

A language names its rule in TOML (`[compile] source_name = "java-public-class"`); the engine calls
`renames` before the compile box is built and says in the compile output what it moved.

Checked per language (issue 22): only Java refuses a file named unlike what it declares (a `public`
top-level class, interface, enum or record must be in `Name.java`). Erlang's escript runs a file whatever
its `-module(...)`; GNAT builds `procedure Hello` from main.adb with a warning; Kotlin, Scala, Groovy,
C#, D, Pascal and COBOL tie nothing to the file name. Haskell needs its entry to be module Main (not a
file name: `module Hello where` does not build an executable; not handled).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from pathlib import PurePosixPath

from .model import Language

MAX_SCAN_BYTES = 256 * 1024  # a declaration is near the top; never scan more of a file than this
# Comments, then string and char literals, blanked before looking for a declaration.
_JAVA_NOISE = re.compile(r'//[^\n]*|/\*.*?\*/|"""(?:.|\n)*?"""|"(?:\\.|[^"\\\n])*"|\'(?:\\.|[^\'\\\n])*\'', re.S)
_JAVA_PUBLIC = re.compile(
    r"(?:^|[;}\s])public\s+(?:(?:abstract|final|static|sealed|non-sealed|strictfp)\s+)*"
    r"(?:class|interface|enum|record|@interface)\s+([A-Za-z_$][A-Za-z0-9_$]*)"
)


def java_public_class(text: str) -> str | None:
    """The name of the file's top-level public type, or None. Nested types are skipped by depth."""
    clean = _JAVA_NOISE.sub(lambda m: " " * len(m.group()), text)
    for match in _JAVA_PUBLIC.finditer(clean):
        if clean.count("{", 0, match.start()) == clean.count("}", 0, match.start()):
            return match.group(1)
    return None


_RULES: dict[str, tuple[str, Callable[[str], str | None]]] = {"java-public-class": (".java", java_public_class)}


def renames(language: Language, files: Iterable[tuple[str, bytes]]) -> tuple[dict[str, str], list[str]]:
    """({old name: new name}, one note per move) for the files whose declaration wants another name.

    A file stays where it is when the name it needs is taken (by another file, or by two of them): the
    compiler's own error then says what is wrong."""
    rule = language.compile.source_name if language.compile is not None else None
    if rule is None:
        return {}, []
    suffix, find = _RULES[rule]
    files = list(files)
    taken = {name for name, _ in files}
    wanted: dict[str, str] = {}
    for name, content in files:
        if not name.endswith(suffix):
            continue
        declared = find(content[:MAX_SCAN_BYTES].decode("utf-8", "replace"))
        path = PurePosixPath(name)
        if declared is not None and declared != path.stem:
            wanted[name] = str(path.with_name(declared + suffix))
    targets = list(wanted.values())
    moves = {old: new for old, new in wanted.items() if new not in taken and targets.count(new) == 1}
    notes = [
        f"stockade: {old} declares public {PurePosixPath(new).stem}: compiled as {new}" for old, new in moves.items()
    ]
    return moves, notes
