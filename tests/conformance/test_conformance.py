"""Every defined language keeps the one contract: same programs, same verdicts, through the real engine.

Every toolchain of every language (each version `candidates` declares or its globs find) runs the cases,
asked for by its detected version. A language whose toolchain is absent must be refused with
TOOLCHAIN_MISSING, a missing toolchain of a language that has others is listed missing with the reason
(asserted, never skipped). CI installs every toolchain first (make test -> make toolchains).
"""

from __future__ import annotations

import asyncio
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from stockade.engine import Engine, ExecutionRequest, SourceFile, StageLimits, ToolchainMissing, Verdict
from stockade.runtimes.detection import candidates
from stockade.runtimes.model import Language
from stockade.runtimes.registry import Registry
from stockade.sandbox import Sandbox, SandboxConfig
from stockade.sandbox.bwrap import check_ro_path

PROGRAMS = Path(__file__).parent / "programs"
REGISTRY = Registry.default()
LANGUAGES = [lang.id for lang in REGISTRY.languages]
# (language, toolchain name): found without running anything (globs only); probed by the tests.
TARGETS = [(lang.id, c.name) for lang in REGISTRY.languages for c in candidates(lang)]
TARGET_IDS = [f"{lang}@{name.rsplit('/', 1)[-1]}" for lang, name in TARGETS]
LOOP_LIMITS = StageLimits(cpu_ms=1500, wall_ms=4000)
MIN_AVAILABLE_AFTER_TOOLCHAINS = 35


@pytest.fixture(scope="module")
def engine() -> Iterator[Engine]:
    sandbox = Sandbox(
        SandboxConfig(run_dir=Path("/run/stockade-t-conf"), slots=2, uid_base=62200, cgroup_name="stockade-t-conf")
    )
    sandbox.start()
    yield Engine(sandbox, REGISTRY)
    sandbox.close()


def program(lang: Language, name: str) -> bytes:
    matches = sorted(p for p in (PROGRAMS / lang.id).glob(f"{name}.*") if p.suffix != ".toml")
    assert matches, f"no conformance program {name} for {lang.id}"
    return matches[0].read_bytes()


async def execute(engine: Engine, lang: Language, code: bytes, toolchain: str | None = None, **kw: object) -> object:
    """The program's result on the named toolchain (default: the language's default), or None when that is
    missing, after checking that it is refused or listed as such."""
    found = await engine.registry.detect_versions(lang)
    chosen = [t for t in found if t.name == toolchain] if toolchain is not None else [found[0]]
    assert chosen, f"{lang.id}: toolchain {toolchain} is not listed (another of the same version hides it?)"
    tc = chosen[0]
    version = tc.version if toolchain is not None else None
    request = ExecutionRequest(language=lang.id, files=[SourceFile(lang.source_file, code)], version=version, **kw)  # type: ignore[arg-type]
    if not tc.available:
        if not any(t.available for t in found):
            with pytest.raises(ToolchainMissing):
                await engine.execute(request)
        assert tc.detail, f"{lang.id}: a missing toolchain says why"
        return None
    result = await engine.execute(request)
    assert result.version == tc.version, f"{lang.id}: asked for {tc.version}, ran {result.version}"
    return result


def out(result: object) -> str:
    run = result.run  # type: ignore[attr-defined]
    return "" if run is None else run.stdout.decode("utf-8", "replace")


def diag(result: object) -> str:
    stages = [s for s in (result.compile, result.run) if s is not None]  # type: ignore[attr-defined]
    return " | ".join(f"{s.status} exit={s.exit_code} sig={s.signal} err={s.stderr[-600:]!r}" for s in stages)


@pytest.mark.parametrize(("lang_id", "toolchain"), TARGETS, ids=TARGET_IDS)
async def test_hello_world(engine: Engine, lang_id: str, toolchain: str) -> None:
    lang = REGISTRY.get(lang_id)
    r = await execute(engine, lang, lang.hello.encode(), toolchain)
    if r is not None:
        assert (r.status, out(r)) == (Verdict.OK, "Hello, World!\n"), diag(r)  # type: ignore[attr-defined]


@dataclass(frozen=True)
class Case:
    stdin: str = ""
    status: str = "ok"
    stdout: str | None = None
    stderr_contains: str | None = None
    exit_code: int | None = None
    strip: bool = False


