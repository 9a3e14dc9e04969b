"""Refusals before any box starts: file names, limits, languages, toolchains and versions."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from stockade.engine import (
    Engine,
    ExecutionRequest,
    InvalidRequest,
    LimitOutOfRange,
    LimitPolicy,
    PayloadTooLarge,
    SourceFile,
    StageLimits,
    ToolchainMissing,
    UnknownLanguage,
    Verdict,
    check_file_name,
)
from stockade.engine.engine import MAX_ARGS, MAX_DEPTH, MAX_FILES, MAX_NAME, MAX_PATH
from stockade.engine.limits import COMPILE_BOUNDS, RUN_BOUNDS
from stockade.runtimes import Registry, load_languages
from stockade.runtimes.model import LanguageFloors
from stockade.sandbox import Sandbox

from .conftest import assert_nothing_left

C_HELLO = b'#include <stdio.h>\nint main(void) { puts("hi"); return 0; }\n'
JVM_LANGUAGES = ("java", "kotlin", "scala", "clojure", "groovy")

BAD_NAMES = {
    "empty": "",
    "absolute": "/etc/passwd",
    "absolute-box": "/box/main.c",
    "dotdot": "..",
    "dotdot-leading": "../main.c",
    "dotdot-inner": "a/../main.c",
    "dotdot-trailing": "a/..",
    "dot-part": "./main.c",
    "dot-inner": "a/./main.c",
    "empty-part": "a//main.c",
    "trailing-slash": "a/",
    "nul": "ma\0in.c",
    "backslash": "a\\main.c",
    "backslash-dotdot": "..\\..\\etc\\passwd",
    "newline": "main\n.c",
    "carriage-return": "main\r.c",
    "tab": "ma\tin.c",
    "escape": "\x1b[31mmain.c",
    "del": "main\x7f.c",
    "bell": "\x07.c",
    "too-deep": "/".join(["d"] * MAX_DEPTH) + "/main.c",
    "part-too-long": "a" * (MAX_NAME + 1),
    "path-too-long": "/".join(["a" * 100] * 5) + "/" + "b" * 20,  # 525 bytes in parts of legal length
    "multibyte-too-long": "é" * (MAX_PATH // 2 + 1),  # few characters, too many bytes
}


# -- file names ------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(BAD_NAMES.values()), ids=list(BAD_NAMES))
def test_check_file_name_refuses(name: str) -> None:
    with pytest.raises(InvalidRequest):
        check_file_name(name)


@pytest.mark.parametrize(
    "name",
    [
        "main.c",
        "src/util.c",
        "pkg/sub/helper.py",
        "/".join(["d"] * (MAX_DEPTH - 1)) + "/main.c",
        "a" * MAX_NAME,
        ".hidden",
        "..two-dots-prefix",
        "with space.c",
        "ünïcode.py",
    ],
)
def test_check_file_name_accepts(name: str) -> None:
    assert check_file_name(name) == name


# An empty name means "the language's default name" to the engine, so it is not refused there.
ENGINE_BAD_NAMES = {k: v for k, v in BAD_NAMES.items() if v}


@pytest.mark.parametrize("name", list(ENGINE_BAD_NAMES.values()), ids=list(ENGINE_BAD_NAMES))
async def test_engine_refuses_bad_file_name(engine: Engine, sandbox: Sandbox, name: str) -> None:
    req = ExecutionRequest(language="c", files=[SourceFile("main.c", C_HELLO), SourceFile(name, b"int x;\n")])
    with pytest.raises(InvalidRequest):
        await engine.execute(req)
    assert_nothing_left(sandbox)


@pytest.mark.parametrize("entry", ["/box/main.c", "../main.c", "main\0.c", "a\\main.c"])
async def test_engine_refuses_bad_entry_name(engine: Engine, entry: str) -> None:
    req = ExecutionRequest(language="c", files=[SourceFile("main.c", C_HELLO)], entry=entry)
    with pytest.raises(InvalidRequest):
        await engine.execute(req)


async def test_duplicate_file_names(engine: Engine) -> None:
    req = ExecutionRequest(language="c", files=[SourceFile("main.c", C_HELLO), SourceFile("main.c", b"int x;\n")])
    with pytest.raises(InvalidRequest, match="unique"):
        await engine.execute(req)


async def test_duplicate_after_default_name_is_filled_in(engine: Engine) -> None:
    # "" becomes the language's source_file (main.c), which then collides with the explicit one.
    req = ExecutionRequest(language="c", files=[SourceFile("", C_HELLO), SourceFile("main.c", C_HELLO)])
    with pytest.raises(InvalidRequest, match="unique"):
        await engine.execute(req)


async def test_entry_not_among_files(engine: Engine) -> None:
    req = ExecutionRequest(language="c", files=[SourceFile("main.c", C_HELLO)], entry="other.c")
    with pytest.raises(InvalidRequest, match="entry"):
        await engine.execute(req)


async def test_default_entry_missing_among_several_files(engine: Engine) -> None:
    # Several files and no entry: the language's source_file (main.c) must be one of them.
    files = [SourceFile("prog.c", C_HELLO), SourceFile("util.c", b"int x;\n")]
    with pytest.raises(InvalidRequest, match="entry"):
        await engine.execute(ExecutionRequest(language="c", files=files))


async def test_no_files_and_too_many_files(engine: Engine) -> None:
    with pytest.raises(InvalidRequest):
        await engine.execute(ExecutionRequest(language="c", files=[]))
    many = [SourceFile("main.c", C_HELLO)] + [SourceFile(f"f{i}.h", b"") for i in range(MAX_FILES)]
    with pytest.raises(InvalidRequest):
        await engine.execute(ExecutionRequest(language="c", files=many))


async def test_payload_too_large(engine: Engine) -> None:
    big = b"/*" + b"x" * (4 * 1024 * 1024) + b"*/\n"
    with pytest.raises(PayloadTooLarge):
        await engine.execute(ExecutionRequest(language="c", files=[SourceFile("main.c", big)]))
    with pytest.raises(PayloadTooLarge):
        await engine.execute(ExecutionRequest.from_code("c", C_HELLO, stdin=b"x" * (8 * 1024 * 1024 + 1)))


@pytest.mark.parametrize("args", [["a\0b"], ["x"] * (MAX_ARGS + 1), ["y" * 4097]], ids=["nul", "too-many", "too-long"])
async def test_bad_args(engine: Engine, args: list[str]) -> None:
    with pytest.raises(InvalidRequest):
        await engine.execute(ExecutionRequest.from_code("c", C_HELLO, args=args))


# -- limits ----------------------------------------------------------------------------------------


def _out_of_range(bounds: dict[str, tuple[int, int]]) -> list[tuple[str, int]]:
    return [(name, v) for name, (lo, hi) in bounds.items() for v in (lo - 1, hi + 1, -1)]


@pytest.mark.parametrize(("name", "value"), _out_of_range(RUN_BOUNDS))
async def test_run_limit_out_of_range_names_the_field(engine: Engine, name: str, value: int) -> None:
    req = ExecutionRequest.from_code("c", C_HELLO, limits=StageLimits(**{name: value}))
    with pytest.raises(LimitOutOfRange) as info:
        await engine.execute(req)
    assert name in info.value.message and "run" in info.value.message
    assert info.value.code == "LIMIT_OUT_OF_RANGE"


@pytest.mark.parametrize(("name", "value"), _out_of_range(COMPILE_BOUNDS))
async def test_compile_limit_out_of_range_names_the_field(engine: Engine, name: str, value: int) -> None:
    req = ExecutionRequest.from_code("c", C_HELLO, compile_limits=StageLimits(**{name: value}))
    with pytest.raises(LimitOutOfRange) as info:
        await engine.execute(req)
    assert name in info.value.message and "compile" in info.value.message


def test_limit_bounds_are_inclusive() -> None:
    policy = LimitPolicy()
    for stage, bounds in ((policy.run, RUN_BOUNDS), (policy.compile, COMPILE_BOUNDS)):
        stage.check(StageLimits(**{n: lo for n, (lo, _hi) in bounds.items()}), "x")
        stage.check(StageLimits(**{n: hi for n, (_lo, hi) in bounds.items()}), "x")
        stage.check(StageLimits(), "x")


def test_limits_checked_before_the_language_resolves_floors() -> None:
    # A floor may raise a limit above the caller's maximum, but the caller may not ask for it.
    policy = LimitPolicy()
    with pytest.raises(LimitOutOfRange, match="memory_mb"):
        policy.run.check(StageLimits(memory_mb=RUN_BOUNDS["memory_mb"][1] + 1), "run")


def test_floors_raise_what_was_asked_and_nothing_else() -> None:
    policy = LimitPolicy()
    floors = LanguageFloors(memory_mb=2048, processes=300, open_files=4096, stack_mb=256, cpu_ms_extra=1500)
    low = policy.run.resolve(StageLimits(cpu_ms=1000, wall_ms=2000, memory_mb=16, processes=1), floors)
    assert low.memory_mb == 2048 and low.processes == 300
    assert low.open_files == 4096 and low.stack_mb == 256
    assert (low.cpu_ms, low.wall_ms) == (1000 + 1500, 2000 + 3000)
    high = policy.run.resolve(StageLimits(memory_mb=4096, processes=512), floors)
    assert (high.memory_mb, high.processes) == (4096, 512)
    none = policy.run.resolve(StageLimits(cpu_ms=1000, memory_mb=16), LanguageFloors())
    assert (none.cpu_ms, none.memory_mb) == (1000, 16)
    default = policy.run.resolve(StageLimits(), LanguageFloors())
    assert default.memory_mb == policy.run.default.memory_mb and default.cpu_ms == policy.run.default.cpu_ms
    assert default.cpu_cores == 1.0 and policy.run.resolve(StageLimits(), LanguageFloors(cpu_cores=64)).cpu_cores == (
        os.cpu_count() or 1
    )


@pytest.mark.parametrize("lang_id", [lang.id for lang in Registry.default()])
def test_language_floors_apply_to_a_minimal_request(registry: Registry, lang_id: str) -> None:
    lang = registry.get(lang_id)
    policy = LimitPolicy()
    minimal = StageLimits(cpu_ms=1, wall_ms=1, memory_mb=16, processes=1)
    for stage, floors in ((policy.run, lang.limits), (policy.compile, lang.compile_limits)):
        got = stage.resolve(minimal, floors)
        assert got.memory_mb == max(16, floors.memory_mb or 0)
        assert got.processes == max(1, floors.processes or 0)
        assert got.open_files >= (floors.open_files or 0)
        assert got.stack_mb >= (floors.stack_mb or 0)
        assert got.cpu_ms == 1 + (floors.cpu_ms_extra or 0)
        assert got.cpu_cores == min(os.cpu_count() or 1, max(stage.cpu_cores, floors.cpu_cores or 0))


@pytest.mark.parametrize("lang_id", [j for j in JVM_LANGUAGES if j in Registry.default()])
def test_jvm_memory_floor(registry: Registry, lang_id: str) -> None:
    lang = registry.get(lang_id)
    assert lang.limits.memory_mb is not None and lang.limits.memory_mb > 64, "a JVM needs a memory floor"
    assert lang.limits.cpu_cores == 2, "a JVM starts up on several threads"
    got = LimitPolicy().run.resolve(StageLimits(memory_mb=16), lang.limits)
    assert got.memory_mb == lang.limits.memory_mb


# -- languages, toolchains, versions ---------------------------------------------------------------


async def test_unknown_language(engine: Engine) -> None:
    with pytest.raises(UnknownLanguage) as info:
        await engine.execute(ExecutionRequest.from_code("brainfudge-9000", "+"))
    assert info.value.code == "UNKNOWN_LANGUAGE"
    with pytest.raises(UnknownLanguage):
        await engine.execute(ExecutionRequest.from_code("", "x"))


async def test_aliases_and_case_resolve(engine: Engine) -> None:
    assert engine.language("GCC").id == "c"
    assert engine.language(" python3 ").id == "python"


FAKE_TOML = """
id = "{id}"
name = "Fake"
extensions = ["{id}"]
source_file = "main.{id}"
packages = ["fake-toolchain"]
hello = "hello"

