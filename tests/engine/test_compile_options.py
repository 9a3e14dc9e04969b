"""A caller's compiler options: each allowed by the language's data (compile.options), placed after its
defaults and before the sources; anything else refused before a box is built."""

from __future__ import annotations

import pytest

from stockade.engine import Engine, ExecutionRequest, InvalidRequest
from stockade.runtimes import expand_command

SHOW = (
    "#include <stdio.h>\n#ifdef __OPTIMIZE__\n#define OPT 1\n#else\n#define OPT 0\n#endif\n"
    'int main(void) { printf("%d %d\\n", ANSWER, OPT); }\n'
)


@pytest.mark.parametrize("language", ["c", "cpp", "c-clang", "cpp-clang"])
async def test_allowed_options_reach_the_compiler(engine: Engine, language: str) -> None:
    code = SHOW if language.startswith("c-") or language == "c" else SHOW.replace("stdio.h", "cstdio")
    req = ExecutionRequest.from_code(language, code, compile_options=("-DANSWER=42", "-O0", "-Wno-unused"))
    result = await engine.execute(req)
    assert result.status.value == "ok", result
    assert result.run is not None and result.run.stdout == b"42 0\n"  # -O0 after the default -O2: it wins


@pytest.mark.parametrize(
    "option",
    ["-fplugin=/tmp/evil.so", "-specs=/tmp/x", "-B/tmp", "-I/etc", "-Wl,--wrap=main", "@/etc/passwd", "-o/box/x",
     "-include/etc/shadow", "-x", "--param=x", "-DX=$(id)", "-O2 -fplugin=x"],
)  # fmt: skip
async def test_any_other_option_is_refused_before_a_box(engine: Engine, option: str) -> None:
    with pytest.raises(InvalidRequest, match="not among the allowed compiler options"):
        await engine.prepare(ExecutionRequest.from_code("c", SHOW, compile_options=(option,)))


async def test_a_language_without_a_compile_step_takes_none(engine: Engine) -> None:
    with pytest.raises(InvalidRequest, match="has no compile step"):
        await engine.prepare(ExecutionRequest.from_code("python", "print(1)", compile_options=("-O",)))


def test_options_go_after_the_defaults_and_before_the_sources() -> None:
    argv = expand_command(["cc", "-O2", "-o", "main", "{sources}", "-lm"], "main.c", ["main.c", "b.c"], ["c"],
                          options=["-O0", "-DX"])  # fmt: skip
    assert argv == ["cc", "-O2", "-o", "main", "-O0", "-DX", "main.c", "b.c", "-lm"]
