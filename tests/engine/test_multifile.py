"""Programs of several files: headers and units in C, packages in Python, classes in Java."""

from __future__ import annotations

import pytest

from stockade.engine import Engine, ExecutionRequest, ExecutionResult, SourceFile, Verdict
from stockade.runtimes import Registry
from stockade.sandbox import Sandbox

from .conftest import assert_nothing_left

DEFINED = {lang.id for lang in Registry.default()}

UTIL_H = b"""#ifndef UTIL_H
#define UTIL_H
#define GREETING "sum"
long sum_to(long n);
#endif
"""
UTIL_C = b"""#include "util.h"
long sum_to(long n) { long s = 0; for (long i = 1; i <= n; i++) s += i; return s; }
"""
MAIN_C = b"""#include <stdio.h>
#include "util.h"
int main(void) {
    long n;
    if (scanf("%ld", &n) != 1) return 2;
    printf("%s %ld\\n", GREETING, sum_to(n));
    return 0;
}
"""


async def run(engine: Engine, registry: Registry, lang: str, files: list[SourceFile], **kw: object) -> ExecutionResult:
    tc = await registry.detect(lang)
    assert tc.available, f"{lang}: toolchain must be installed: {tc.detail}"
    result = await engine.execute(ExecutionRequest(language=lang, files=files, **kw))  # type: ignore[arg-type]
    compile_out = (result.compile.stdout + result.compile.stderr) if result.compile else b""
    assert result.status is Verdict.OK, (result.status, compile_out[-2000:], result.run)
    return result


@pytest.mark.parametrize("lang", [x for x in ("c", "c-clang") if x in DEFINED])
async def test_c_with_header_and_second_unit(engine: Engine, registry: Registry, sandbox: Sandbox, lang: str) -> None:
    files = [SourceFile("main.c", MAIN_C), SourceFile("util.h", UTIL_H), SourceFile("util.c", UTIL_C)]
    result = await run(engine, registry, lang, files, stdin=b"100\n")
    assert result.run is not None and result.run.stdout == b"sum 5050\n"
    # The compile box hands over what it built; the header did not become an artifact of its own.
    assert result.compile is not None and "main" in {f.path for f in result.compile.files}
    assert_nothing_left(sandbox)


async def test_c_units_in_subdirectories(engine: Engine, registry: Registry, sandbox: Sandbox) -> None:
    main = MAIN_C.replace(b'"util.h"', b'"lib/util.h"')
    # lib/util.c's own `#include "util.h"` is found next to it, in lib/.
    files = [SourceFile("main.c", main), SourceFile("lib/util.h", UTIL_H), SourceFile("lib/util.c", UTIL_C)]
    result = await run(engine, registry, "c", files, stdin=b"10")
    assert result.run is not None and result.run.stdout == b"sum 55\n"
    assert_nothing_left(sandbox)


@pytest.mark.parametrize("lang", [x for x in ("cpp", "cpp-clang") if x in DEFINED])
async def test_cpp_with_header(engine: Engine, registry: Registry, sandbox: Sandbox, lang: str) -> None:
    files = [
        SourceFile(
            "main.cpp", b'#include <iostream>\n#include "shape.hpp"\nint main() { std::cout << area(Sq{7}); }\n'
        ),
        SourceFile("shape.hpp", b"#pragma once\nstruct Sq { int s; };\nint area(const Sq&);\n"),
        SourceFile("shape.cpp", b'#include "shape.hpp"\nint area(const Sq& q) { return q.s * q.s; }\n'),
    ]
    result = await run(engine, registry, lang, files)
    assert result.run is not None and result.run.stdout == b"49"
    assert_nothing_left(sandbox)


async def test_python_with_package_in_subdirectory(engine: Engine, registry: Registry, sandbox: Sandbox) -> None:
    files = [
        SourceFile(
            "main.py",
            b"import sys\nfrom pkg.helper import shout\nfrom pkg import VERSION\n"
            b"print(shout(sys.stdin.read().strip()), VERSION, sys.argv[1:])\n",
        ),
        SourceFile("pkg/__init__.py", b"VERSION = 3\n"),
        SourceFile("pkg/helper.py", b"def shout(s):\n    return s.upper() + '!'\n"),
    ]
    result = await run(engine, registry, "python", files, stdin=b"hello\n", args=["a", "b"])
    assert result.run is not None and result.run.stdout == b"HELLO! 3 ['a', 'b']\n", result.run
    assert result.compile is None
    assert_nothing_left(sandbox)


async def test_python_entry_in_subdirectory_imports_sibling(
    engine: Engine, registry: Registry, sandbox: Sandbox
) -> None:
    files = [
        SourceFile("app/run.py", b"import util\nprint(util.twice(21))\n"),
        SourceFile("app/util.py", b"def twice(x):\n    return 2 * x\n"),
    ]
    result = await run(engine, registry, "python", files, entry="app/run.py")
    assert result.run is not None and result.run.stdout == b"42\n"
    assert_nothing_left(sandbox)


JAVA_MAIN = b"""public class Main {
    public static void main(String[] args) throws Exception {
        java.io.BufferedReader in = new java.io.BufferedReader(new java.io.InputStreamReader(System.in));
        int n = Integer.parseInt(in.readLine().trim());
        System.out.println(Helper.greet("java") + " " + Helper.square(n));
    }
}
"""
JAVA_HELPER = b"""public class Helper {
    static String greet(String who) { return "hello " + who; }
    static int square(int n) { return n * n; }
}
"""


@pytest.mark.skipif("java" not in DEFINED, reason="java is not defined in the registry")
async def test_java_with_two_classes(engine: Engine, registry: Registry, sandbox: Sandbox) -> None:
    files = [SourceFile("Main.java", JAVA_MAIN), SourceFile("Helper.java", JAVA_HELPER)]
    result = await run(engine, registry, "java", files, entry="Main.java", stdin=b"12\n")
    assert result.run is not None and result.run.stdout == b"hello java 144\n", result.run
    assert_nothing_left(sandbox)