[version]
command = {version_command}
pattern = 'fake ([0-9.]+)'

[compile]
command = ["{binary}", "{{entry}}"]

[run]
command = ["./main"]
"""


def _fake_registry(tmp_path: Path, **variants: tuple[str, str]) -> Registry:
    for lang_id, (version_command, binary) in variants.items():
        text = FAKE_TOML.format(id=lang_id, version_command=version_command, binary=binary)
        (tmp_path / f"{lang_id}.toml").write_text(text)
    return Registry(load_languages(tmp_path))


async def test_missing_toolchain_is_refused_before_any_box(tmp_path: Path, sandbox: Sandbox) -> None:
    missing = "stockade-no-such-compiler-7f3a"
    registry = _fake_registry(
        tmp_path,
        fake=(f'["{missing}", "--version"]', missing),
        # Exists, but prints no version: also not a usable toolchain.
        fakenover=('["/bin/true"]', "/bin/true"),
    )
    engine = Engine(sandbox, registry)
    for lang_id in ("fake", "fakenover"):
        with pytest.raises(ToolchainMissing) as info:
            await engine.execute(ExecutionRequest.from_code(lang_id, "anything"))
        assert info.value.code == "TOOLCHAIN_MISSING"
        assert lang_id in info.value.message
    with pytest.raises(ToolchainMissing, match=missing):
        await engine.execute(ExecutionRequest.from_code("fake", "anything"))
    assert_nothing_left(sandbox)


async def test_version_mismatch(engine: Engine, registry: Registry) -> None:
    tc = await registry.detect("c")
    assert tc.available and tc.version, f"gcc must be installed: {tc.detail}"
    major = tc.version.split(".")[0]
    for wrong in ("0.0.1", "999", major + "9", tc.version + ".7", tc.version[:-1] if len(tc.version) > 1 else "x"):
        if wrong == tc.version or tc.version.startswith(wrong + "."):
            continue
        with pytest.raises(ToolchainMissing, match="version"):
            await engine.execute(ExecutionRequest.from_code("c", C_HELLO, version=wrong))


async def test_version_prefix_matches(engine: Engine, registry: Registry, sandbox: Sandbox) -> None:
    tc = await registry.detect("c")
    assert tc.available and tc.version, f"gcc must be installed: {tc.detail}"
    for wanted in (tc.version, tc.version.split(".")[0]):
        result = await engine.execute(ExecutionRequest.from_code("c", C_HELLO, version=wanted))
        assert result.status is Verdict.OK, result
        assert result.version == tc.version and result.run is not None and result.run.stdout == b"hi\n"
    assert_nothing_left(sandbox)
