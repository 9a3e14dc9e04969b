"""Files out of a run box (engine/outputs.py): `collect` patterns and caps, and /box as a workspace."""

from __future__ import annotations

import pytest

from stockade.engine import Engine, ExecutionRequest, InvalidRequest, SourceFile, StageLimits, Verdict
from stockade.engine import outputs as o
from stockade.sandbox import InputFile, OutputFile

from .conftest import assert_nothing_left


@pytest.mark.parametrize(
    ("pattern", "path", "hit"),
    [
        ("*.png", "plot.png", True),
        ("*.png", "out/plot.png", False),  # `*` never crosses a `/`
        ("**/*.png", "out/plot.png", True),
        ("**/*.png", "plot.png", True),  # `**` is zero parts too
        ("out/**", "out/a/b/c.txt", True),
        ("out/**", "outside.txt", False),
        ("data_?.csv", "data_1.csv", True),
        ("[ab].txt", "c.txt", False),
        ("**", "any/thing", True),
    ],
)
def test_patterns_match_part_by_part(pattern: str, path: str, hit: bool) -> None:
    assert o.matches(pattern, path) is hit


@pytest.mark.parametrize("bad", ["", "/etc/*", "../*", "a//b", "./x", "a\\b", "x\n", "p" * 257])
def test_bad_patterns_are_refused(bad: str) -> None:
    with pytest.raises(o.BadPattern):
        o.check_patterns([bad])
    with pytest.raises(o.BadPattern):
        o.check_patterns(["*"] * (o.MAX_PATTERNS + 1))


def test_caps_list_what_they_leave_out() -> None:
    left = [OutputFile(f"f{i}.txt", b"x" * 10, False) for i in range(5)]
    files, skipped = o.collect(left, ["link.txt", "fifo.txt"], ["*.txt"], max_files=2, max_bytes=15)
    assert [f.path for f in files] == ["f0.txt"]
    assert {(s.path, s.reason) for s in skipped} == {
        ("f1.txt", "size_cap"), ("f2.txt", "size_cap"), ("f3.txt", "size_cap"), ("f4.txt", "size_cap"),
        ("fifo.txt", "not_regular"), ("link.txt", "not_regular"),
    }  # fmt: skip
    files, skipped = o.collect(left, [], ["*"], max_files=2, max_bytes=1000)
    assert [f.path for f in files] == ["f0.txt", "f1.txt"] and [s.reason for s in skipped] == ["count_cap"] * 3


def test_own_files_shadow_workspace_files_and_come_back_unchanged() -> None:
    ws = [
        InputFile("main.py", b"old"),
        InputFile("a", b"file a"),
        InputFile("lib/x.py", b"x"),
        InputFile("d.txt", b"d"),
    ]
    copied, shadowed = o.seed(ws, ["main.py", "a/b.py", "lib"])
    assert [f.path for f in copied] == ["d.txt"]
    assert [f.path for f in shadowed] == ["main.py", "a", "lib/x.py"]
    # After the run: the program's own files unchanged are not output; `a` is now a directory of the run.
    box = [
        OutputFile("main.py", b"new code", False),
        OutputFile("a/b.py", b"src", False),
        OutputFile("a/c", b"c", False),
    ]
    left = o.left_by_run(box, {"main.py": b"new code", "a/b.py": b"src"})
    assert [f.path for f in left] == ["a/c"]
    after = o.workspace_after(left, shadowed)
    assert [(f.path, f.content) for f in after] == [("a/c", b"c"), ("lib/x.py", b"x"), ("main.py", b"old")]


async def test_collect_returns_matching_files_only(engine: Engine) -> None:
    code = (
        "import os\n"
        "os.makedirs('out/deep', exist_ok=True)\n"
        "open('plot.png','wb').write(b'\\x89PNG fake')\n"
        "open('out/deep/r.csv','w').write('a,b\\n')\n"
        "open('notes.txt','w').write('not asked for')\n"
        "os.symlink('/etc/passwd', 'link.png')\n"
        "os.mkfifo('pipe.png')\n"
    )
    req = ExecutionRequest.from_code("python", code, collect=("*.png", "out/**"))
    result = await engine.execute(req)
    assert result.status is Verdict.OK, result.run
    assert result.outputs is not None and result.outputs.box is None
    got = {f.path: f.content for f in result.outputs.files}
    assert got == {"plot.png": b"\x89PNG fake", "out/deep/r.csv": b"a,b\n"}
    assert {(s.path, s.reason) for s in result.outputs.skipped} == {
        ("link.png", "not_regular"),
        ("pipe.png", "not_regular"),
    }
    assert_nothing_left(engine.sandbox)


async def test_a_compiled_program_is_not_its_own_output(engine: Engine) -> None:
    code = '#include <stdio.h>\nint main(void){FILE*f=fopen("r.txt","w");fputs("hi",f);fclose(f);return 0;}\n'
    result = await engine.execute(ExecutionRequest.from_code("c", code, collect=("**",)))
    assert result.status is Verdict.OK, result.run
    assert result.outputs is not None
    assert [(f.path, f.content) for f in result.outputs.files] == [("r.txt", b"hi")]


async def test_workspace_files_in_and_everything_left_back(engine: Engine) -> None:
    code = (
        "import os\n"
        "n = int(open('count.txt').read())\n"
        "open('count.txt','w').write(str(n + 1))\n"
        "os.remove('gone.txt')\n"
        "os.makedirs('sub', exist_ok=True); open('sub/new.txt','w').write('new')\n"
    )
    ws = (InputFile("count.txt", b"41"), InputFile("gone.txt", b"bye"), InputFile("main.py", b"shadowed"))
    result = await engine.execute(ExecutionRequest(language="python", files=[SourceFile("main.py", code.encode())],
                                                   box_files=ws))  # fmt: skip
    assert result.status is Verdict.OK, result.run
    assert result.outputs is not None and result.outputs.box is not None
    after = {f.path: f.content for f in result.outputs.box}
    assert after == {"count.txt": b"42", "sub/new.txt": b"new", "main.py": b"shadowed"}


async def test_a_file_grown_by_a_leftover_process_is_read_whole_once_the_box_is_dead(engine: Engine) -> None:
    # A detached child keeps appending after main exits; the read-out happens once every box process
    # is dead, so the file read is complete and consistent (a whole number of lines).
    code = (
        "import os, sys\n"
        "if os.fork() == 0:\n"
        "    os.setsid()\n"
        "    with open('grow.txt', 'a', buffering=1) as f:\n"
        "        while True: f.write('0123456789\\n')\n"
        "while os.path.getsize('grow.txt') < 100000 if os.path.exists('grow.txt') else True: pass\n"
    )
    small = StageLimits(file_size_kb=4096)  # under the collect cap, however long the child writes
    result = await engine.execute(ExecutionRequest.from_code("python", code, collect=("grow.txt",), limits=small))
    assert result.status is Verdict.OK, result.run
    assert result.outputs is not None
    (grown,) = result.outputs.files
    assert len(grown.content) >= 100000 and grown.content.count(b"\n") * 11 >= len(grown.content) - 10
    assert_nothing_left(engine.sandbox)


async def test_bad_collect_pattern_is_an_invalid_request(engine: Engine) -> None:
    with pytest.raises(InvalidRequest):
        await engine.prepare(ExecutionRequest.from_code("python", "1", collect=("../etc/*",)))
