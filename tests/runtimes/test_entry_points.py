"""Finding `{main}` among compiled files: class files built here byte by byte, then the JDK's own."""

from __future__ import annotations

import shutil
import struct
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from stockade.runtimes import Registry, expand_command
from stockade.runtimes.entry_points import MAX_CLASS_BYTES, find_main, jvm_main_class, read_class

MAIN_DESCRIPTOR = "([Ljava/lang/String;)V"
PUBLIC_STATIC = 0x0009


@dataclass
class ClassFile:
    """A minimal, valid class file: the parts the rule reads, plus noise it must skip."""

    name: str
    methods: list[tuple[int, str, str]] = field(default_factory=list)  # flags, name, descriptor
    source: str | None = None
    pool: list[bytes] = field(default_factory=list)
    count: int = 1

    def utf8(self, text: str) -> int:
        raw = text.encode()
        return self._add(b"\x01" + struct.pack(">H", len(raw)) + raw)

    def _add(self, entry: bytes, slots: int = 1) -> int:
        self.pool.append(entry)
        index, self.count = self.count, self.count + slots
        return index

    def build(self) -> bytes:
        self._add(b"\x05" + struct.pack(">q", 2**40), slots=2)  # a Long takes two slots
        self._add(b"\x0c" + struct.pack(">HH", 1, 1))  # NameAndType, skipped
        this = self._add(b"\x07" + struct.pack(">H", self.utf8(self.name)))
        code = self.utf8("Code")
        methods = b"".join(
            struct.pack(">HHHH", flags, self.utf8(n), self.utf8(d), 1) + struct.pack(">HI", code, 3) + b"\xb1\x00\x00"
            for flags, n, d in self.methods
        )
        attributes = b""
        if self.source is not None:
            attributes = struct.pack(">HIH", self.utf8("SourceFile"), 2, self.utf8(self.source))
        field_entry = struct.pack(">HHHH", 0x2, self.utf8("x"), self.utf8("I"), 1) + struct.pack(">HI", code, 2) + b"ab"
        return (
            b"\xca\xfe\xba\xbe"
            + struct.pack(">HHH", 0, 61, self.count)
            + b"".join(self.pool)
            + struct.pack(">HHHH", 0x21, this, 0, 0)  # flags, this, super, no interfaces
            + struct.pack(">H", 1)
            + field_entry
            + struct.pack(">H", len(self.methods))
            + methods
            + struct.pack(">H", 1 if self.source is not None else 0)
            + attributes
        )


def klass(name: str, *, main: bool = True, source: str | None = None, flags: int = PUBLIC_STATIC) -> bytes:
    methods = [(0x1, "<init>", "()V"), (0x9, "helper", MAIN_DESCRIPTOR)]
    if main:
        methods.append((flags, "main", MAIN_DESCRIPTOR))
    return ClassFile(name, methods, source).build()


def test_reads_name_source_and_main() -> None:
    info = read_class(klass("app/Main", source="sum.java"))
    assert info is not None
    assert (info.name, info.source, info.has_main) == ("app.Main", "sum.java", True)


@pytest.mark.parametrize(
    "methods",
    [
        [(0x1, "main", MAIN_DESCRIPTOR)],  # not static
        [(0x8, "main", MAIN_DESCRIPTOR)],  # not public
        [(0x9, "main", "([Ljava/lang/String;)I")],  # returns int
        [(0x9, "main", "()V")],  # no arguments
        [(0x9, "mainly", MAIN_DESCRIPTOR)],
    ],
)
def test_only_public_static_void_main_of_strings_counts(methods: list[tuple[int, str, str]]) -> None:
    info = read_class(ClassFile("Main", methods).build())
    assert info is not None and not info.has_main


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"PK\x03\x04 not a class",
        klass("Main")[:-3],  # truncated in the methods
        klass("Main")[:40],  # truncated in the constant pool
        klass("Main").replace(b"\x0c\x00\x01", b"\x63\x00\x01", 1),  # unknown pool tag
    ],
)
def test_malformed_class_files_are_ignored(data: bytes) -> None:
    assert read_class(data) is None
    assert jvm_main_class([("Main.class", data)], "Main.java") is None


def test_a_class_compiled_from_the_entry_wins() -> None:
    files = [
        ("Helper.class", klass("Helper", source="helper.java")),
        ("Main.class", klass("Main", source="sum.java")),
        ("Other.class", klass("Other", main=False, source="sum.java")),
    ]
    assert jvm_main_class(files, "sum.java") == "Main"
    assert jvm_main_class(files, "helper.java") == "Helper"


def test_then_the_class_named_like_the_file_then_a_top_level_one() -> None:
    named = [("A.class", klass("A", source="Prog.java")), ("Prog.class", klass("Prog", source="Prog.java"))]
    assert jvm_main_class(named, "Prog.java") == "Prog"
    # Scala's object: the top-level class holds the static forwarder, not Main$.
    nested = [("Main$.class", klass("Main$", source="m.scala")), ("Main.class", klass("Main", source="m.scala"))]
    assert jvm_main_class(nested, "m.scala") == "Main"
    assert jvm_main_class([("Only.class", klass("Only"))], "x/y/z.java") == "Only"


def test_nothing_with_main_gives_none_and_the_stem_is_run() -> None:
    java = Registry.default().get("java")
    files = [("Main.class", klass("Main", main=False)), ("sum.java", b"class Main {}")]
    main = find_main(java, files, "sum.java")
    assert main is None
    assert expand_command(java.run.command, "sum.java", [p for p, _ in files], java.extensions, main=main)[-1] == "sum"
    # A language without a rule never looks.
    assert find_main(Registry.default().get("c"), [("Main.class", klass("Main"))], "main.c") is None


@pytest.mark.parametrize("name", ["-XX:+Foo", "@args", "a..b", "1abc", "a b", "x/../y"])
def test_names_that_are_not_plain_class_names_are_never_returned(name: str) -> None:
    # Class files come out of the box: a crafted name must not become a java option or @argfile.
    assert jvm_main_class([("X.class", klass(name))], "X.java") is None


def test_oversized_class_files_are_not_parsed() -> None:
    big = ClassFile("Big", [(PUBLIC_STATIC, "main", MAIN_DESCRIPTOR)], "Big.java")
    big.utf8("x" * 65000)
    data = big.build()
    padded = data + b"\x00" * (MAX_CLASS_BYTES + 1 - len(data))
    assert read_class(padded) is not None  # trailing bytes are tolerated by the parser itself
    assert jvm_main_class([("Big.class", padded)], "Big.java") is None
    assert jvm_main_class([("Big.class", data)], "Big.java") == "Big"


def test_real_javac_output(tmp_path: Path) -> None:
    if shutil.which("javac", path="/usr/bin:/bin") is None:
        pytest.fail("javac missing: `make toolchains` installs it")
    (tmp_path / "sum.java").write_text(
        "package app;\nclass Helper { }\nclass Main { public static void main(String[] a) { } }\n"
    )
    subprocess.run(["javac", "-d", str(tmp_path), str(tmp_path / "sum.java")], check=True, capture_output=True)
    files = [(str(p.relative_to(tmp_path)), p.read_bytes()) for p in tmp_path.rglob("*.class")]
    assert sorted(path for path, _ in files) == ["app/Helper.class", "app/Main.class"]
    assert jvm_main_class(files, "sum.java") == "app.Main"
