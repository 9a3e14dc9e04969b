"""Sources placed under the file name their declaration requires (runtimes.source_names)."""

from __future__ import annotations

import pytest

from stockade.runtimes import Registry
from stockade.runtimes.source_names import java_public_class, renames

REGISTRY = Registry.default()


@pytest.mark.parametrize(
    ("text", "name"),
    [
        ("public class HelloWorld { public static void main(String[] a) {} }", "HelloWorld"),
        ("package app;\nimport java.util.*;\npublic final class Solution {}", "Solution"),
        ("public abstract class Shape {}", "Shape"),
        ("public interface Greeter {}", "Greeter"),
        ("public enum Colour { RED }", "Colour"),
        ("public record Point(int x, int y) {}", "Point"),
        ("class Helper {}\npublic class Main { public static class Inner {} }", "Main"),
        ("// public class Commented {}\n/* public class Block {} */\nclass Main {}", None),
        ('class Main { String s = "public class Quoted {"; }', None),
        ("class Main { public static class Inner {} }", None),  # nested: no file name rule
        ("class Main {}", None),
    ],
)
def test_java_public_class(text: str, name: str | None) -> None:
    assert java_public_class(text) == name


def test_java_file_moves_to_its_public_class_with_a_note() -> None:
    java = REGISTRY.get("java")
    files = [("src/program.java", b"public class HelloWorld {}"), ("Util.java", b"public class Util {}")]
    moves, notes = renames(java, files)
    assert moves == {"src/program.java": "src/HelloWorld.java"}
    assert notes == ["stockade: src/program.java declares public HelloWorld: compiled as src/HelloWorld.java"]


def test_no_move_onto_a_taken_name_or_for_two_files_wanting_one() -> None:
    java = REGISTRY.get("java")
    taken = [("a.java", b"public class B {}"), ("B.java", b"class Other {}")]
    assert renames(java, taken) == ({}, [])
    twice = [("a.java", b"public class C {}"), ("b.java", b"public class C {}")]
    assert renames(java, twice) == ({}, [])


def test_languages_without_the_rule_keep_their_names() -> None:
    for lang_id in ("kotlin", "scala", "groovy", "erlang", "python", "c"):
        assert renames(REGISTRY.get(lang_id), [("main.x", b"public class HelloWorld {}")]) == ({}, [])
    assert [lang.id for lang in REGISTRY.languages if lang.compile and lang.compile.source_name] == ["java"]
