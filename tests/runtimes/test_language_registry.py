"""Loader, validation, lookup and placeholder expansion of language definitions."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from stockade.runtimes import (
    Language,
    LanguageDefinitionError,
    Registry,
    UnknownLanguage,
    expand_command,
    load_languages,
    load_missing,
    packaged_languages_dir,
)
from stockade.runtimes.detection import TOOLCHAINS_DIR, fill

PROGRAMS = Path(__file__).resolve().parents[1] / "conformance" / "programs"
FIXTURES = ("echo", "sum", "exit3", "syntax_error", "loop")

MINIMAL = """
id = "{id}"
name = "Toy"
extensions = ["toy"]
source_file = "main.toy"
packages = ["toy"]
hello = 'print "Hello, World!"'

[version]
command = ["toy", "--version"]
pattern = 'toy ([0-9.]+)'

[run]
command = ["toy", "{{entry}}"]
"""


def write(directory: Path, stem: str, text: str) -> Path:
    path = directory / f"{stem}.toml"
    path.write_text(text, encoding="utf-8")
    return path


def minimal(lang_id: str = "toy", extra: str = "", replace: tuple[str, str] | None = None) -> str:
    text = MINIMAL.format(id=lang_id)
    if replace is not None:
        assert replace[0] in text
        text = text.replace(*replace)
    # Top-level keys must precede the first table.
    return text.replace("\n[version]", extra + "\n[version]", 1) if extra else text


# --- packaged definitions -------------------------------------------------------------------


@pytest.fixture(scope="module")
def registry() -> Registry:
    return Registry.default()


def test_every_packaged_definition_loads(registry: Registry) -> None:
    stems = sorted(p.stem for p in packaged_languages_dir().glob("*.toml"))
    assert sorted(lang.id for lang in registry.languages) == stems
    assert len(stems) >= 45


def test_packaged_definitions_are_ordered_by_id(registry: Registry) -> None:
    ids = [lang.id for lang in registry.languages]
    assert ids == sorted(ids)


def test_packaged_names_are_unique(registry: Registry) -> None:
    names = [name for lang in registry.languages for name in lang.names]
    assert len(names) == len(set(names))


@pytest.mark.parametrize("lang_id", sorted(p.stem for p in packaged_languages_dir().glob("*.toml")))
def test_packaged_definition_is_sane(registry: Registry, lang_id: str) -> None:
    lang = registry.get(lang_id)
    assert "Hello, World!" in lang.hello or lang.id == "brainfuck"
    assert any(lang.source_file.endswith("." + ext) for ext in lang.extensions)
    for command in filter(None, [lang.compile, lang.run]):
        program = fill(command.command[0], lang.vars)
        assert not program.startswith("/usr/local"), "box toolchains come from Debian (or [[toolchains]])"
    for toolchain in lang.toolchains:
        # What is no Debian package lives where `stockade toolchains install` puts it.
        if toolchain.glob is not None and toolchain.glob.startswith("/usr/local"):
            assert toolchain.glob.startswith(f"{TOOLCHAINS_DIR}/{lang.id}/")
    for path in lang.sandbox.ro_paths:
        assert path.startswith(("/etc/", "/var/lib/")), "only state outside /usr needs binding"


@pytest.mark.parametrize("lang_id", sorted(p.stem for p in packaged_languages_dir().glob("*.toml")))
def test_conformance_fixtures_exist(registry: Registry, lang_id: str) -> None:
    lang = registry.get(lang_id)
    directory = PROGRAMS / lang.id
    exceptions_file = directory / "EXCEPTIONS.toml"
    exceptions = tomllib.loads(exceptions_file.read_text()) if exceptions_file.exists() else {}
    for name, entry in exceptions.items():
        assert name in FIXTURES, f"unknown fixture {name!r} in {exceptions_file}"
        assert entry.get("reason"), f"{exceptions_file}: [{name}] needs a reason"
    for name in FIXTURES:
        found = [directory / f"{name}.{ext}" for ext in lang.extensions if (directory / f"{name}.{ext}").exists()]
        assert found, f"{lang.id}: missing fixture {name}"


def test_lookup_by_id_alias_and_case(registry: Registry) -> None:
    assert registry.get("python").id == "python"
    assert registry.get("py").id == "python"
    assert registry.get("Python3").id == "python"
    assert registry.get("c++").id == "cpp"
    assert registry.get("c#").id == "csharp"
    assert "js" in registry
    with pytest.raises(UnknownLanguage, match="nope"):
        registry.get("nope")


def test_shared_extensions_prefer_the_default(registry: Registry) -> None:
    assert registry.by_extension("c").id == "c"  # type: ignore[union-attr]
    assert registry.by_extension(".cpp").id == "cpp"  # type: ignore[union-attr]
    assert registry.by_extension("py").id == "python"  # type: ignore[union-attr]
    assert registry.by_extension("pl").id == "perl"  # type: ignore[union-attr]
    assert registry.by_extension("lua").id == "lua"  # type: ignore[union-attr]
    assert registry.by_extension("sh").id == "bash"  # type: ignore[union-attr]
    assert registry.by_extension("pro").id == "prolog"  # type: ignore[union-attr]
    assert registry.by_extension("nothing") is None


# --- validation of bad definitions ---------------------------------------------------------


def test_minimal_definition_loads(tmp_path: Path) -> None:
    write(tmp_path, "toy", minimal())
    languages = load_languages(tmp_path)
    toy = languages["toy"]
    assert isinstance(toy, Language)
    assert toy.compile is None and not toy.compiled
    assert toy.default_for_extension is True
    assert toy.limits.memory_mb is None


@pytest.mark.parametrize(
    ("text", "field"),
    [
        (minimal(replace=('name = "Toy"\n', "")), "field name"),
        (minimal(replace=('packages = ["toy"]', 'packages = "toy"')), "field packages"),
        (minimal(replace=('source_file = "main.toy"', "source_file = 3")), "field source_file"),
        (minimal(extra='\ncolour = "blue"\n'), "field colour"),
        (minimal(replace=("[run]", "[rnu]")), "field run"),
        (minimal(replace=('command = ["toy", "{entry}"]', 'command = ["toy", "{entyr}"]')), "run.command: unknown"),
        (minimal(replace=("'toy ([0-9.]+)'", "'toy [0-9.]+'")), "field version.pattern"),
        (minimal(replace=("'toy ([0-9.]+)'", "'toy ([0-9.+'")), "field version.pattern"),
        (minimal(extra='\n[limits]\nmemory_mb = "lots"\n'), "field limits.memory_mb"),
        (minimal(extra="\n[limits]\nmemroy_mb = 5\n"), "field limits.memroy_mb"),
        (minimal(extra='\n[sandbox]\nro_paths = ["etc/x"]\n'), "field sandbox.ro_paths"),
        (minimal(replace=('extensions = ["toy"]', 'extensions = [".toy"]')), "field extensions[0]"),
    ],
)
def test_bad_definition_names_file_and_field(tmp_path: Path, text: str, field: str) -> None:
    path = write(tmp_path, "toy", text)
    with pytest.raises(LanguageDefinitionError) as info:
        load_languages(tmp_path)
    message = str(info.value)
    assert str(path) in message
    assert field in message


def test_id_must_equal_stem(tmp_path: Path) -> None:
    path = write(tmp_path, "toy", minimal("other"))
    with pytest.raises(LanguageDefinitionError, match="field id") as info:
        load_languages(tmp_path)
    assert str(path) in str(info.value)


def test_invalid_id(tmp_path: Path) -> None:
    write(tmp_path, "Toy", minimal("Toy"))
    with pytest.raises(LanguageDefinitionError, match="field id"):
        load_languages(tmp_path)


def test_invalid_toml_names_file(tmp_path: Path) -> None:
    path = write(tmp_path, "toy", "id = \n")
    with pytest.raises(LanguageDefinitionError, match="invalid TOML") as info:
        load_languages(tmp_path)
    assert str(path) in str(info.value)


def test_alias_clash_fails_loudly(tmp_path: Path) -> None:
    write(tmp_path, "alpha", minimal("alpha", extra='\naliases = ["shared"]\n'))
    second = write(tmp_path, "beta", minimal("beta", extra='\naliases = ["shared"]\n'))
    with pytest.raises(LanguageDefinitionError, match="'shared' is already used by language 'alpha'") as info:
        load_languages(tmp_path)
    assert str(second) in str(info.value)
    assert "field aliases" in str(info.value)


def test_alias_may_not_shadow_another_id(tmp_path: Path) -> None:
    write(tmp_path, "alpha", minimal("alpha"))
    write(tmp_path, "beta", minimal("beta", extra='\naliases = ["alpha"]\n'))
    with pytest.raises(LanguageDefinitionError, match="already used"):
        load_languages(tmp_path)


def test_two_defaults_for_one_extension_fail(tmp_path: Path) -> None:
    write(tmp_path, "alpha", minimal("alpha"))
    write(tmp_path, "beta", minimal("beta"))
    with pytest.raises(LanguageDefinitionError, match="default_for_extension"):
        load_languages(tmp_path)


def test_shared_extension_with_one_default(tmp_path: Path) -> None:
    write(tmp_path, "alpha", minimal("alpha", extra="\ndefault_for_extension = false\n"))
    write(tmp_path, "beta", minimal("beta"))
    registry = Registry.from_directory(tmp_path)
    assert registry.by_extension("toy").id == "beta"  # type: ignore[union-attr]


def test_shared_extension_without_default_takes_first(tmp_path: Path) -> None:
    write(tmp_path, "alpha", minimal("alpha", extra="\ndefault_for_extension = false\n"))
    write(tmp_path, "beta", minimal("beta", extra="\ndefault_for_extension = false\n"))
    registry = Registry.from_directory(tmp_path)
    assert registry.by_extension("toy").id == "alpha"  # type: ignore[union-attr]


def test_default_for_some_extensions(tmp_path: Path) -> None:
    write(tmp_path, "alpha", minimal("alpha"))
    text = minimal("beta", extra='\ndefault_for_extension = ["ty"]\n')
    write(tmp_path, "beta", text.replace('extensions = ["toy"]', 'extensions = ["toy", "ty"]'))
    registry = Registry.from_directory(tmp_path)
    assert registry.by_extension("toy").id == "alpha"  # type: ignore[union-attr]
    assert registry.by_extension("ty").id == "beta"  # type: ignore[union-attr]


def test_default_for_unlisted_extension_fails(tmp_path: Path) -> None:
    write(tmp_path, "toy", minimal(extra='\ndefault_for_extension = ["zz"]\n'))
    with pytest.raises(LanguageDefinitionError, match="field default_for_extension"):
        load_languages(tmp_path)


def test_full_schema_round_trip(tmp_path: Path) -> None:
    top = """
