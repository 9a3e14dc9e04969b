"""Every defined language keeps the one contract: same programs, same verdicts, through the real engine.

A language whose toolchain is absent must be refused with TOOLCHAIN_MISSING (asserted, never skipped).
CI installs every toolchain first (make test -> make toolchains).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from stockade.engine import Engine, ExecutionRequest, SourceFile, StageLimits, ToolchainMissing, Verdict
from stockade.runtimes.model import Language
from stockade.runtimes.registry import Registry
from stockade.sandbox import Sandbox, SandboxConfig

PROGRAMS = Path(__file__).parent / "programs"
REGISTRY = Registry.default()
LANGUAGES = [lang.id for lang in REGISTRY.languages]
LOOP_LIMITS = StageLimits(cpu_ms=1500, wall_ms=4000)
MIN_AVAILABLE_AFTER_TOOLCHAINS = 35


@pytest.fixture(scope="module")
def engine() -> Iterator[Engine]:
    sandbox = Sandbox(
        SandboxConfig(run_dir=Path("/run/stockade-t-conf"), slots=2, uid_base=62200, cgroup_name="stockade-t-conf")
    )
    sandbox.start()
    yield Engine(sandbox, REGISTRY)


def program(lang: Language, name: str) -> bytes:
    matches = sorted((PROGRAMS / lang.id).glob(f"{name}.*"))
    assert matches, f"no conformance program {name} for {lang.id}"
    return matches[0].read_bytes()


async def execute(engine: Engine, lang: Language, code: bytes, **kw: object) -> object:
    request = ExecutionRequest(language=lang.id, files=[SourceFile(lang.source_file, code)], **kw)  # type: ignore[arg-type]
    tc = await engine.registry.detect(lang)
    if not tc.available:
        with pytest.raises(ToolchainMissing):
            await engine.execute(request)
        return None
    return await engine.execute(request)


def out(result: object) -> str:
    run = result.run  # type: ignore[attr-defined]
    return "" if run is None else run.stdout.decode("utf-8", "replace")


def diag(result: object) -> str:
    stages = [s for s in (result.compile, result.run) if s is not None]  # type: ignore[attr-defined]
    return " | ".join(f"{s.status} exit={s.exit_code} sig={s.signal} err={s.stderr[-600:]!r}" for s in stages)


@pytest.mark.parametrize("lang_id", LANGUAGES)
async def test_hello_world(engine: Engine, lang_id: str) -> None:
    lang = REGISTRY.get(lang_id)
    r = await execute(engine, lang, lang.hello.encode())
    if r is not None:
        assert (r.status, out(r)) == (Verdict.OK, "Hello, World!\n"), diag(r)  # type: ignore[attr-defined]


@pytest.mark.parametrize("lang_id", LANGUAGES)
async def test_echo_a_line_from_stdin(engine: Engine, lang_id: str) -> None:
    lang = REGISTRY.get(lang_id)
    r = await execute(engine, lang, program(lang, "echo"), stdin=b"hello stockade\n")
    if r is not None:
        assert (r.status, out(r)) == (Verdict.OK, "hello stockade\n"), diag(r)  # type: ignore[attr-defined]


@pytest.mark.parametrize("lang_id", LANGUAGES)
async def test_sum_of_two_numbers(engine: Engine, lang_id: str) -> None:
    lang = REGISTRY.get(lang_id)
    r = await execute(engine, lang, program(lang, "sum"), stdin=b"2 40\n")
    if r is not None:
        assert (r.status, out(r).strip()) == (Verdict.OK, "42"), diag(r)  # type: ignore[attr-defined]


@pytest.mark.parametrize("lang_id", LANGUAGES)
async def test_exit_code_3_is_a_runtime_error(engine: Engine, lang_id: str) -> None:
    lang = REGISTRY.get(lang_id)
    r = await execute(engine, lang, program(lang, "exit3"))
    if r is not None:
        assert (r.status, r.run.exit_code) == (Verdict.RUNTIME_ERROR, 3), diag(r)  # type: ignore[attr-defined]


@pytest.mark.parametrize("lang_id", LANGUAGES)
async def test_syntax_error(engine: Engine, lang_id: str) -> None:
    lang = REGISTRY.get(lang_id)
    r = await execute(engine, lang, program(lang, "syntax_error"))
    if r is None:
        return
    if lang.compiled:
        assert r.status is Verdict.COMPILE_ERROR, diag(r)  # type: ignore[attr-defined]
        assert r.compile.stdout + r.compile.stderr, "a compile error comes with diagnostics"  # type: ignore[attr-defined]
    else:
        assert r.status is Verdict.RUNTIME_ERROR, diag(r)  # type: ignore[attr-defined]
        assert r.run.stderr or r.run.stdout, "the interpreter's message is kept"  # type: ignore[attr-defined]


@pytest.mark.parametrize("lang_id", LANGUAGES)
async def test_endless_loop_times_out(engine: Engine, lang_id: str) -> None:
    lang = REGISTRY.get(lang_id)
    r = await execute(engine, lang, program(lang, "loop"), limits=LOOP_LIMITS)
    if r is not None:
        assert r.status is Verdict.TIMEOUT, diag(r)  # type: ignore[attr-defined]


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
