"""The connection guard of `stockade serve`: slow or idle clients cannot hold the node's descriptors
(issue 28 §4, docs/api.md "Connections").

- Headers must arrive in full within `header_timeout_s` of a request's first byte (or of the
  connection's opening); a body may not stall longer than `body_timeout_s` between two reads. Past
  either, the client gets a typed 408 REQUEST_TIMEOUT (nothing if it sent nothing) and is closed.
- At most `cap()` connections are open: the descriptor limit minus what the node keeps for its boxes,
  its database and an accept burst. A connection past the cap evicts the oldest connection that has no
  request in progress (idle keep-alive, or still sending its headers); when none can go, the new one
  is answered a typed 503 OVERLOADED with Retry-After and closed, instead of accept() failing.
- accept() failing anyway (EMFILE, ENFILE...) is logged once per `LOG_EVERY_S` with a count, not with
  a traceback per attempt (asyncio retries a second later).
"""

from __future__ import annotations

import asyncio
import json
import logging
import resource
import time
from collections import OrderedDict
from typing import Any, Final

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from stockade.service.telemetry import Metrics

log = logging.getLogger("stockade.service")

HEADER_TIMEOUT_S: Final = 10.0
BODY_TIMEOUT_S: Final = 15.0  # between two reads of a body (a 12 MiB upload needs ~1 MB/s)
BACKLOG: Final = 128  # listen backlog, and so the most sockets one accept burst takes before any protocol
RESERVED_FDS: Final = 128  # the node's own descriptors: database, log, worker threads, pipes
FDS_PER_SLOT: Final = 16  # a running box and the one built ahead for its slot
LOG_EVERY_S: Final = 10.0


def _answer(status: str, code: str, message: str, retry_after: int | None = None) -> bytes:
    body = json.dumps({"status": "failed", "error": code, "message": message}).encode()
    head = [f"HTTP/1.1 {status}", "content-type: application/json", f"content-length: {len(body)}", "connection: close"]
    if retry_after is not None:
        head.append(f"retry-after: {retry_after}")
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


TOO_MANY: Final = _answer("503 Service Unavailable", "OVERLOADED", "too many open connections", retry_after=1)
HEADERS_LATE: Final = _answer("408 Request Timeout", "REQUEST_TIMEOUT", "the request's headers did not arrive in time")
BODY_LATE: Final = _answer("408 Request Timeout", "REQUEST_TIMEOUT", "the request's body stalled")


