"""The slots of a sandbox and the boxes built ahead for them.

Each slot is a host uid of its own and holds at most one box at a time. A slot's next box is built as
soon as the slot is free, so a run finds its box ready; a finished box is torn down, and the slot's
next box built, by a builder thread while the result is handed back (or once a recycling_deferred()
block ends). A slot whose box could not be torn down is quarantined: its uid may still own a process
that survived SIGKILL, so it is never handed out again.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import contextvars
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator

from stockade.sandbox.box import BUILD_ERRORS, Box, BoxBuilder

log = logging.getLogger("stockade.sandbox")


class NoSlotLeft(RuntimeError):
    """Every slot was taken out for good (quarantined): no run can get one until a restart."""


class CallerRuns:
    """The runs of one Sandbox.recycling_deferred() block: the slots whose finished boxes it holds back
    (handed to the builder at its end, or by settle()), and whether any of its runs has taken a slot
    (from then on it runs to its end: a caller may still drop a request that has not started, e.g. when
    its client has left)."""

    def __init__(self) -> None:
        self.slots: list[int] = []
        self.started = False
        self.on_start: Callable[[], None] | None = None  # each time a run of the block takes a slot; never raises


_CALLER: contextvars.ContextVar[CallerRuns | None] = contextvars.ContextVar("stockade_caller_runs", default=None)


class _Slots:
    """Free slot numbers plus FIFO waiters. Not bound to one event loop, unlike asyncio.Queue, and
    given back from any thread: the builder thread returns a slot once its next box is built."""

    def __init__(self, n: int) -> None:
        self._lock = threading.Lock()
        self._free = list(range(n))
        self._waiters: deque[tuple[asyncio.AbstractEventLoop, asyncio.Future[int]]] = deque()
        self.total = n
        self._lost = 0  # never given back

    @property
    def in_use(self) -> int:
        return self.total - len(self._free)

    @property
    def waiting(self) -> int:
        return sum(1 for _, w in self._waiters if not w.done())

    async def take(self) -> int:
        loop = asyncio.get_running_loop()
        with self._lock:
            if self._lost >= self.total:
                raise NoSlotLeft
            if self._free and not self.waiting:
                return self._free.pop(0)
            fut: asyncio.Future[int] = loop.create_future()
            self._waiters.append((loop, fut))
        try:
            return await fut
        except asyncio.CancelledError:
            if fut.done() and not fut.cancelled() and fut.exception() is None:
                self.give(fut.result())  # handed a slot while being cancelled: pass it on
            raise

    def give(self, slot: int) -> None:
        with self._lock:
            while self._waiters:
                loop, w = self._waiters.popleft()
                if w.done():
                    continue
                try:
                    loop.call_soon_threadsafe(self._hand, w, slot)  # asyncio futures live on their loop
                    return
                except RuntimeError:  # that loop is closed: nobody waits there any more
                    continue
            self._free.append(slot)

    def lose(self) -> None:
        """A slot will never be given back. Once none is left, every waiter fails now rather than
        waiting for ever."""
        with self._lock:
            self._lost += 1
            if self._lost < self.total:
                return
            waiters, self._waiters = self._waiters, deque()
        for loop, w in waiters:
            with contextlib.suppress(RuntimeError):  # a closed loop: nobody waits there any more
                loop.call_soon_threadsafe(self._fail, w)

    @staticmethod
    def _fail(waiter: asyncio.Future[int]) -> None:
        if not waiter.done():
            waiter.set_exception(NoSlotLeft())

    def _hand(self, waiter: asyncio.Future[int], slot: int) -> None:
        if waiter.done():
            self.give(slot)  # cancelled meanwhile: the next waiter gets it
        else:
            waiter.set_result(slot)


class Pool:
    def __init__(self, slots: int, builder: BoxBuilder, *, build_ahead: bool) -> None:
        self.builder = builder
        self.build_ahead = build_ahead
        self._slots = _Slots(slots)
        self._ready: dict[int, Box] = {}  # slot -> box built ahead of demand, never used yet
        # Teardown of finished boxes and building of the next ones, off the event loop; slot -> its job.
        self._executor: concurrent.futures.ThreadPoolExecutor | None = None
        self._recycling: dict[int, concurrent.futures.Future[None]] = {}
        # slot -> the caller holding its finished box back from the builder, and that box
        self._deferred: dict[int, tuple[CallerRuns, Box | None]] = {}
        self._lock = threading.Lock()
        self.quarantined: set[int] = set()  # slots whose teardown failed; never handed out again

    @property
    def total(self) -> int:
        return self._slots.total

    @property
    def in_use(self) -> int:
        return self._slots.in_use

    @property
    def waiting(self) -> int:
        return self._slots.waiting

    @property
    def ready_box_ids(self) -> frozenset[str]:
        with self._lock:
            return frozenset(b.box_id for b in self._ready.values())

    def start(self) -> None:
        # bubblewrap's --die-with-parent follows the thread that spawned it: the builder threads live
        # as long as the pool (close() or the process ends them, after the boxes are gone).
        self._executor = concurrent.futures.ThreadPoolExecutor(self.total, thread_name_prefix="stockade-builder")
        for slot in range(self.total):
            self._build_ahead(slot)

    def close(self) -> None:
        self.settle()
        if self._executor is not None:
            self._executor.shutdown()
            self._executor = None

    async def acquire(self, needed: frozenset[str]) -> tuple[int, Box | None, int]:
        """Wait for a slot: (slot, its box built ahead if it fits `needed` ro paths, ms waited). Raises
        NoSlotLeft once every slot is quarantined."""
        caller = _CALLER.get()
        if caller is not None and caller.slots:
            self._recycle_deferred(caller)  # this caller's earlier box may hold the slot this run needs
        asked = time.monotonic()
        slot = await self._slots.take()
        if caller is not None:
            caller.started = True  # before any await: no cancel lands between taking the slot and saying so
            if caller.on_start is not None:
                caller.on_start()
        queue_ms = int((time.monotonic() - asked) * 1000)
        with self._lock:
            box = self._ready.pop(slot, None)
        if box is not None and (not needed <= box.ro_paths or box.proc.poll() is not None):
            self.discard(box)  # needs other paths bound, or died idle (killed by the host's root)
            box = None
        return slot, box, queue_ms

    def release(self, slot: int, box: Box | None) -> None:
        """The run on `slot` is over: every process of its box is dead (or, for a box that never started,
        is killed in its teardown). Removing what is left and building the slot's next box happen in a
        builder thread while the result is handed back, or once the caller's block is done with it."""
        caller = _CALLER.get()
        with self._lock:
            if caller is None:
                self._submit_recycle(slot, box)
            else:
                self._deferred[slot] = (caller, box)
                caller.slots.append(slot)

    def discard(self, box: Box) -> None:
        if not self.builder.discard(box):
            self.quarantined.add(box.slot)

    @staticmethod
    def caller_runs() -> CallerRuns | None:
        """The CallerRuns of the recycling_deferred() block this context is in, if any."""
        return _CALLER.get()

    @contextlib.contextmanager
    def recycling_deferred(self) -> Iterator[CallerRuns]:
        mine = CallerRuns()
        token = _CALLER.set(mine)
        try:
            yield mine
        finally:
            _CALLER.reset(token)
            self._recycle_deferred(mine)

    def _recycle_deferred(self, caller: CallerRuns | None) -> None:
        """Hand the finished boxes `caller` holds back (every caller's, for None) to the builder."""
        with self._lock:
            for slot, (owner, box) in list(self._deferred.items()):
                if caller is None or owner is caller:
                    del self._deferred[slot]
                    owner.slots.remove(slot)
                    self._submit_recycle(slot, box)

    def _submit_recycle(self, slot: int, box: Box | None) -> None:
        assert self._executor is not None
        self._recycling[slot] = self._executor.submit(self._recycle, slot, box)

    def _recycle(self, slot: int, box: Box | None) -> None:
        """Builder thread: tear the finished box down, build the slot's next one, give the slot back."""
        try:
            if box is not None:
                self.discard(box)
            if slot not in self.quarantined:
                self._build_ahead(slot)
        except Exception:
            log.exception("slot %d: recycling failed", slot)
            self.quarantined.add(slot)  # what is left of the box is unknown: fail closed
        finally:
            with self._lock:
                del self._recycling[slot]
            if slot in self.quarantined:
                log.error("slot %d (uid %d) quarantined", slot, self.builder.uid(slot))
                self._slots.lose()
            else:
                self._slots.give(slot)

    def _recycling_jobs(self) -> list[concurrent.futures.Future[None]]:
        with self._lock:
            return list(self._recycling.values())

    async def recycled(self) -> None:
        if jobs := self._recycling_jobs():
            await asyncio.wait([asyncio.wrap_future(j) for j in jobs])

    def settle(self) -> None:
        self._recycle_deferred(None)
        while jobs := self._recycling_jobs():
            concurrent.futures.wait(jobs)
        with self._lock:
            boxes = list(self._ready.values())
            self._ready.clear()
        for box in boxes:
            self.discard(box)

    def _build_ahead(self, slot: int) -> None:
        if not self.build_ahead or self._executor is None or slot in self._ready:
            return
        try:
            box = self.builder.build_started(slot, frozenset())
            with self._lock:
                self._ready[slot] = box
        except BUILD_ERRORS:
            log.exception("slot %d: building a box ahead of demand failed; the next run builds its own", slot)