# The contract every language keeps; a language's EXCEPTIONS.toml may replace parts of one case, with a
# reason, and the case then asserts what the language really does (never a skip).
CASES = {
    "echo": Case(stdin="hello stockade\n", stdout="hello stockade\n"),
    "sum": Case(stdin="2 40\n", stdout="42", strip=True),
    "exit3": Case(status="runtime_error", exit_code=3),
    "loop": Case(status="timeout"),
}


def exceptions(lang: Language) -> dict[str, dict[str, str]]:
    path = PROGRAMS / lang.id / "EXCEPTIONS.toml"
    found = tomllib.loads(path.read_text()) if path.exists() else {}
    for name, override in found.items():
        assert override.get("reason"), f"{path}: [{name}] needs a reason"
    return found


def case_for(lang: Language, name: str) -> Case:
    override = exceptions(lang).get(name)
    if not override:
        return CASES[name]
    base = CASES.get(name, Case())
    return Case(
        stdin=override.get("stdin", base.stdin),
        status=override.get("expect_status", base.status),
        stdout=override.get("expect_stdout", base.stdout),
        stderr_contains=override.get("expect_stderr", base.stderr_contains),
        exit_code=base.exit_code if override.get("expect_status", base.status) == base.status else None,
        strip=base.strip,
    )


@pytest.mark.parametrize("case_name", list(CASES))
@pytest.mark.parametrize(("lang_id", "toolchain"), TARGETS, ids=TARGET_IDS)
async def test_case(engine: Engine, lang_id: str, toolchain: str, case_name: str) -> None:
    lang = REGISTRY.get(lang_id)
    case = case_for(lang, case_name)
    limits = LOOP_LIMITS if case_name == "loop" else StageLimits()
    code = program(lang, case_name)
    r = await execute(engine, lang, code, toolchain, stdin=case.stdin.encode(), limits=limits)
    if r is None:
        return
    assert r.status == case.status, diag(r)  # type: ignore[attr-defined]
    if case.stdout is not None:
        got, want = (out(r).strip(), case.stdout.strip()) if case.strip else (out(r), case.stdout)
        assert got == want, diag(r)
    if case.exit_code is not None:
        assert r.run.exit_code == case.exit_code, diag(r)  # type: ignore[attr-defined]
    if case.stderr_contains is not None:
        assert case.stderr_contains in r.run.stderr.decode("utf-8", "replace"), diag(r)  # type: ignore[attr-defined]


@pytest.mark.parametrize(("lang_id", "toolchain"), TARGETS, ids=TARGET_IDS)
async def test_syntax_error(engine: Engine, lang_id: str, toolchain: str) -> None:
    lang = REGISTRY.get(lang_id)
    r = await execute(engine, lang, program(lang, "syntax_error"), toolchain)
    if r is None:
        return
    if override := exceptions(lang).get("syntax_error"):
        assert r.status == override.get("expect_status"), diag(r)  # type: ignore[attr-defined]
        assert override["expect_stderr"] in r.run.stderr.decode("utf-8", "replace"), diag(r)  # type: ignore[attr-defined]
    elif lang.compiled:
        assert r.status is Verdict.COMPILE_ERROR, diag(r)  # type: ignore[attr-defined]
        assert r.compile.stdout + r.compile.stderr, "a compile error comes with diagnostics"  # type: ignore[attr-defined]
    else:
        assert r.status is Verdict.RUNTIME_ERROR, diag(r)  # type: ignore[attr-defined]
        assert r.run.stderr or r.run.stdout, "the interpreter's message is kept"  # type: ignore[attr-defined]


def test_every_language_has_its_programs() -> None:
    for lang in REGISTRY.languages:
        for case in ("echo", "sum", "exit3", "syntax_error", "loop"):
            assert program(lang, case)


def test_at_least_40_languages_defined() -> None:
    assert len(REGISTRY.languages) >= 40


def test_toolchains_installed_by_make_are_detected() -> None:
    found = asyncio.run(Registry.default().detect_all())
    available = [k for k, v in found.items() if v.available]
    assert len(available) >= MIN_AVAILABLE_AFTER_TOOLCHAINS, sorted(set(found) - set(available))


def test_language_ro_paths_are_allowed_by_the_box() -> None:
    for lang in REGISTRY.languages:
        for path in lang.sandbox.ro_paths:
            assert check_ro_path(path) == path, (lang.id, path)


# Programs sent under their own file name, one that differs from the class holding main (issue 19):
# `<id>/named/<path>` is sent as `<path>`, reads "2 40" and prints 42.
NAMED = sorted(p.relative_to(PROGRAMS) for p in PROGRAMS.glob("*/named/**/*") if p.is_file())


