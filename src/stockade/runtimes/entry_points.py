"""Finding a program's entry point among its compiled files: the run stage's `{main}`.

A language names its rule in TOML (`[run] main = "jvm-class"`); the engine calls `find_main` after
the compile box returns its files. The files come out of a box, so they are untrusted input: parsing
is bounded, malformed files are ignored, and a name is returned only if it is a plain binary class
name (it lands in argv: never an option or an `@argfile`).
"""

from __future__ import annotations

import re
import struct
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import PurePosixPath

from .model import Language

# What the rules read at most. Real class files are a few KiB (a big string table a few 100 KiB);
# a crafted one costs up to ~1.3 us of the service's CPU per 8 bytes (one method entry), so the
# caller runs the rule off its event loop, and this bounds the time to ~0.15 s.
MAX_CLASS_BYTES = 512 * 1024
MAX_SCAN_BYTES = 1024 * 1024

_MAGIC = b"\xca\xfe\xba\xbe"
_ACC_PUBLIC, _ACC_STATIC = 0x0001, 0x0008
_MAIN_NAME, _MAIN_DESCRIPTOR = b"main", b"([Ljava/lang/String;)V"
# Constant pool entry sizes after the tag byte, except Utf8 (1, sized by its own length field).
_CP_SIZES = {3: 4, 4: 4, 5: 8, 6: 8, 7: 2, 8: 2, 9: 4, 10: 4, 11: 4, 12: 4, 15: 3, 16: 2, 17: 4, 18: 4, 19: 2, 20: 2}
_CLASS_TAG, _UTF8_TAG, _WIDE_TAGS = 7, 1, (5, 6)  # Long and Double take two pool slots
_U4 = struct.Struct(">I")
_MEMBER = struct.Struct(">HHH")  # access flags, name, descriptor
_IDENTIFIER = r"(?:[^\W\d]|\$)[\w$]*"
_BINARY_NAME = re.compile(rf"{_IDENTIFIER}(?:\.{_IDENTIFIER})*")


class _Malformed(Exception):
    pass


@dataclass(frozen=True)
class ClassInfo:
    name: str  # binary name, dotted: "app.Main", "Outer$Inner"
    source: str | None  # the SourceFile attribute: the file the class was compiled from
    has_main: bool  # public static void main(String[])


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data, self.pos = data, 0

    def u1(self) -> int:
        if self.pos >= len(self.data):
            raise _Malformed
        self.pos += 1
        return self.data[self.pos - 1]

    def u2(self) -> int:
        return self._unpack(">H", 2)

    def u4(self) -> int:
        return self._unpack(">I", 4)

    def _unpack(self, fmt: str, size: int) -> int:
        try:
            (value,) = struct.unpack_from(fmt, self.data, self.pos)
        except struct.error:
            raise _Malformed from None
        self.pos += size
        return int(value)

    def skip(self, n: int) -> None:
        self.pos += n
        if self.pos > len(self.data):
            raise _Malformed

    def take(self, n: int) -> bytes:
        start = self.pos
        self.skip(n)
        return self.data[start : self.pos]


def _constant_pool(r: _Reader) -> tuple[dict[int, bytes], dict[int, int]]:
    utf8: dict[int, bytes] = {}
    classes: dict[int, int] = {}
    count, index = r.u2(), 1
    while index < count:
        tag = r.u1()
        if tag == _UTF8_TAG:
            utf8[index] = r.take(r.u2())
        elif tag == _CLASS_TAG:
            classes[index] = r.u2()
        elif tag in _CP_SIZES:
            r.skip(_CP_SIZES[tag])
        else:
            raise _Malformed
        index += 2 if tag in _WIDE_TAGS else 1
    return utf8, classes


def _skip_attributes(r: _Reader) -> None:
    count, data = r.u2(), r.data
    pos = r.pos
    try:
        for _ in range(count):  # name index (u2), length (u4), body
            pos += 6 + _U4.unpack_from(data, pos + 2)[0]
    except struct.error:
        raise _Malformed from None
    if pos > len(data):
        raise _Malformed
    r.pos = pos


def _has_main(r: _Reader, utf8: dict[int, bytes]) -> bool:
    found = False
    for _ in range(r.u2()):
        try:
            flags, name, descriptor = _MEMBER.unpack_from(r.data, r.pos)
        except struct.error:
            raise _Malformed from None
        if utf8.get(name) == _MAIN_NAME and utf8.get(descriptor) == _MAIN_DESCRIPTOR:
            found = found or (flags & _ACC_PUBLIC and flags & _ACC_STATIC) != 0
        r.pos += 6
        _skip_attributes(r)
    return found


def _source_file(r: _Reader, utf8: dict[int, bytes]) -> bytes | None:
    source = None
    for _ in range(r.u2()):
        name, length = r.u2(), r.u4()
        if utf8.get(name) == b"SourceFile" and length == 2:
            source = utf8.get(r.u2())
        else:
            r.skip(length)
    return source


def read_class(data: bytes) -> ClassInfo | None:
    """The class's name, source file and whether it has main; None if `data` is no valid class file."""
    if not data.startswith(_MAGIC):
        return None
    r = _Reader(data)
    try:
        r.skip(8)  # magic, minor and major version
        utf8, classes = _constant_pool(r)
        r.skip(2)  # access flags
        this_class = utf8[classes[r.u2()]]
        r.skip(2)  # super class
        r.skip(2 * r.u2())  # interfaces
        for _ in range(r.u2()):  # fields
            r.skip(6)
            _skip_attributes(r)
        has_main = _has_main(r, utf8)
        source = _source_file(r, utf8)
        # Modified UTF-8 (NUL as C0 80, surrogate pairs) fails to decode: never a name we would run.
        name = this_class.decode("utf-8").replace("/", ".")
        return ClassInfo(name, source.decode("utf-8") if source is not None else None, has_main)
    except (_Malformed, KeyError, UnicodeDecodeError):
        return None


def jvm_main_class(files: Iterable[tuple[str, bytes]], entry: str) -> str | None:
    """The class with `public static void main(String[])`, preferring one compiled from the entry
    file, then one named like it, then a top-level class; None when no class file has main."""
    entry_path = PurePosixPath(entry)
    candidates = sorted(
        ((path, data) for path, data in files if path.endswith(".class") and len(data) <= MAX_CLASS_BYTES),
        key=lambda item: ("$" in item[0], len(item[1]), item[0]),  # top-level, then small ones first
    )
    found: list[ClassInfo] = []
    budget = MAX_SCAN_BYTES
    for _, data in candidates:
        budget -= len(data)
        if budget < 0:
            break
        info = read_class(data)
        if info is not None and info.has_main and _BINARY_NAME.fullmatch(info.name):
            found.append(info)
    if not found:
        return None
    best = min(
        found,
        key=lambda c: (
            c.source != entry_path.name,
            c.name.rsplit(".", 1)[-1] != entry_path.stem,
            "$" in c.name,
            c.name,
        ),
    )
    return best.name


_FINDERS: dict[str, Callable[[Iterable[tuple[str, bytes]], str], str | None]] = {"jvm-class": jvm_main_class}


def find_main(language: Language, files: Iterable[tuple[str, bytes]], entry: str) -> str | None:
    """`{main}` for the run command: what the language's rule finds among `files` (path, content),
    or None (the language has no rule, or it found nothing: `{main}` then falls back to `{stem}`)."""
    if language.run.main is None:
        return None
    return _FINDERS[language.run.main](files, entry)