class Guard:
    """What every connection of one server shares: the cap, the evictable connections (oldest first)
    and the counters."""

    def __init__(
        self,
        metrics: Metrics,
        slots: int,
        *,
        header_timeout_s: float = HEADER_TIMEOUT_S,
        body_timeout_s: float = BODY_TIMEOUT_S,
    ) -> None:
        self.metrics = metrics
        self.reserved = RESERVED_FDS + FDS_PER_SLOT * slots + 2 * BACKLOG  # two bursts may be in flight
        self.header_timeout_s = header_timeout_s
        self.body_timeout_s = body_timeout_s
        self.open = 0  # connections whose descriptor is still held (closed ones count until it is released)
        self.evictable: OrderedDict[GuardedProtocol, None] = OrderedDict()
        self._accept_errors = 0
        self._logged_at = float("-inf")

    def cap(self) -> int:
        """Connections allowed now: the soft descriptor limit (read each time: it can change) less the
        reserve, at least 16."""
        soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
        return max(16, (soft if soft != resource.RLIM_INFINITY else 1 << 20) - self.reserved)

    def make_room(self) -> bool:
        """For one more connection: True if below the cap or an evictable one was closed for it."""
        if self.open < self.cap():
            return True
        while self.evictable:
            victim, _ = self.evictable.popitem(last=False)
            if victim.evict():
                return True
        return False

    def refused(self, reason: str) -> None:
        self.metrics.connection_refusals.labels(reason).inc()

    def exception_handler(self, loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        """The loop's handler: accept() out of descriptors is counted and logged once per LOG_EVERY_S;
        anything else goes to asyncio's default handler."""
        exc = context.get("exception")
        if not (context.get("message", "").startswith("socket.accept() out of system resource") and exc):
            loop.default_exception_handler(context)
            return
        self._accept_errors += 1
        self.metrics.accept_errors.inc()
        now = time.monotonic()
        if now - self._logged_at >= LOG_EVERY_S:
            log.warning(
                "accept() failed %d times in the last %.0f s (%s): %d connections open, cap %d",
                self._accept_errors, min(now - self._logged_at, 1e9), exc, self.open, self.cap(),
                extra={"fields": {"accept_errors": self._accept_errors}},
            )  # fmt: skip
            self._accept_errors = 0
            self._logged_at = now


class GuardedProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol under a Guard (see the module's doc)."""

    guard: Guard  # set on the subclass protocol_class() makes

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._refused = False
        self._counted = False
        self._received = False  # a byte of the current request has arrived
        self._deadline: asyncio.TimerHandle | None = None

    # -- connection ----------------------------------------------------------------------------
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        g = self.guard
        if not g.make_room():
            self._refused = True
            g.refused("too_many")
            transport.write(TOO_MANY)
            transport.close()
            return
        super().connection_made(transport)
        self._counted = True
        g.open += 1
        g.metrics.connections.set(g.open)
        self._waiting()
        self._arm(g.header_timeout_s, self._headers_late)

    def connection_lost(self, exc: Exception | None) -> None:
        if self._refused:
            return
        self._close_count()
        super().connection_lost(exc)

    def evict(self) -> bool:
        """Close for a newer connection (the cap); False if this one is already closing."""
        if self.transport is None or self.transport.is_closing():
            return False
        self.guard.refused("evicted")
        self._close(HEADERS_LATE if self._received else None)
        return True

    def handle_websocket_upgrade(self) -> None:
        """The transport goes to a WebSocket protocol: this one's connection_lost will not run, so it is
        no longer counted here (a stream holds an execution place: admission bounds those)."""
        self._close_count()
        super().handle_websocket_upgrade()

    def _close_count(self) -> None:
        self._disarm()
        self.guard.evictable.pop(self, None)
        if self._counted:
            self._counted = False
            self.guard.open -= 1
            self.guard.metrics.connections.set(self.guard.open)

    # -- a request's phases --------------------------------------------------------------------
    def data_received(self, data: bytes) -> None:
        if not self._received and (self.cycle is None or self.cycle.response_complete):
            self._received = True  # a new request begins: its headers have header_timeout_s
            self._arm(self.guard.header_timeout_s, self._headers_late)
        super().data_received(data)

    def on_headers_complete(self) -> None:
        self.guard.evictable.pop(self, None)  # a request in progress is never evicted
        self._disarm()
        super().on_headers_complete()
        self._arm(self.guard.body_timeout_s, self._body_late)

    def on_body(self, body: bytes) -> None:
        super().on_body(body)
        self._arm(self.guard.body_timeout_s, self._body_late)

    def on_message_complete(self) -> None:
        self._disarm()
        super().on_message_complete()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if self.transport is not None and not self.transport.is_closing():
            self._received = False
            self._waiting()  # idle between requests: uvicorn's keep-alive timeout closes it

    # -- helpers -------------------------------------------------------------------------------
    def _waiting(self) -> None:
        self.guard.evictable[self] = None
        self.guard.evictable.move_to_end(self)

    def _arm(self, seconds: float, then: Any) -> None:
        self._disarm()
        self._deadline = self.loop.call_later(seconds, then)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _headers_late(self) -> None:
        self.guard.refused("header_timeout")
        self._close(HEADERS_LATE if self._received else None)

    def _body_late(self) -> None:
        self.guard.refused("body_timeout")
        started = self.cycle is not None and self.cycle.response_started
        self._close(None if started else BODY_LATE)

    def _close(self, answer: bytes | None) -> None:
        self._disarm()
        self.guard.evictable.pop(self, None)
        if self.transport is None or self.transport.is_closing():
            return
        if answer is not None:
            self.transport.write(answer)
        self.transport.close()


def protocol_class(guard: Guard) -> type[GuardedProtocol]:
    """The protocol class for uvicorn.Config(http=...), bound to `guard`."""
    return type("GuardedHttpProtocol", (GuardedProtocol,), {"guard": guard})