@pytest.mark.parametrize("fixture", NAMED, ids=str)
async def test_file_named_unlike_its_class(engine: Engine, fixture: Path) -> None:
    lang_id, _, *parts = fixture.parts
    lang = REGISTRY.get(lang_id)
    name = "/".join(parts)
    request = ExecutionRequest(
        language=lang.id, files=[SourceFile(name, (PROGRAMS / fixture).read_bytes())], stdin=b"2 40\n"
    )
    if not (await engine.registry.detect(lang)).available:
        with pytest.raises(ToolchainMissing):
            await engine.execute(request)
        return
    r = await engine.execute(request)
    assert (r.status, out(r).strip()) == (Verdict.OK, "42"), diag(r)


def test_languages_run_by_name_have_a_named_program() -> None:
    # Whatever runs a name derived from the file ({stem}) or found after compiling ({main}), and the
    # JVM scripts, keeps a case with a file name that differs from the class.
    by_name = {lang.id for lang in REGISTRY.languages if lang.run.main or any("{stem}" in a for a in lang.run.command)}
    covered = {fixture.parts[0] for fixture in NAMED}
    assert by_name | {"groovy"} <= covered, sorted(by_name | {"groovy"} - covered)


# A program that ends by a signal (issue 22): the result names the signal and explains it, on every
# toolchain of each compiled language family. Go, Crystal, Pascal, Haskell and Ada runtimes turn SIGSEGV and
# SIGABRT into their own exits, so theirs kill themselves with SIGKILL.
SIGNAL_LANGUAGES = sorted(p.parent.name for p in PROGRAMS.glob("*/signal.*"))
SIGNAL_TARGETS = [(lang, name) for lang, name in TARGETS if lang in SIGNAL_LANGUAGES]
COMPILED_FAMILIES = {"zig", "c", "c-clang", "cpp", "cpp-clang", "tcc", "objective-c", "rust", "go", "d", "d-ldc",
                     "fortran", "nim", "crystal", "ada", "pascal", "haskell", "nasm"}  # fmt: skip


@pytest.mark.parametrize(
    ("lang_id", "toolchain"), SIGNAL_TARGETS, ids=[f"{a}@{b.rsplit('/', 1)[-1]}" for a, b in SIGNAL_TARGETS]
)
async def test_a_crash_names_its_signal(engine: Engine, lang_id: str, toolchain: str) -> None:
    lang = REGISTRY.get(lang_id)
    r = await execute(engine, lang, program(lang, "signal"), toolchain)
    if r is None:
        return
    assert r.status is Verdict.RUNTIME_ERROR and r.run.signal is not None, diag(r)  # type: ignore[attr-defined]
    assert r.signal_name in ("SIGSEGV", "SIGABRT", "SIGKILL"), diag(r)  # type: ignore[attr-defined]
    assert r.explanation.startswith(f"{r.signal_name} ("), r.explanation  # type: ignore[attr-defined]


def test_every_compiled_family_has_a_signal_case() -> None:
    assert set(SIGNAL_LANGUAGES) >= COMPILED_FAMILIES, sorted(COMPILED_FAMILIES - set(SIGNAL_LANGUAGES))
    assert all(REGISTRY.get(lang).compiled for lang in COMPILED_FAMILIES)


async def test_32_bit_x86_is_refused_and_says_so(engine: Engine) -> None:
    lang = REGISTRY.get("nasm")
    r = await execute(engine, lang, program(lang, "i386"))
    if r is None:
        return
    assert (r.status, r.signal_name) == (Verdict.SYSCALL_BLOCKED, "SIGSYS"), diag(r)  # type: ignore[attr-defined]
    assert "32-bit x86 is not supported" in r.explanation and "syscall" in r.explanation  # type: ignore[attr-defined]


async def test_a_public_class_is_compiled_under_the_name_javac_requires(engine: Engine) -> None:
    lang = REGISTRY.get("java")
    code = (PROGRAMS / "java" / "named" / "program.java").read_bytes()
    request = ExecutionRequest(language="java", files=[SourceFile("src/program.java", code)], stdin=b"2 40\n")
    if not (await engine.registry.detect(lang)).available:
        with pytest.raises(ToolchainMissing):
            await engine.execute(request)
        return
    r = await engine.execute(request)
    assert (r.status, out(r).strip()) == (Verdict.OK, "42"), diag(r)
    note = "stockade: src/program.java declares public HelloWorld: compiled as src/HelloWorld.java\n"
    assert r.compile is not None and r.compile.stdout.startswith(note.encode()), r.compile.stdout