aliases = ["t", "toy1.0", "t#"]
default_for_extension = true
"""
    extra = """
[compile]
command = ["toyc", "-o", "main", "{sources}"]

[limits]
memory_mb = 512
processes = 64
open_files = 512
stack_mb = 64
cpu_ms_extra = 100

[compile_limits]
memory_mb = 1024

[env]
TOY_CACHE = "/tmp/toy"

[sandbox]
ro_paths = ["/etc/toy"]
"""
    text = minimal(extra=top).replace("[run]", extra + "\n[run]")
    write(tmp_path, "toy", text)
    toy = load_languages(tmp_path)["toy"]
    assert toy.compiled
    assert toy.limits.cpu_ms_extra == 100
    assert toy.compile_limits.memory_mb == 1024 and toy.compile_limits.processes is None
    assert toy.env == {"TOY_CACHE": "/tmp/toy"}
    assert toy.sandbox.ro_paths == ["/etc/toy"]
    assert toy.names == ("toy", "t", "toy1.0", "t#")


def test_sources_must_be_a_whole_element(tmp_path: Path) -> None:
    text = minimal(replace=("[run]", '[compile]\ncommand = ["toyc", "--in={sources}"]\n\n[run]'))
    write(tmp_path, "toy", text)
    with pytest.raises(LanguageDefinitionError, match=r"field compile\.command"):
        load_languages(tmp_path)


# --- placeholders ---------------------------------------------------------------------------


def test_expand_entry_and_stem() -> None:
    argv = ["java", "-cp", ".", "{stem}", "--file={entry}"]
    assert expand_command(argv, "Main.java", ["Main.java"], ["java"]) == [
        "java",
        "-cp",
        ".",
        "Main",
        "--file=Main.java",
    ]


def test_expand_sources_entry_first_then_sorted() -> None:
    files = ["util.c", "main.c", "a.h", "notes.txt", "b.c", "sub/z.c"]
    argv = ["gcc", "-o", "main", "{sources}", "-lm"]
    assert expand_command(argv, "main.c", files, ["c"]) == [
        "gcc",
        "-o",
        "main",
        "main.c",
        "b.c",
        "sub/z.c",
        "util.c",
        "-lm",
    ]


def test_expand_sources_several_extensions_and_dotted_entry() -> None:
    files = ["x.hpp", "main.cc", "y.cpp", "y.cpp"]
    assert expand_command(["{sources}"], "main.cc", files, ["cpp", "cc"]) == ["main.cc", "y.cpp"]
    assert expand_command(["{stem}"], "archive.tar.gz", [], []) == ["archive.tar"]
    assert expand_command(["{stem}"], "Makefile", [], []) == ["Makefile"]
    assert expand_command(["{stem}"], ".hidden", [], []) == [".hidden"]


def test_expand_keeps_entry_even_without_extension() -> None:
    assert expand_command(["run", "{sources}"], "prog", ["prog", "lib.x"], ["x"]) == ["run", "prog", "lib.x"]


def test_expand_leaves_other_text_alone() -> None:
    argv = ["sh", "-c", 'nasm "$1" && ld', "sh", "{entry}"]
    assert expand_command(argv, "main.asm", ["main.asm"], ["asm"]) == [
        "sh",
        "-c",
        'nasm "$1" && ld',
        "sh",
        "main.asm",
    ]


def test_expand_main_found_after_compiling_else_stem() -> None:
    argv = ["java", "-cp", ".", "{main}"]
    assert expand_command(argv, "sum.java", ["Main.class"], ["java"], main="Main") == ["java", "-cp", ".", "Main"]
    assert expand_command(argv, "sum.java", [], ["java"]) == ["java", "-cp", ".", "sum"]


def test_expand_is_one_pass() -> None:
    # A file named after a placeholder stays as it is: its text is never expanded a second time.
    assert expand_command(["x={entry}", "{stem}"], "{main}.k", [], [], main="Main") == ["x={main}.k", "{main}"]


# --- the run stage's {main} rule -------------------------------------------------------------

COMPILED = '[compile]\ncommand = ["toyc", "{sources}"]\n\n[run]'


@pytest.mark.parametrize(
    ("replace", "message"),
    [
        (("[run]", COMPILED + '\nmain = "jvm-class"'), r"field run: .*\{main\} in the command and a `main` rule"),
        (
            ('["toy", "{entry}"]', '["toy", "{main}"]'),
            r"field run: .*\{main\} in the command and a `main` rule",
        ),
        (
            ('["toy", "{entry}"]', '["toy", "{main}"]\nmain = "jvm-class"'),
            "needs a compile stage",
        ),
        (
            ("[run]", '[compile]\ncommand = ["toyc", "{main}"]\n\n[run]'),
            "the compile command cannot use it",
        ),
        (
            ("[run]", COMPILED.replace("[run]", '[run]\nmain = "guess"')),
            r"field run\.main",
        ),
    ],
)
def test_main_rule_is_checked_at_load(tmp_path: Path, replace: tuple[str, str], message: str) -> None:
    write(tmp_path, "toy", minimal(replace=replace))
    with pytest.raises(LanguageDefinitionError, match=message):
        load_languages(tmp_path)


def test_main_rule_loads_with_its_placeholder(tmp_path: Path) -> None:
    text = minimal(replace=("[run]", COMPILED)).replace('["toy", "{entry}"]', '["toy", "{main}"]\nmain = "jvm-class"')
    write(tmp_path, "toy", text)
    assert load_languages(tmp_path)["toy"].run.main == "jvm-class"


@pytest.mark.parametrize("lang_id", ["java", "kotlin", "scala"])
def test_jvm_languages_run_the_class_found_after_compiling(registry: Registry, lang_id: str) -> None:
    lang = registry.get(lang_id)
    assert lang.run.main == "jvm-class" and "{main}" in lang.run.command


# --- languages Stockade knows it lacks (runtimes/missing.toml) --------------------------------


def test_a_missing_language_is_refused_with_its_reason(registry: Registry) -> None:
    assert {m.id for m in registry.missing} >= {"julia", "swift", "dart", "fsharp", "vbnet", "powershell", "scala3"}
    for name in ("julia", "PWSH", "f#"):
        with pytest.raises(UnknownLanguage) as caught:
            registry.get(name)
        assert caught.value.missing is not None and caught.value.missing.reason in str(caught.value)
    with pytest.raises(UnknownLanguage) as caught:
        registry.get("cobol-2077")
    assert caught.value.missing is None and str(caught.value) == "unknown language: 'cobol-2077'"


def test_a_missing_language_may_not_take_a_defined_name(tmp_path: Path) -> None:
    path = tmp_path / "missing.toml"
    path.write_text('[toy2]\nname = "Toy 2"\naliases = ["toy"]\nreason = "none"\n', encoding="utf-8")
    with pytest.raises(LanguageDefinitionError, match="name 'toy' used twice"):
        Registry(load_languages(_one_toy(tmp_path)), load_missing(path))


def test_a_bad_missing_entry_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "missing.toml"
    path.write_text('[toy2]\nname = "Toy 2"\n', encoding="utf-8")  # no reason
    with pytest.raises(LanguageDefinitionError, match=r"missing\.toml.*reason"):
        load_missing(path)


def test_docs_list_the_missing_languages_as_the_data_does(registry: Registry) -> None:
    doc = (Path(__file__).resolve().parents[2] / "docs" / "languages.md").read_text(encoding="utf-8")
    table = doc.split("| id | language | why missing |", 1)[1].split("\n\n", 1)[0]
    rows = [[c.strip() for c in line.strip("|").split("|")] for line in table.strip().splitlines()[1:]]
    assert rows == [[f"`{m.id}`", m.name, m.reason] for m in registry.missing]


def _one_toy(tmp_path: Path) -> Path:
    languages = tmp_path / "languages"
    languages.mkdir()
    write(languages, "toy", minimal())
    return languages
