"""Execution places (slots + queue) and the requests holding them.

A request claims a place as soon as it has been received, before authentication, validation and the
engine, and turns it into an admitted run later. Counting only admitted runs let a burst through whole:
every request in it saw a free place, went through the full pipeline (interleaved with all the others on
the one event loop) and was refused at admission, hundreds of ms after it arrived. With claims the first
`capacity` requests of a burst hold every place and the rest are refused at once. The price: a request
that turns out invalid or unauthorized holds a place while it is validated (a few ms).
"""

from __future__ import annotations

import enum


class _State(enum.Enum):
    CLAIMED = enum.auto()
    ADMITTED = enum.auto()
    RELEASED = enum.auto()


class Place:
    """One request's hold on a place: claimed, then admitted for its run; released exactly once."""

    def __init__(self, places: Places) -> None:
        self._places = places
        self._state = _State.CLAIMED
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
