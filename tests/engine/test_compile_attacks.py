"""Catalogue section 3 (CT-01..CT-10): the compiler is an interpreter of untrusted input.

Every test plants canaries on the host first (a root-only file under /root, a 0600 file in /etc, a
variable in this process's environment) and asserts that none of them reaches compile output, run output
or any collected file; after every test no process of a slot uid and no box cgroup may be left.
"""

from __future__ import annotations

import errno
import os
import secrets
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from stockade.engine import Engine, ExecutionRequest, ExecutionResult, InvalidRequest, SourceFile, StageLimits, Verdict
from stockade.runtimes import Registry
from stockade.sandbox import Sandbox

from .conftest import ENGINE_CONFIG, assert_nothing_left

DEFINED = {lang.id for lang in Registry.default()}
C_FAMILY = [x for x in ("c", "c-clang", "cpp", "cpp-clang") if x in DEFINED]
C_ONLY = [x for x in ("c", "c-clang") if x in DEFINED]
CPP_ONLY = [x for x in ("cpp", "cpp-clang") if x in DEFINED]

COMPILE_WALL_MS = 5_000
SMALL_COMPILE = StageLimits(cpu_ms=COMPILE_WALL_MS, wall_ms=COMPILE_WALL_MS, output_kb=64)
# Bombs need no more than this to show that the limit, not the compiler, ends them.
BOMB_COMPILE = StageLimits(cpu_ms=2_000, wall_ms=2_000, output_kb=64)
# Toolchains that need more than a few seconds for even a small program (a JVM, GHC, Nim via C, ...).
SLOW_COMPILE = StageLimits(cpu_ms=60_000, wall_ms=60_000, output_kb=64)
SLOW = {"haskell", "java", "kotlin", "scala", "nim", "rust", "go", "d", "d-ldc", "typescript", "crystal", "zig"}
SMALL_RUN = StageLimits(cpu_ms=2_000, wall_ms=4_000, memory_mb=128, output_kb=256)
# Teardown and the supervisor's polling on a loaded 2-core machine, on top of a box's wall limit.
SLACK_MS = 3_000
STOPPED = {Verdict.COMPILE_ERROR, Verdict.COMPILE_LIMIT}
ETC_CANARY = Path("/etc/stockade-ct-canary")


@dataclass(frozen=True)
class Canaries:
    root_file: Path
    root_token: bytes
    etc_file: Path
    etc_token: bytes
    env_name: str
    env_token: bytes
    shadow_lines: tuple[bytes, ...]

    @property
    def secrets(self) -> tuple[bytes, ...]:
        return (self.root_token, self.etc_token, self.env_token, *self.shadow_lines)

    def fill(self, template: str) -> str:
        return template.replace("@ROOT@", str(self.root_file)).replace("@ETC@", str(self.etc_file))


