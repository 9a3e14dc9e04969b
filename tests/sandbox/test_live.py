"""Live stdio of a run (LiveIO): output reaches the caller while the program runs, stdin is fed while
it runs, and a caller that stalls cannot make the supervisor buffer without bound or the run outlive
its limits. Each test would deadlock into a wall timeout if output or input were not live."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from stockade.sandbox import BoxSpec, Limits, LiveIO, Sandbox, SandboxConfig, Status, TimeoutKind

PY = "/usr/bin/python3"
CONFIG = SandboxConfig(run_dir=Path("/run/stockade-t-live"), slots=2, uid_base=62750, cgroup_name="stockade-t-live")
LIMITS = Limits(cpu_ms=2000, wall_ms=10_000, memory_mb=64, output_kb=64)


@pytest.fixture(scope="module")
def sandbox() -> Iterator[Sandbox]:
    sb = Sandbox(CONFIG)
    sb.start()
    yield sb
    sb.close()


def py(code: str, limits: Limits = LIMITS) -> BoxSpec:
    return BoxSpec(argv=[PY, "-I", "-c", code], limits=limits)


class Received:
    """Output chunks as they arrive, and a way to wait for a given text."""

    def __init__(self) -> None:
        self.chunks: list[tuple[str, bytes]] = []
        self.changed = asyncio.Event()

    async def on_output(self, stream: str, chunk: bytes) -> None:
        self.chunks.append((stream, chunk))
        self.changed.set()

    def text(self, stream: str = "stdout") -> bytes:
        return b"".join(c for s, c in self.chunks if s == stream)

    async def until(self, wanted: bytes, stream: str = "stdout") -> None:
        while wanted not in self.text(stream):
            self.changed.clear()
            await self.changed.wait()


async def test_output_arrives_while_the_program_waits_for_input_it_then_gets(sandbox: Sandbox) -> None:
    got = Received()
    live = LiveIO(got.on_output)
    code = "import sys\nprint('first', flush=True)\nline = sys.stdin.readline()\nprint('got', line.strip())"
    run = asyncio.create_task(sandbox.run(py(code), live))
    await got.until(b"first\n")  # seen before the program can end: it waits for the line below
    assert not run.done()
    assert await live.send(b"go\n")
    r = await run
    assert (r.status, r.stdout) == (Status.OK, b"first\ngot go\n"), r
    assert got.text() == r.stdout


async def test_an_echo_answers_line_by_line_and_ends_at_end_of_input(sandbox: Sandbox) -> None:
    got = Received()
    live = LiveIO(got.on_output)
    run = asyncio.create_task(sandbox.run(BoxSpec(argv=["/bin/cat"], stdin=b"zero\n", limits=LIMITS), live))
    await got.until(b"zero\n")  # spec.stdin goes first
    for line in (b"one\n", b"two\n", b"three\n"):
        assert await live.send(line)
        await got.until(line)
    await live.close()
    r = await run
    assert (r.status, r.stdout) == (Status.OK, b"zero\none\ntwo\nthree\n"), r
    assert await live.send(b"late\n") is False  # input is over: nothing waits for ever


async def test_a_program_that_stops_reading_ends_the_input_not_the_run(sandbox: Sandbox) -> None:
    got = Received()
    live = LiveIO(got.on_output, stdin_chunks=2)
    run = asyncio.create_task(sandbox.run(BoxSpec(argv=["/usr/bin/head", "-c", "3"], limits=LIMITS), live))
    sent = 0
    while await live.send(b"x" * 65536):  # more than the pipe holds: the feed ends at EPIPE
        sent += 1
    r = await run
    assert (r.status, r.stdout) == (Status.OK, b"xxx"), r
    assert sent >= 1


async def test_a_stalled_consumer_holds_the_program_which_still_ends_at_its_wall_limit(sandbox: Sandbox) -> None:
    never = asyncio.Event()
    seen: list[int] = []

    async def stall(stream: str, chunk: bytes) -> None:
        seen.append(len(chunk))
        await never.wait()  # a client that stopped reading

    flood = "import sys\nwhile True:\n    sys.stdout.write('y' * 65536)"
    r = await sandbox.run(py(flood, LIMITS.with_overrides(wall_ms=1500, output_kb=4096)), LiveIO(stall))
    assert r.status is Status.TIMEOUT and r.timeout_kind is TimeoutKind.WALL, r
    assert len(seen) == 1  # one chunk was handed over; the program then blocked on a full pipe
    assert len(r.stdout) <= 65536 and not r.stdout_truncated, r


async def test_abort_ends_the_input_at_once_for_a_program_waiting_on_it(sandbox: Sandbox) -> None:
    got = Received()
    live = LiveIO(got.on_output)
    run = asyncio.create_task(sandbox.run(BoxSpec(argv=["/bin/cat"], limits=LIMITS), live))
    assert await live.send(b"one\n")
    await got.until(b"one\n")
    live.abort()  # the sender is gone: cat, blocked in read(), gets EOF now, not at its wall limit
    r = await run
    assert (r.status, r.stdout) == (Status.OK, b"one\n"), r
    assert await live.send(b"late\n") is False
