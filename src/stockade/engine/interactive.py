"""Interactive tests: the submission and an interactor program, each in a box of its own, talking.

Neither box sees the other: the judge relays each side's stdout to the other's stdin through two
sandbox LiveIO objects, chunk by chunk as it is written, with back-pressure both ways (a side that
does not read holds the other's writes, as a pipe would). Each side keeps its own limits and its own
accounting (CPU, memory, output). When one side's box ends, the other's stdin is closed once it has
read what was relayed: it reads EOF.

A deadlock (both sides waiting to read) uses no CPU, so it ends at a wall limit. The interactor's wall
limit is raised above the submission's (Judge: INTERACTOR_WALL_GRACE_MS), so the submission's ends it,
and the verdict is the submission's timeout: the side that was waiting. Which side wrote last is kept
for the message. The verdict's rules are judge.py's (_pair_verdict).

At most half the node's slots run interactive pairs at once (pair_gate): each pair needs two boxes at
the same time, and pairs that each held one box while waiting for a second could starve each other.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from stockade.sandbox import BoxResult, LiveIO

SUBMISSION = "submission"
INTERACTOR = "interactor"
Start = Callable[[LiveIO], Awaitable[BoxResult]]


@dataclass
class Exchange:
    """What the relay carried each way, and who wrote last."""

    to_interactor: int = 0  # bytes the submission wrote
    to_submission: int = 0  # bytes the interactor wrote
    last: str | None = None  # SUBMISSION or INTERACTOR

    def note(self, side: str, size: int) -> None:
        if side == SUBMISSION:
            self.to_interactor += size
        else:
            self.to_submission += size
        self.last = side


@dataclass
class PairResult:
    submission: BoxResult
    interactor: BoxResult
    interactor_first: bool  # the interactor's box ended before the submission's
    exchange: Exchange


async def run_pair(submission: Start, interactor: Start) -> PairResult:
    """Run both sides at once, connected; each `start` runs its box with the LiveIO it is given. A
    failure or cancellation of one side cancels the other (its box is killed)."""
    exchange = Exchange()
    ended: list[str] = []

    def relay(side: str, to: Callable[[], LiveIO]) -> Callable[[str, bytes], Awaitable[None]]:
        async def on_output(stream: str, chunk: bytes) -> None:
            if stream == "stdout":  # stderr stays in that side's result
                exchange.note(side, len(chunk))
                await to().send(chunk)  # False once the other's input is over: the chunk is dropped

        return on_output

    sub_io = LiveIO(relay(SUBMISSION, lambda: int_io))
    int_io = LiveIO(relay(INTERACTOR, lambda: sub_io))

    async def side(name: str, start: Start, own: LiveIO, other: LiveIO) -> BoxResult:
        box = await start(own)
        ended.append(name)
        await other.close()  # returns at the latest when the other's box ends
        return box

    async with asyncio.TaskGroup() as group:
        # The interactor first: it usually speaks first, and its box's wait for a slot is then not
        # counted in the submission's wall time.
        by_interactor = group.create_task(side(INTERACTOR, interactor, int_io, sub_io))
        by_submission = group.create_task(side(SUBMISSION, submission, sub_io, int_io))
    return PairResult(by_submission.result(), by_interactor.result(), ended[0] == INTERACTOR, exchange)


_GATES: weakref.WeakKeyDictionary[object, tuple[asyncio.AbstractEventLoop, asyncio.Semaphore]] = (
    weakref.WeakKeyDictionary()
)


def pair_gate(sandbox: object, slots: int) -> asyncio.Semaphore:
    """The node's limit on pairs running at once: half its slots (at least one), per sandbox and loop."""
    loop = asyncio.get_running_loop()
    found = _GATES.get(sandbox)
    if found is None or found[0] is not loop:
        found = (loop, asyncio.Semaphore(max(1, slots // 2)))
        _GATES[sandbox] = found
    return found[1]