def _plant(path: Path, content: bytes) -> None:
    path.unlink(missing_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    try:
        os.write(fd, content)
    finally:
        os.close(fd)
    os.chown(path, 0, 0)


@pytest.fixture(scope="module")
def canaries() -> Iterator[Canaries]:
    rand = secrets.token_hex(6)
    # Tokens are C identifiers, so a compiler that could read them would quote them in a diagnostic.
    c = Canaries(
        root_file=Path(f"/root/stockade-ct-canary-{rand}"),
        root_token=f"CTROOTCANARY{secrets.token_hex(8)}".encode(),
        etc_file=ETC_CANARY,
        etc_token=f"CTETCCANARY{secrets.token_hex(8)}".encode(),
        env_name="STOCKADE_CT_CANARY",
        env_token=f"CTENVCANARY{secrets.token_hex(8)}".encode(),
        shadow_lines=tuple(
            line.encode() for line in Path("/etc/shadow").read_text().splitlines() if len(line.split(":")[1]) > 2
        )
        if Path("/etc/shadow").exists()
        else (),
    )
    _plant(c.root_file, c.root_token + b" " + c.root_token + b";\n")
    _plant(c.etc_file, c.etc_token + b" " + c.etc_token + b";\n")
    os.environ[c.env_name] = c.env_token.decode()
    try:
        yield c
    finally:
        c.root_file.unlink(missing_ok=True)
        c.etc_file.unlink(missing_ok=True)
        os.environ.pop(c.env_name, None)


@pytest.fixture(autouse=True)
def _invariants(sandbox: Sandbox, canaries: Canaries) -> Iterator[None]:
    yield
    # Invariant 2 after every attack: no surviving process, no box cgroup, a free slot.
    assert_nothing_left(sandbox)
    # The canaries themselves are still in place and unchanged (nothing in a box could touch them).
    assert canaries.etc_file.read_bytes().startswith(canaries.etc_token)
    assert canaries.root_file.read_bytes().startswith(canaries.root_token)


def blobs_of(result: ExecutionResult) -> list[bytes]:
    out: list[bytes] = []
    for stage in (result.compile, result.run):
        if stage is not None:
            out += [stage.stdout, stage.stderr, (stage.error or "").encode()]
            out += [f.content for f in stage.files] + [f.path.encode() for f in stage.files]
    return out


def assert_no_leak(result: ExecutionResult, canaries: Canaries) -> None:
    for blob in blobs_of(result):
        for secret in canaries.secrets:
            assert secret not in blob, f"host secret {secret[:24]!r}... leaked"
            assert secret.hex().encode() not in blob


async def attack(
    engine: Engine,
    registry: Registry,
    canaries: Canaries,
    lang: str,
    code: str | bytes,
    *,
    files: list[SourceFile] | None = None,
    compile_limits: StageLimits | None = None,
    **kw: object,
) -> ExecutionResult:
    """Run one attack program; the toolchain must exist (CI installs all), and nothing may leak."""
    tc = await registry.detect(lang)
    assert tc.available, f"{lang}: toolchain must be installed: {tc.detail}"
    if compile_limits is None:
        compile_limits = SLOW_COMPILE if lang in SLOW else SMALL_COMPILE
    if isinstance(code, str):
        code = canaries.fill(code).encode()
    source = registry.get(lang).source_file
    req = ExecutionRequest(
        language=lang,
        files=[SourceFile(source, code), *(files or [])],
        entry=source,
        compile_limits=compile_limits,
        limits=kw.pop("limits", SMALL_RUN),  # type: ignore[arg-type]
        **kw,  # type: ignore[arg-type]
    )
    t0 = time.monotonic()
    result = await engine.execute(req)
    elapsed_ms = (time.monotonic() - t0) * 1000
    assert result.status not in (Verdict.INTERNAL_ERROR,), result
    wall = compile_limits.wall_ms or 60_000
    if result.compile is not None:
        assert result.compile.wall_time_ms <= wall + SLACK_MS, result.compile
    run_wall = (req.limits.wall_ms or 10_000) if result.run is not None else 0
    assert elapsed_ms <= wall + run_wall + 2 * SLACK_MS, f"took {elapsed_ms:.0f} ms"
    assert_no_leak(result, canaries)
    return result


def diag(result: ExecutionResult) -> bytes:
    assert result.compile is not None
    return result.compile.stdout + result.compile.stderr


def stdout(result: ExecutionResult) -> bytes:
    assert result.run is not None, (result.status, diag(result)[-1500:])
    return result.run.stdout


# -- CT-01 `#include` of host files ----------------------------------------------------------------

CT01_INCLUDES = {
    "shadow": '#include "/etc/shadow"\n',
    "etc-canary": '#include "@ETC@"\n',
    "root-canary": '#include "@ROOT@"\n',
    "root-canary-angle": "#include <@ROOT@>\n",
    "proc-self-environ": '#include "/proc/self/environ"\n',
    "proc-1-environ": '#include "/proc/1/environ"\n',
    "proc-self-root": '#include "/proc/self/root@ETC@"\n',
    "dotdot-angle": "#include <../../../../../../..@ETC@>\n",
    "digraph": '%:include "@ETC@"\n',
    "trigraph": '??=include "@ETC@"\n',
    "continuation": '#inc\\\nlude "@ETC@"\n',
    "no-space": '#include"@ETC@"\n',
    "macro-path": '#define P "@ETC@"\n#include P\n',
    "stringized": "#define S(x) #x\n#define STR(x) S(x)\n#include STR(@ETC@)\n",
    "run-dir": f'#include "{ENGINE_CONFIG.run_dir}/etc/passwd"\n',
    "box-dirs": f'#include "{ENGINE_CONFIG.run_dir}/boxes/../etc/passwd"\n',
}


# The C and C++ front ends of one compiler share its preprocessor: the C ones stand for both here.
@pytest.mark.parametrize("lang", C_ONLY)
@pytest.mark.parametrize("variant", list(CT01_INCLUDES))
async def test_ct01_include_host_file(
    engine: Engine, registry: Registry, canaries: Canaries, lang: str, variant: str
) -> None:
    code = CT01_INCLUDES[variant] + "int main(void) { return 0; }\n"
    result = await attack(engine, registry, canaries, lang, code)
    # The box's own procfs is there (a compiler may read it as an empty file: size 0); the host's is not.
    allowed = {Verdict.COMPILE_ERROR, Verdict.OK} if variant.startswith("proc-") else {Verdict.COMPILE_ERROR}
    assert result.status in allowed, (result.status, diag(result)[-1500:])


@pytest.mark.parametrize("lang", C_FAMILY)
async def test_ct01_has_include_is_no_oracle(engine: Engine, registry: Registry, canaries: Canaries, lang: str) -> None:
    probe = "".join(
        f'#if __has_include("{path}")\n#warning ORACLE_{tag}_PRESENT\n#else\n#warning ORACLE_{tag}_ABSENT\n#endif\n'
        for tag, path in (
            ("ETC", "@ETC@"),
            ("ROOT", "@ROOT@"),
            ("SHADOW", "/etc/shadow"),
            ("PASSWD", "/etc/passwd"),  # the box's own synthetic one: proves the probe works
            ("OWN", "mine.inc"),
        )
    )
    code = probe + "int main(void) { return 0; }\n"
    # Own files are named .inc: a header among the sources trips clang (see test_multifile).
    result = await attack(engine, registry, canaries, lang, code, files=[SourceFile("mine.inc", b"")])
    out = diag(result)
    assert result.status is Verdict.OK, (result.status, out[-1500:])
    for tag, want in (("ETC", "ABSENT"), ("ROOT", "ABSENT"), ("SHADOW", "ABSENT"), ("PASSWD", "PRESENT")):
        assert f"ORACLE_{tag}_{want}".encode() in out, out
    assert b"ORACLE_OWN_PRESENT" in out


@pytest.mark.parametrize("lang", C_FAMILY)
async def test_ct01_control_own_file_content_is_quoted(
    engine: Engine, registry: Registry, canaries: Canaries, lang: str
) -> None:
    # The detection works: a file the box may read is quoted in the diagnostic, token and all.
    token = b"OWNTOKEN" + secrets.token_hex(6).encode()
    code = '#include "secret.inc"\nint main(void) { return 0; }\n'
    result = await attack(
        engine, registry, canaries, lang, code, files=[SourceFile("secret.inc", token + b" " + token + b";\n")]
    )
    assert result.status is Verdict.COMPILE_ERROR
    assert token in diag(result)


# -- CT-02 embedding host files into the binary ----------------------------------------------------

INCBIN = """#include <stdio.h>
__asm__(".section .rodata\\n.global ct_blob\\nct_blob:\\n.incbin \\"%s\\"\\n.byte 0\\n.text\\n");
extern const char ct_blob[];
int main(void) { fputs(ct_blob, stdout); return 0; }
"""
EMBED = """#include <stdio.h>
static const char blob[] = {
#embed "%s"
, 0};
int main(void) { fputs(blob, stdout); return 0; }
"""
CT02_TARGETS = {"etc": "@ETC@", "root": "@ROOT@", "shadow": "/etc/shadow", "environ": "/proc/self/environ"}


@pytest.mark.parametrize("lang", C_ONLY)
@pytest.mark.parametrize("target", list(CT02_TARGETS))
async def test_ct02_incbin_host_file(
    engine: Engine, registry: Registry, canaries: Canaries, lang: str, target: str
) -> None:
    result = await attack(engine, registry, canaries, lang, INCBIN % CT02_TARGETS[target])
    if target == "environ":
        # The assembler's own environment in the box (procfs says size 0, so it may embed nothing): if
        # anything, only the box's clean one.
        assert result.status is Verdict.OK, (result.status, diag(result)[-1500:])
        env = stdout(result)
        assert env == b"" or b"HOME=/box" in env
        assert canaries.env_name.encode() not in env
    else:
        assert result.status is Verdict.COMPILE_ERROR, (result.status, diag(result)[-1500:])


@pytest.mark.parametrize("lang", C_FAMILY)
async def test_ct02_control_incbin_own_file(engine: Engine, registry: Registry, canaries: Canaries, lang: str) -> None:
    token = b"OWNBLOB" + secrets.token_hex(6).encode()
    result = await attack(engine, registry, canaries, lang, INCBIN % "data.bin", files=[SourceFile("data.bin", token)])
    assert result.status is Verdict.OK and stdout(result) == token


@pytest.mark.parametrize("lang", C_ONLY)
@pytest.mark.parametrize("target", ["etc", "root", "shadow"])
async def test_ct02_c23_embed_host_file(
    engine: Engine, registry: Registry, canaries: Canaries, lang: str, target: str
) -> None:
    # gcc 12 and clang 14 know no #embed (compile_error); a newer one must not find the file either.
    result = await attack(engine, registry, canaries, lang, EMBED % CT02_TARGETS[target])
    assert result.status is Verdict.COMPILE_ERROR, (result.status, diag(result)[-1500:])


EMBEDDERS = {
    "rust": 'const S: &str = include_str!("%s");\nfn main() { print!("{}", S); }\n',
    "d": 'enum s = import("%s");\nvoid main() { import std.stdio; write(s); }\n',
    "d-ldc": 'enum s = import("%s");\nvoid main() { import std.stdio; write(s); }\n',
    "nim": 'const s = staticRead("%s")\necho s\n',
    "go": 'package main\n\nimport _ "embed"\n\n//go:embed %s\nvar s string\n\nfunc main() { print(s) }\n',
    "haskell": "{-# LANGUAGE TemplateHaskell #-}\nimport Language.Haskell.TH\nimport Language.Haskell.TH.Syntax\n"
    'main :: IO ()\nmain = putStr $(runIO (readFile "%s") >>= stringE)\n',
    "zig": 'const std = @import("std");\nconst s = @embedFile("%s");\n'
    "pub fn main() !void { try std.io.getStdOut().writeAll(s); }\n",
}


def _embedder_cases() -> list[tuple[str, str]]:
    out = []
    for lang in EMBEDDERS:
        if lang in DEFINED:
            out += [(lang, t) for t in ("etc", "root")]
    return out


@pytest.mark.parametrize(("lang", "target"), _embedder_cases())
async def test_ct02_language_embeds_host_file(
    engine: Engine, registry: Registry, canaries: Canaries, lang: str, target: str
) -> None:
    result = await attack(engine, registry, canaries, lang, EMBEDDERS[lang] % CT02_TARGETS[target])
    # CE, or the program built but carries no host secret (checked by attack()).
    assert result.status in {Verdict.COMPILE_ERROR, Verdict.OK}, (result.status, diag(result)[-1500:])


# -- CT-03 blocking or infinite include sources ----------------------------------------------------

CT03_SOURCES = [
    "/dev/zero",
    "/dev/urandom",
    "/dev/random",
    "/dev/stdin",
    "/proc/self/fd/0",
    "/dev/tty",
    "/proc/self/fd/1",
    "/proc/kmsg",
]


@pytest.mark.parametrize("lang", C_ONLY)
@pytest.mark.parametrize("path", CT03_SOURCES)
async def test_ct03_endless_include(
    engine: Engine, registry: Registry, canaries: Canaries, sandbox: Sandbox, lang: str, path: str
) -> None:
    # attack() holds the compile to its wall limit (5 s). The compiler's stdin is empty, so the stdin
    # variants include nothing and build; clang reads a character device as empty (st_size 0) and builds
    # too. What matters: it ends in time, and what it read is nothing of the host.
    result = await attack(engine, registry, canaries, lang, f'#include "{path}"\nint main(void) {{ return 0; }}\n')
    assert result.status in {*STOPPED, Verdict.OK}, (result.status, diag(result)[-1500:])
    if path in ("/dev/tty", "/proc/kmsg", "/proc/self/fd/1"):
        assert result.status in STOPPED  # absent, unreadable or a pipe that never ends
    assert result.compile is not None and len(result.compile.stderr) <= 64 * 1024
    await sandbox.recycled()  # the box is torn down right after its result is handed back
    assert sandbox.slots_in_use == 0  # the worker is freed


# -- CT-04 self-inclusion --------------------------------------------------------------------------

SELF_INCLUDE = {
    "twice": "#include __FILE__\n#include __FILE__\nint main(void) { return 0; }\n",
    "four-times": "#include __FILE__\n#include __FILE__\n#include __FILE__\n#include __FILE__\n",
    "by-name": '#include "main.c"\n#include "main.c"\n#include "main.c"\n',
}


# C and C++ share each compiler's preprocessor: the C front ends stand for both.
@pytest.mark.parametrize("lang", C_ONLY)
@pytest.mark.parametrize("variant", list(SELF_INCLUDE))
async def test_ct04_self_inclusion(
    engine: Engine, registry: Registry, canaries: Canaries, lang: str, variant: str
) -> None:
    result = await attack(engine, registry, canaries, lang, SELF_INCLUDE[variant], compile_limits=BOMB_COMPILE)
    assert result.status in STOPPED, (result.status, diag(result)[-1500:])


# -- CT-05 macro expansion bombs -------------------------------------------------------------------


def macro_bomb(levels: int, copies: int, leaf: str, use: str) -> str:
    lines = [f"#define M0 {leaf}"]
    lines += [f"#define M{i} " + " ".join([f"M{i - 1}"] * copies) for i in range(1, levels + 1)]
    return "\n".join(lines) + "\n" + use.replace("TOP", f"M{levels}") + "\n"


CT05_BOMBS = {
    # 4^9 statements that each earn an error: the diagnostic output explodes.
    "output": macro_bomb(9, 4, "1 = 1;", "int main(void) { TOP return 0; }"),
    # 47^10 tokens: time and memory explode before any output.
    "time": macro_bomb(10, 47, "+1", "int x = 0 TOP;\nint main(void) { return x; }"),
    # 8^12 tokens stringized into one literal.
    "stringize": "#define S(x) #x\n#define STR(x) S(x)\n"
    + macro_bomb(12, 8, "x", "const char *s = STR(TOP);\nint main(void) { return s[0]; }"),
}


@pytest.mark.parametrize("lang", C_ONLY)
@pytest.mark.parametrize("bomb", list(CT05_BOMBS))
async def test_ct05_macro_bomb(engine: Engine, registry: Registry, canaries: Canaries, lang: str, bomb: str) -> None:
    # The output bomb gets the 5 s limit: then the output cap, not the clock, is what ends it.
    limits = SMALL_COMPILE if bomb == "output" else BOMB_COMPILE
    result = await attack(engine, registry, canaries, lang, CT05_BOMBS[bomb], compile_limits=limits)
    assert result.status in STOPPED, (result.status, diag(result)[-1500:])
    assert result.compile is not None
    assert len(result.compile.stdout) <= 64 * 1024 and len(result.compile.stderr) <= 64 * 1024
    if lang == "c" and bomb == "output":
        # GCC reports every error: the output cap, not the compiler, ends it.
        assert result.status is Verdict.COMPILE_LIMIT and result.compile.stderr_truncated


# -- CT-06 template / constexpr / type-level recursion and error cascades ---------------------------

CT06_CPP = {
    "template-depth": "template<int N> struct F { static const int v = F<N + 1>::v; };\n"
    "int x = F<0>::v;\nint main() { return x; }\n",
    "exponential-type": "#include <utility>\n"
    "template<class T> struct W { typedef typename W<std::pair<T, T>>::type type; };\n"
    "W<int>::type x;\nint main() { return 0; }\n",
    "constexpr-loop": "constexpr long f() { long s = 0; for (long i = 0; i < (1L << 60); i++) s += i; return s; }\n"
    "constexpr long x = f();\nint main() { return (int)x; }\n",
    "error-cascade": "#include <iostream>\n#include <vector>\n#include <map>\n"
    + macro_bomb(6, 4, "std::cout << std::map<int, std::vector<int>>{};", "int main() { TOP }"),
    "malformed-nest": "template<class T> struct A { A<A<T>> a; };\nA<int> root;\nint main() { return 0; }\n",
}


@pytest.mark.parametrize("lang", CPP_ONLY)
@pytest.mark.parametrize("variant", list(CT06_CPP))
async def test_ct06_cpp_recursion(
    engine: Engine, registry: Registry, canaries: Canaries, lang: str, variant: str
) -> None:
    result = await attack(engine, registry, canaries, lang, CT06_CPP[variant], compile_limits=BOMB_COMPILE)
    assert result.status in STOPPED, (result.status, diag(result)[-1500:])
    assert result.compile is not None and len(result.compile.stderr) <= 64 * 1024


CT06_OTHER = {
    "rust": "const X: u64 = { let mut i = 0u64; while i < u64::MAX { i += 1; } i };\n"
    'fn main() { println!("{}", X); }\n',
    "haskell": "{-# LANGUAGE TypeFamilies, UndecidableInstances #-}\n"
    "type family Loop a where\n  Loop a = Loop [a]\n"
    "x :: Loop Int\nx = undefined\nmain :: IO ()\nmain = x `seq` return ()\n",
    "typescript": "type Loop<T> = T extends any ? Loop<[T, T]> : never;\n"
    "const x: Loop<1> = null as any;\nconsole.log(x);\n",
    "d": "template T(int n) { enum T = T!(n + 1); }\nenum x = T!0;\nvoid main() {}\n",
    "d-ldc": "template T(int n) { enum T = T!(n + 1); }\nenum x = T!0;\nvoid main() {}\n",
    "nim": "proc f(): int =\n  while true: discard\nconst x = f()\necho x\n",
}


@pytest.mark.parametrize("lang", [x for x in CT06_OTHER if x in DEFINED])
async def test_ct06_other_languages(engine: Engine, registry: Registry, canaries: Canaries, lang: str) -> None:
    # Small limits for all: the point is that the compile ends within them.
    limits = StageLimits(cpu_ms=20_000, wall_ms=20_000, output_kb=64)
    result = await attack(engine, registry, canaries, lang, CT06_OTHER[lang], compile_limits=limits)
    assert result.status in STOPPED, (result.status, diag(result)[-1500:])


# -- CT-07 giant object files ----------------------------------------------------------------------

CT07_PROGRAMS = {
    "1gib-data": "char a[1 << 30] = {1};\nint main(void) { return a[12345]; }\n",
    "16gib-data": "char a[1L << 34] = {1};\nint main(void) { return a[12345]; }\n",
    "1gib-main": "const char main[1 << 30] = {1};\n",
    "many-arrays": "".join(f"char a{i}[1 << 26] = {{{i + 1}}};\n" for i in range(16))
    + "int main(void) { return a0[1]; }\n",
}


@pytest.mark.parametrize("lang", C_ONLY)
@pytest.mark.parametrize("variant", list(CT07_PROGRAMS))
async def test_ct07_giant_object(
    engine: Engine, registry: Registry, canaries: Canaries, lang: str, variant: str
) -> None:
    before = shutil.disk_usage("/").free
    result = await attack(engine, registry, canaries, lang, CT07_PROGRAMS[variant], compile_limits=BOMB_COMPILE)
    after = shutil.disk_usage("/").free
    if result.status is Verdict.OK:
        # clang 14 quietly builds `char a[1L << 34]` as a small binary (the size wraps): harmless here.
        assert variant == "16gib-data" and lang == "c-clang", (result.status, diag(result)[-1500:])
        assert result.compile is not None and sum(len(f.content) for f in result.compile.files) < 1 << 20
    else:
        assert result.status in STOPPED, (result.status, diag(result)[-1500:])
    # The objects grew on the box's tmpfs (memory), never on the host disk. Other work on this machine
    # may write a little meanwhile; a leak of the attack would be hundreds of MB at least.
    assert before - after < 32 * 1024 * 1024, f"host disk shrank by {(before - after) >> 20} MB"


# -- CT-08 compile-time code execution -------------------------------------------------------------


def _marker_paths() -> list[Path]:
    rand = secrets.token_hex(6)
    return [Path(f"/tmp/stockade-ct08-{rand}"), Path(f"/root/stockade-ct08-{rand}"), Path(f"/etc/stockade-ct08-{rand}")]


def _shell_effects(markers: list[Path], canaries: Canaries) -> str:
    """Shell commands the compile-time code runs: identity, host paths to write, secrets to read, a daemon.
    No quote or backslash in it, so it drops into any language's string literal as it is."""
    writes = "; ".join(f"echo pwned > {m} 2>/dev/null" for m in markers)
    cmd = (
        f"id; {writes}; cat {canaries.etc_file} {canaries.root_file} /etc/shadow /proc/1/environ 2>/dev/null; "
        f"env; (setsid sleep 300 </dev/null >/dev/null 2>&1 3>&- 4>&- 5>&- 6>&- 7>&- 8>&- 9>&- &); echo CT08_DONE"
    )
    assert not set(cmd) & set("'\"\\")
    return cmd


def _ct08_check(result: ExecutionResult, markers: list[Path], ran: bool) -> None:
    for m in markers:
        assert not m.exists(), f"compile-time code wrote {m} on the host"
    if ran:
        text = b"".join(blobs_of(result))
        assert b"uid=1000" in text and b"uid=0" not in text, text[-2000:]


@pytest.mark.skipif("nim" not in DEFINED, reason="nim is not defined in the registry")
async def test_ct08_nim_static_exec(engine: Engine, registry: Registry, canaries: Canaries) -> None:
    markers = _marker_paths()
    code = f'const o = staticExec("""sh -c \'{_shell_effects(markers, canaries)}\'""")\necho o\n'
    result = await attack(engine, registry, canaries, "nim", code)
    assert result.status is Verdict.OK, (result.status, diag(result)[-2000:])
    _ct08_check(result, markers, ran=True)
    assert b"CT08_DONE" in stdout(result) and b"uid=1000" in stdout(result)


@pytest.mark.skipif("haskell" not in DEFINED, reason="haskell is not defined in the registry")
async def test_ct08_template_haskell_run_io(engine: Engine, registry: Registry, canaries: Canaries) -> None:
    markers = _marker_paths()
    cmd = _shell_effects(markers, canaries)
    code = (
        "{-# LANGUAGE TemplateHaskell #-}\nimport Language.Haskell.TH\nimport System.Process (readProcess)\n"
        f'main :: IO ()\nmain = putStr $(runIO (readProcess "sh" ["-c", "{cmd}"] "") >>= stringE)\n'
    )
    result = await attack(engine, registry, canaries, "haskell", code)
    assert result.status is Verdict.OK, (result.status, diag(result)[-2000:])
    _ct08_check(result, markers, ran=True)
    assert b"CT08_DONE" in stdout(result)


PROCESSOR = """import javax.annotation.processing.*;
import javax.lang.model.SourceVersion;
import javax.lang.model.element.TypeElement;
import javax.tools.Diagnostic;
import java.util.Set;

@SupportedAnnotationTypes("*")
public class CtProcessor extends AbstractProcessor {
    private boolean done;
    @Override public SourceVersion getSupportedSourceVersion() { return SourceVersion.latestSupported(); }
    @Override public boolean process(Set<? extends TypeElement> annotations, RoundEnvironment env) {
        if (done) return false;
        done = true;
        try {
            Process p = new ProcessBuilder("sh", "-c", CMD).redirectErrorStream(true).start();
            String out = new String(p.getInputStream().readAllBytes());
            p.waitFor();
            processingEnv.getMessager().printMessage(Diagnostic.Kind.NOTE, "CT08_PROCESSOR_RAN " + out);
        } catch (Exception e) {
            processingEnv.getMessager().printMessage(Diagnostic.Kind.NOTE, "CT08_PROCESSOR_FAILED " + e);
        }
        return false;
    }
    static final String CMD = "@CMD@";
}
"""


@pytest.mark.skipif("java" not in DEFINED, reason="java is not defined in the registry")
async def test_ct08_java_annotation_processor_on_classpath(
    engine: Engine, registry: Registry, canaries: Canaries, tmp_path: Path
) -> None:
    # A processor found on the compile classpath runs inside javac unless -proc:none is given (< JDK 23).
    markers = _marker_paths()
    cmd = _shell_effects(markers, canaries)
    (tmp_path / "CtProcessor.java").write_text(PROCESSOR.replace("@CMD@", cmd))
    javac = shutil.which("javac")
    assert javac is not None, "javac must be installed"
    subprocess.run([javac, "-d", str(tmp_path), str(tmp_path / "CtProcessor.java")], check=True, timeout=120)
    files = [
        SourceFile("CtProcessor.class", (tmp_path / "CtProcessor.class").read_bytes()),
        SourceFile("META-INF/services/javax.annotation.processing.Processor", b"CtProcessor\n"),
    ]
    code = 'public class Main { public static void main(String[] a) { System.out.println("main ran"); } }\n'
    result = await attack(engine, registry, canaries, "java", code, files=files)
    assert result.status in {Verdict.OK, Verdict.COMPILE_ERROR}, (result.status, diag(result)[-2000:])
    ran = b"CT08_PROCESSOR_RAN" in diag(result)
    _ct08_check(result, markers, ran=ran)


# -- CT-09 flag and argument injection -------------------------------------------------------------

EVIL_ARGS = [
    "plain",
    "two words",
    "line1\nline2",
    "; id",
    "$(id)",
    "`id`",
    "| cat /etc/passwd",
    "&& touch /tmp/x",
    "-fplugin=/tmp/evil.so",
    "--specs=/tmp/evil.specs",
    "-wrapper",
    "@/etc/passwd",
    "-o",
    "/abs/path",
    "'\"",
    "*",
    "~",
    "$HOME",
    "\\",
    "",
    "\t",
    "é✓",
    "--",
    "-c",
]
EXPECTED_ARGV = b"".join(a.encode() + b"\0" for a in EVIL_ARGS)

ARGV_PRINTERS = {
    "c": "#include <stdio.h>\n#include <string.h>\nint main(int argc, char **argv) {\n"
    "  for (int i = 1; i < argc; i++) fwrite(argv[i], 1, strlen(argv[i]) + 1, stdout);\n  return 0;\n}\n",
    "cpp": "#include <cstdio>\n#include <cstring>\nint main(int argc, char **argv) {\n"
    "  for (int i = 1; i < argc; i++) std::fwrite(argv[i], 1, std::strlen(argv[i]) + 1, stdout);\n}\n",
    "python": "import os, sys\nsys.stdout.buffer.write(b''.join(os.fsencode(a) + b'\\0' for a in sys.argv[1:]))\n",
    "bash": "printf '%s\\0' \"$@\"\n",
    "perl": 'print map { "$_\\0" } @ARGV;\n',
    "ruby": 'ARGV.each { |a| $stdout.write(a, "\\0") }\n',
    "javascript": "process.stdout.write(process.argv.slice(2).map((a) => a + '\\0').join(''));\n",
    "lua": 'for i = 1, #arg do io.write(arg[i], "\\0") end\n',
}


@pytest.mark.parametrize("lang", [x for x in ARGV_PRINTERS if x in DEFINED])
async def test_ct09_args_reach_argv_verbatim(engine: Engine, registry: Registry, canaries: Canaries, lang: str) -> None:
    result = await attack(engine, registry, canaries, lang, ARGV_PRINTERS[lang], args=EVIL_ARGS)
    assert result.status is Verdict.OK, (result.status, result.final)
    assert stdout(result) == EXPECTED_ARGV


INERT_C = (
    '#include <stdio.h>\nint main(void) {\n#ifdef INJECTED\n  puts("INJECTED");\n#else\n  puts("inert");\n#endif\n}\n'
)


@pytest.mark.parametrize("lang", C_FAMILY)
async def test_ct09_args_never_reach_the_compiler(
    engine: Engine, registry: Registry, canaries: Canaries, lang: str
) -> None:
    args = ["-DINJECTED", "-fplugin=/nonexistent.so", "@/etc/passwd", "-o", "/box/main.c", "--specs=/dev/null"]
    result = await attack(engine, registry, canaries, lang, INERT_C, args=args)
    assert result.status is Verdict.OK and stdout(result) == b"inert\n"


CT09_FILE_NAMES = {
    "define": "-DINJECTED=.c",
    "plugin": "-fplugin=./none.c",
    "output": "-ohijack.c",
    "specs": "--specs=evil.c",
    "response-file": "@/usr/include/stdio.h",
}


def _file_name_cases() -> list[tuple[str, str]]:
    # A response file must exist in the box with one of the language's extensions: C headers do.
    # The C++ drivers parse options as the C ones do: one variant each is enough there.
    return [(lang, v) for lang in C_FAMILY for v in CT09_FILE_NAMES if lang in C_ONLY or v == "define"]


@pytest.mark.parametrize(("lang", "variant"), _file_name_cases())
async def test_ct09_file_names_are_not_flags(
    engine: Engine, registry: Registry, canaries: Canaries, lang: str, variant: str
) -> None:
    name = CT09_FILE_NAMES[variant]
    if lang.startswith("cpp"):
        name = name.replace(".c", ".cpp")
    try:
        result = await attack(engine, registry, canaries, lang, INERT_C, files=[SourceFile(name, b"")])
    except InvalidRequest:
        return  # refused: fine
    # Accepted: then the name must be a plain file to the compiler, never an option.
    assert result.status is Verdict.OK, (result.status, diag(result)[-1500:])
    assert stdout(result) == b"inert\n"


@pytest.mark.skipif("python" not in DEFINED, reason="python is not defined")
async def test_ct09_entry_name_is_not_an_interpreter_flag(
    engine: Engine, registry: Registry, canaries: Canaries
) -> None:
    req = ExecutionRequest(
        language="python",
        files=[SourceFile("-c", b"print('inert')\n")],
        entry="-c",
        args=["print('INJECTED')"],
        limits=SMALL_RUN,
    )
    try:
        result = await engine.execute(req)
    except InvalidRequest:
        return
    assert_no_leak(result, canaries)
    assert result.status is Verdict.OK and stdout(result) == b"inert\n", result.run


# -- CT-10 raw syscalls get the same denial as libc ------------------------------------------------

RAW_SYSCALLS = r"""#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <sys/mount.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <unistd.h>

static long raw(long nr, long a, long b, long c, long d, long e) {
    long ret;
    register long r10 __asm__("r10") = d;
    register long r8 __asm__("r8") = e;
    __asm__ volatile("syscall" : "=a"(ret) : "a"(nr), "D"(a), "S"(b), "d"(c), "r"(r10), "r"(r8)
                     : "rcx", "r11", "memory");
    return ret;
}

static int err(long r) { return r < 0 ? errno : 0; }
static void show(const char *name, int libc_errno, long raw_ret) {
    printf("%s %d %ld\n", name, libc_errno, raw_ret < 0 ? -raw_ret : 0);
}

int main(void) {
    long r;
    r = unshare(CLONE_NEWUSER); show("unshare-user", err(r), raw(SYS_unshare, CLONE_NEWUSER, 0, 0, 0, 0));
    r = unshare(CLONE_NEWNS); show("unshare-ns", err(r), raw(SYS_unshare, CLONE_NEWNS, 0, 0, 0, 0));
    r = unshare(CLONE_NEWNET); show("unshare-net", err(r), raw(SYS_unshare, CLONE_NEWNET, 0, 0, 0, 0));
    r = mount("none", "/tmp", "tmpfs", 0, 0);
    show("mount", err(r), raw(SYS_mount, (long)"none", (long)"/tmp", (long)"tmpfs", 0, 0));
    r = umount2("/box", MNT_DETACH); show("umount2", err(r), raw(SYS_umount2, (long)"/box", MNT_DETACH, 0, 0, 0));
    r = chroot("/tmp"); show("chroot", err(r), raw(SYS_chroot, (long)"/tmp", 0, 0, 0, 0));
    r = setns(0, 0); show("setns", err(r), raw(SYS_setns, 0, 0, 0, 0, 0));
    r = ptrace(PTRACE_TRACEME, 0, 0, 0); show("ptrace", err(r), raw(SYS_ptrace, PTRACE_TRACEME, 0, 0, 0, 0));
    r = sethostname("x", 1); show("sethostname", err(r), raw(SYS_sethostname, (long)"x", 1, 0, 0, 0));
    r = syscall(SYS_bpf, 0, 0, 0); show("bpf", err(r), raw(SYS_bpf, 0, 0, 0, 0, 0));
    r = syscall(SYS_io_uring_setup, 1, 0); show("io_uring_setup", err(r), raw(SYS_io_uring_setup, 1, 0, 0, 0, 0));
    r = syscall(SYS_keyctl, 0, 0); show("keyctl", err(r), raw(SYS_keyctl, 0, 0, 0, 0, 0));
    /* clone with a namespace flag: if it ever succeeded the child must not go on printing. */
    long c = raw(SYS_clone, CLONE_NEWUSER | SIGCHLD, 0, 0, 0, 0);
    if (c == 0) raw(SYS_exit_group, 0, 0, 0, 0, 0);
    r = syscall(SYS_clone, CLONE_NEWUSER | SIGCHLD, 0, 0, 0, 0);
    if (r == 0) raw(SYS_exit_group, 0, 0, 0, 0, 0);
    show("clone-newuser", err(r), c);
    fflush(stdout);
    return 0;
}
"""
EXPECTED_DENIAL = {
    "unshare-user": errno.EPERM,
    "unshare-ns": errno.EPERM,
    "unshare-net": errno.EPERM,
    "mount": errno.EPERM,
    "umount2": errno.EPERM,
    "chroot": errno.EPERM,
    "setns": errno.EPERM,
    "ptrace": errno.EPERM,
    "sethostname": errno.EPERM,
    "bpf": errno.ENOSYS,
    "io_uring_setup": errno.ENOSYS,
    "keyctl": errno.ENOSYS,
    "clone-newuser": errno.EPERM,
}


@pytest.mark.parametrize("lang", C_ONLY)
async def test_ct10_raw_syscall_same_denial_as_libc(
    engine: Engine, registry: Registry, canaries: Canaries, lang: str
) -> None:
    result = await attack(engine, registry, canaries, lang, RAW_SYSCALLS)
    assert result.status is Verdict.OK, (result.status, result.final)
    got = {}
    for line in stdout(result).decode().splitlines():
        name, libc_errno, raw_errno = line.split()
        got[name] = (int(libc_errno), int(raw_errno))
    assert got == {name: (e, e) for name, e in EXPECTED_DENIAL.items()}


KILLED_CALL = r"""#include <stdio.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <linux/reboot.h>
#include <sys/reboot.h>
int main(void) {
    long ret;
    puts("before"); fflush(stdout);
#if defined(VIA_LIBC)
    ret = reboot(RB_DISABLE_CAD);
#elif defined(VIA_INT80)
    /* i386 ABI from a 64-bit process: 310 is unshare there, 0x10000000 CLONE_NEWUSER. */
    __asm__ volatile("int $0x80" : "=a"(ret) : "a"(310L), "b"(0x10000000L) : "memory");
#elif defined(VIA_X32)
    __asm__ volatile("syscall" : "=a"(ret) : "a"(0x40000000L | 272L), "D"(0x10000000L) : "rcx", "r11", "memory");
#else
    __asm__ volatile("syscall" : "=a"(ret) : "a"((long)SYS_reboot), "D"((long)LINUX_REBOOT_MAGIC1),
                     "S"((long)LINUX_REBOOT_MAGIC2), "d"((long)LINUX_REBOOT_CMD_CAD_OFF) : "rcx", "r11", "memory");
#endif
    printf("survived %ld\n", ret);
    return 0;
}
"""


@pytest.mark.parametrize("lang", C_ONLY)
async def test_ct10_killed_call_raw_and_libc_alike(
    engine: Engine, registry: Registry, canaries: Canaries, lang: str
) -> None:
    verdicts = {}
    for variant in ("VIA_LIBC", "VIA_RAW"):
        result = await attack(engine, registry, canaries, lang, f"#define {variant}\n" + KILLED_CALL)
        verdicts[variant] = result.status
        assert stdout(result) == b"before\n"
    assert verdicts == {"VIA_LIBC": Verdict.SYSCALL_BLOCKED, "VIA_RAW": Verdict.SYSCALL_BLOCKED}


@pytest.mark.parametrize("lang", C_ONLY)
@pytest.mark.parametrize("variant", ["VIA_INT80", "VIA_X32"])
async def test_ct10_foreign_syscall_abi_is_no_way_around(
    engine: Engine, registry: Registry, canaries: Canaries, lang: str, variant: str
) -> None:
    result = await attack(engine, registry, canaries, lang, f"#define {variant}\n" + KILLED_CALL)
    if result.status is Verdict.SYSCALL_BLOCKED:
        assert stdout(result) == b"before\n"
        return
    # Not killed: then the call must have failed (x32 disabled in the kernel gives ENOSYS).
    assert result.status is Verdict.OK, (result.status, result.final)
    ret = int(stdout(result).split()[-1])
    assert ret in (-errno.EPERM, -errno.ENOSYS), ret
