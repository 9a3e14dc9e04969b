"""Execution places (slots + queue) and the requests holding them.

A request claims a place as soon as it has been received, before authentication, validation and the
engine, and turns it into an admitted run later. Counting only admitted runs let a burst through whole:
every request in it saw a free place, went through the full pipeline (interleaved with all the others on
the one event loop) and was refused at admission, hundreds of ms after it arrived. With claims the first
`capacity` requests of a burst hold every place and the rest are refused at once. The price: a request
that turns out invalid or unauthorized holds a place while it is validated (a few ms).

`Admission` is the ASGI middleware that claims them (Service.claim) and gives them back.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import re
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from stockade.service.body_limit import replaying
from stockade.service.errors import ApiError

if TYPE_CHECKING:
    from stockade.service.node import Caller, Service

log = logging.getLogger("stockade.service")


class _State(enum.Enum):
    CLAIMED = enum.auto()
    ADMITTED = enum.auto()
    RELEASED = enum.auto()


class Place:
    """One request's hold on a place: claimed, then admitted for its run; released exactly once."""

    def __init__(self, places: Places) -> None:
        self._places = places
        self._state = _State.CLAIMED
        self.who: Caller | None = None  # who asked (routes/deps.py:caller): its run's journal entry says so
        places.claimed += 1

    def admit(self) -> None:
        assert self._state is _State.CLAIMED, self._state
        self._state = _State.ADMITTED
        self._places.claimed -= 1
        self._places.admitted += 1

    def release(self) -> None:
        """Give the place back; safe to call again (the run's end and the response's start both do)."""
        if self._state is _State.CLAIMED:
            self._places.claimed -= 1
        elif self._state is _State.ADMITTED:
            self._places.admitted -= 1
        self._state = _State.RELEASED


class Places:
    """`capacity` places, each free, claimed by a request being validated, or held by an admitted run."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.admitted = 0  # running or waiting for a slot
        self.claimed = 0  # received, not yet admitted or given back

    @property
    def full(self) -> bool:
        return self.admitted + self.claimed >= self.capacity

    def claim(self) -> Place | None:
        """A place for a received request, or None when every place is taken."""
        return None if self.full else Place(self)


EXECUTE_PATHS = ("/v1/execute", "/execute", "/v1/judge")
PROBLEM_JUDGE_PATH = re.compile(r"/v1/problems/[^/]+/judge")  # a stored problem's judgement (docs/judge.md)
Refusal = Callable[[ApiError], ASGIApp]  # a refusal as another API words it


class Admission:
    """Claim an execution place for each received POST /execute before the app sees it (admission.py says
    why). Refusals are plain ASGI sends, so a full node answers a burst without doing any of the work of
    the pipeline. The place is given back, if the run has not done so, before the response starts: a
    client's next request must find it free. A request whose client leaves before its run has taken a
    slot is dropped. An execution's audit record is written here, once the app has answered or failed."""

    def __init__(self, app: ASGIApp, service: Service, surfaces: Mapping[str, Refusal] | None = None) -> None:
        self.app = app
        self.service = service
        # Every execute path, with how its API words a refusal (the compatible surfaces: Judge0, Piston).
        self.paths: dict[str, Refusal | None] = {**dict.fromkeys(EXECUTE_PATHS), **(surfaces or {})}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        executes = path in self.paths or PROBLEM_JUDGE_PATH.fullmatch(path) is not None
        if scope["type"] != "http" or scope["method"] != "POST" or not executes:
            await self.app(scope, receive, send)
            return
        try:
            self.service.shed()  # nothing read yet: a full node refuses before the body
            buffered = [await receive()]  # the whole body first: a slow sender holds no place
            while buffered[-1]["type"] == "http.request" and buffered[-1].get("more_body", False):
                buffered.append(await receive())
            if buffered[-1]["type"] == "http.disconnect":
                return
            place = self.service.claim()
        except ApiError as e:
            refusal = self.paths.get(scope["path"])
            await (refusal(e) if refusal else e.response())(scope, receive, send)
            return

        scope.setdefault("state", {})["place"] = place
        try:
            await self._admitted(scope, buffered, receive, send, place)
        finally:
            # The run's boxes went to a builder thread for teardown as _admitted ended: this runs meanwhile.
            if write := scope["state"].get("audit_write"):
                for one in write if isinstance(write, list) else [write]:  # a judgement: one per test
                    await self.service.write_audit(one)
            if hold := scope["state"].get("quota_hold"):
                hold.release()

    async def _admitted(
        self, scope: Scope, buffered: list[Message], receive: Receive, send: Send, place: Place
    ) -> None:
        responding = False

        async def send_releasing(message: Message) -> None:
            nonlocal responding
            if message["type"] == "http.response.start":
                responding = True
                place.release()
            await send(message)

        # Yield once: of a burst read in one loop turn, the requests refused above are all answered in
        # it, before the admitted ones parse, authenticate and validate.
        await asyncio.sleep(0)
        # The run's boxes are torn down once the response is written (one write into the transport's
        # buffer, however slowly the client reads), not while.
        with self.service.sandbox.recycling_deferred() as runs:
            request = asyncio.current_task()
            assert request is not None

            async def drop_if_the_client_leaves() -> bool:
                """A client gone before its run took a slot (a queued request, typically): drop the
                request, so the slot goes to one that is still awaited. A started run ends as usual,
                recorded and audited."""
                # The body is read: what comes next is the client leaving, or the response's end.
                if (await receive())["type"] == "http.disconnect" and not (responding or runs.started):
                    return request.cancel()
                return False

            watcher = asyncio.create_task(drop_if_the_client_leaves())
            try:
                await self.app(scope, replaying(buffered, receive), send_releasing)
            except asyncio.CancelledError:
                if not (watcher.done() and watcher.result()):  # cancelled for another reason (shutdown)
                    raise
                request.uncancel()
                self.service.reject("client_gone")
                log.info("request dropped: its client left before its run started")
            finally:
                watcher.cancel()
                place.release()
