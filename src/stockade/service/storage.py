"""Whether the data dir can take the records of the runs the node admits (docs/audit.md, "Storage").

An auditable, metered node must not run code it cannot record or bill: while the data dir's filesystem
has less than `min_free_bytes` free, or a write to the store has failed, executions are refused with
STORAGE_UNAVAILABLE and /readyz says `"audit": false`. A probe (free space, then a real write) clears
the state once space is back; the service runs it by itself every second while the state lasts.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Final

from stockade.service.db import ERRORS as DB_ERRORS
from stockade.service.store import StoreError

MIN_FREE_BYTES: Final = 8 << 20  # a record is ~1 KB; this covers the WAL's growth up to a checkpoint (4 MB)
CHECK_EVERY_S: Final = 0.5  # statvfs on the request path at most this often
PROBE_EVERY_S: Final = 1.0  # while storage is unavailable, the service probes it this often
WRITE_ERRORS: Final[tuple[type[Exception], ...]] = (OSError, StoreError, *DB_ERRORS)


def free_space_problem(path: Path, min_free_bytes: int = MIN_FREE_BYTES) -> str | None:
    """Why `path`'s filesystem cannot take records now (too little space or no inode left), or None."""
    try:
        st = os.statvfs(path)
    except OSError as e:
        return f"cannot stat {path}: {e.strerror}"
    free = st.f_bavail * st.f_frsize
    if free < min_free_bytes:
        kept = min_free_bytes / 2**20
        return f"{free / 2**20:.1f} MiB free on the filesystem of {path}, below the {kept:g} MiB kept for audit records"
    if st.f_files and st.f_favail < 16:  # f_files 0: the filesystem has no inode limit
        return f"no free inodes on the filesystem of {path}"
    return None


class StorageGuard:
    """The data dir's state for admission: `problem` is why records cannot be written now, or None."""

    def __init__(self, path: Path, min_free_bytes: int = MIN_FREE_BYTES) -> None:
        self.path = path
        self.min_free_bytes = min_free_bytes
        self.problem: str | None = None
        self._checked = float("-inf")

    def check(self) -> str | None:
        """The current problem (cheap: a statvfs at most every CHECK_EVERY_S while there is none). Once
        there is one, only probe() clears it."""
        now = time.monotonic()
        if self.problem is None and now - self._checked >= CHECK_EVERY_S:
            self._checked = now
            self.problem = free_space_problem(self.path, self.min_free_bytes)
        return self.problem

    def failed(self, exc: BaseException) -> None:
        self.problem = f"a write to the store failed: {type(exc).__name__}: {exc}"

    def probe(self, write: Callable[[], None]) -> bool:
        """Free space, then `write` (a real write, and whatever records are waiting): True, with the
        problem cleared, when both succeed. Blocking: call it from a worker thread."""
        problem = free_space_problem(self.path, self.min_free_bytes)
        if problem is None:
            try:
                write()
            except WRITE_ERRORS as e:
                problem = f"a write to the store failed: {type(e).__name__}: {e}"
        self.problem = problem
        self._checked = time.monotonic()
        return problem is None
