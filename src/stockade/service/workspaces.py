"""Workspaces: a tenant's files that persist across executions, each of which still runs in a fresh box.

On disk, under the data dir, one directory per workspace: `workspaces/<tenant>/<id>/` holds `meta.json`
(created, the current generation; only a lease writes it), `used` (its mtime: the last use, from which
the idle expiry counts), `lock` (the lease) and `g<N>/`, the files of generation N. An execution
copies the files of the current generation into its run box, and its write-back builds generation
N+1 whole, then points `meta.json` at it (a rename: atomic) and removes N. A reader never
sees a half-written generation: it reads the one `meta.json` names.

The lease is an exclusive, non-blocking flock on `lock`, held from the read of the files into a run
box until its write-back, and around each file upload or deletion: a second execution, or a write,
on a workspace that is leased is refused with WORKSPACE_BUSY, never interleaved. flock is per open
file, so it holds between requests of one process and between processes sharing the data dir, and
the kernel drops it when its holder dies.

Every path is walked with directory fds and O_NOFOLLOW: what an execution leaves is read by the
sandbox's no-follow read-out and written here as regular files only, so the store holds no link,
FIFO or device, and no name outside its own tree is ever resolved.

In a cluster of stateless nodes, what moves to a shared store (docs/agents.md): the generations to
an object store (a key prefix per generation), `meta.json` and the lease to the shared database (a
row per workspace, the lease a compare-and-set with an expiry). This module is that seam.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import shutil
import stat
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from stockade.engine.outputs import Skipped
from stockade.sandbox import InputFile, OutputFile
from stockade.service.errors import ApiError
from stockade.service.workspace_fs import flocked, open_dirs, read_file, walk, write_file

log = logging.getLogger("stockade.service")

MAX_PATH_BYTES = 1024
MAX_PART_BYTES = 255
MAX_DEPTH = 32  # the sandbox read-out's own depth
ID_PREFIX = "ws_"
_HEX = frozenset("0123456789abcdef")
_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


@dataclass(frozen=True)
class WorkspaceLimits:
    """Each workspace's quota, how many a tenant may have, and how long one lasts unused."""

    max_bytes: int = 32 * 1024 * 1024  # half a run box's tmpfs: the run's own files need room too
    max_files: int = 1000
    per_tenant: int = 16
    idle_seconds: float = 24 * 3600.0


@dataclass(frozen=True)
class Entry:
    path: str
    size: int
    executable: bool


@dataclass(frozen=True)
class Info:
    id: str
    tenant: str
    created_at: float
    used_at: float
    expires_at: float
    files: int
    bytes: int
    busy: bool

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "created_at": self.created_at,
            "used_at": self.used_at,
            "expires_at": self.expires_at,
            "files": self.files,
            "bytes": self.bytes,
            "busy": self.busy,
        }


@dataclass
class WriteBack:
    """What became of a run's files: saved (the workspace is now what the run left) or not (it is as it
    was, and `error` says why); the files that were not regular, or whose names cannot be stored."""

    saved: bool
    files: int = 0
    bytes: int = 0
    skipped: list[Skipped | dict[str, str]] = field(default_factory=list)
    error: ApiError | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "saved": self.saved,
            "files": self.files,
            "bytes": self.bytes,
            "skipped": [s if isinstance(s, dict) else {"path": s.path, "reason": s.reason} for s in self.skipped],
            "error": None if self.error is None else {"error": self.error.code, "message": self.error.message},
        }


def check_path(path: str) -> str:
    """A workspace file path: relative, at most MAX_DEPTH parts, no empty, '.' or '..' part, no
    control character, valid UTF-8; else INVALID_REQUEST."""
    if bad := path_problem(path):
        raise ApiError("INVALID_REQUEST", f"workspace path {path[:64]!r}: {bad}")
    return path


def path_problem(path: str) -> str | None:
    try:
        size = len(path.encode())
    except UnicodeEncodeError:
        return "not valid UTF-8"
    parts = path.split("/")
    if not path or size > MAX_PATH_BYTES or path.startswith("/") or len(parts) > MAX_DEPTH:
        return f"must be a relative path of 1..{MAX_PATH_BYTES} bytes, at most {MAX_DEPTH} parts"
    for part in parts:
        if part in ("", ".", "..") or len(part.encode()) > MAX_PART_BYTES:
            return "has an empty, '.', '..' or over-long part"
        if any(ord(c) < 32 or c == "\x7f" for c in part):
            return "has a control character"
    return None


class Lease:
    """A workspace held for one execution or one write: its files, and the write-back of a run's."""

    def __init__(self, store: WorkspaceStore, tenant: str, ws_id: str) -> None:
        self.store, self.tenant, self.id = store, tenant, ws_id

    def files(self) -> list[InputFile]:
        return [InputFile(p, c, x) for p, c, x in self.store._read_all(self.tenant, self.id)]

    def write(self, path: str, content: bytes) -> None:
        self.store._put(self.tenant, self.id, check_path(path), content)

    def remove(self, path: str) -> None:
        self.store._remove(self.tenant, self.id, check_path(path))

    def replace(self, files: Sequence[OutputFile], not_regular: Sequence[Skipped]) -> WriteBack:
        """The workspace becomes `files` (a run's), or stays as it was if they are over its quota."""
        limits = self.store.limits
        kept: list[OutputFile] = []
        skipped: list[Skipped | dict[str, str]] = list(not_regular)
        for f in files:
            if path_problem(f.path):
                skipped.append({"path": f.path.encode(errors="replace").decode(errors="replace"), "reason": "bad_name"})
            else:
                kept.append(f)
        total = sum(len(f.content) for f in kept)
        if len(kept) > limits.max_files or total > limits.max_bytes:
            error = ApiError(
                "WORKSPACE_QUOTA_EXCEEDED",
                f"the run left {len(kept)} files of {total} bytes; the workspace holds at most "
                f"{limits.max_files} files of {limits.max_bytes} bytes: it was left as it was",
            )
            return WriteBack(False, len(kept), total, skipped, error)
        self.store._swap(self.tenant, self.id, kept)
        return WriteBack(True, len(kept), total, skipped)


class WorkspaceStore:
    """The workspaces of every tenant under `root`. Blocking file I/O: call it from a worker thread."""

    def __init__(self, root: Path, limits: WorkspaceLimits | None = None, clock: Callable[[], float] = time.time):
        self.root = root
        self.limits = limits or WorkspaceLimits()
        self.clock = clock
        self._create_lock = threading.Lock()
        # Leased by this process: what `busy` reports (the flock itself also holds across processes).
        self._leased: set[tuple[str, str]] = set()
        root.mkdir(mode=0o700, parents=True, exist_ok=True)

    # -- workspaces ------------------------------------------------------------------------------
    def create(self, tenant: str) -> Info:
        """A new, empty workspace, or WORKSPACE_QUOTA_EXCEEDED when the tenant has its maximum."""
        tenant_dir = self.root / tenant
        tenant_dir.mkdir(mode=0o700, exist_ok=True)
        with self._create_lock, flocked(tenant_dir / ".lock"):
            self.sweep(tenant)
            have = len(self._ids(tenant))
            if have >= self.limits.per_tenant:
                raise ApiError(
                    "WORKSPACE_QUOTA_EXCEEDED", f"tenant {tenant!r} has {have} workspaces, its maximum: delete one"
                )
            ws_id = ID_PREFIX + uuid.uuid4().hex
            home = tenant_dir / ws_id
            home.mkdir(mode=0o700)
            (home / "g0").mkdir(mode=0o700)
            (home / "lock").touch(mode=0o600)
            now = self.clock()
            self._write_meta(home, {"created_at": now, "gen": 0})
            self._touch(home)
        return self.info(tenant, ws_id)

    def all(self, tenant: str) -> list[Info]:
        self.sweep(tenant)
        out = []
        for ws_id in self._ids(tenant):
            with contextlib.suppress(ApiError):  # deleted meanwhile
                out.append(self.info(tenant, ws_id, touch=False))
        return sorted(out, key=lambda i: i.created_at)

    def info(self, tenant: str, ws_id: str, *, touch: bool = True) -> Info:
        home = self._home(tenant, ws_id)
        meta = self._meta(home)
        if touch:
            self._touch(home)
        used_at = self._used_at(home)
        entries = self._entries(home, meta)
        return Info(
            id=ws_id,
            tenant=tenant,
            created_at=meta["created_at"],
            used_at=used_at,
            expires_at=used_at + self.limits.idle_seconds,
            files=len(entries),
            bytes=sum(e.size for e in entries),
            busy=(tenant, ws_id) in self._leased,
        )

    def entries(self, tenant: str, ws_id: str) -> list[Entry]:
        home = self._home(tenant, ws_id)
        return self._entries(home, self._meta(home))

    def read(self, tenant: str, ws_id: str, path: str) -> bytes:
        """One file's bytes (lock-free: from the generation meta.json names now), or NOT_FOUND."""
        check_path(path)
        home = self._home(tenant, ws_id)
        for _ in range(3):  # a write-back may swap the generation between the two reads
            meta = self._meta(home)
            try:
                return read_file(home / f"g{meta['gen']}", path)
            except FileNotFoundError:
                if self._meta(home)["gen"] == meta["gen"]:
                    break
        raise ApiError("WORKSPACE_NOT_FOUND", f"no file {path[:64]!r} in workspace {ws_id}")

    def put(self, tenant: str, ws_id: str, path: str, content: bytes) -> Info:
        """One file written under the workspace's lease (WORKSPACE_BUSY while a run holds it)."""
        with self.lease(tenant, ws_id) as lease:
            lease.write(path, content)
        return self.info(tenant, ws_id)

    def remove(self, tenant: str, ws_id: str, path: str) -> Info:
        with self.lease(tenant, ws_id) as lease:
            lease.remove(path)
        return self.info(tenant, ws_id)

    def delete(self, tenant: str, ws_id: str) -> None:
        with self.lease(tenant, ws_id):
            home = self._home(tenant, ws_id)
            # Out of the listing first (a rename), then its files.
            gone = home.with_name(f".gone-{ws_id}-{uuid.uuid4().hex[:8]}")
            home.rename(gone)
        shutil.rmtree(gone, ignore_errors=True)

    @contextlib.contextmanager
    def lease(self, tenant: str, ws_id: str) -> Iterator[Lease]:
        """Hold the workspace (WORKSPACE_BUSY when another execution or write does)."""
        home = self._home(tenant, ws_id)
        fd = os.open(home / "lock", os.O_RDWR | os.O_NOFOLLOW | os.O_CLOEXEC)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise ApiError(
                    "WORKSPACE_BUSY", f"workspace {ws_id} is in use by another execution or write", retry_after=1
                ) from None
            home = self._home(tenant, ws_id)  # still there (a delete may have won the race), not expired
            self._touch(home)
            self._leased.add((tenant, ws_id))
            try:
                yield Lease(self, tenant, ws_id)
            finally:
                self._leased.discard((tenant, ws_id))
                with contextlib.suppress(OSError):  # a run's end is a use too (unless it deleted it)
                    self._touch(home)
        finally:
            os.close(fd)  # drops the flock

    def sweep(self, tenant: str | None = None) -> int:
        """Remove the workspaces unused for longer than the idle expiry (not those leased now)."""
        removed = 0
        tenants = [tenant] if tenant else [p.name for p in self.root.iterdir() if p.is_dir()]
        for t in tenants:
            for ws_id in self._ids(t):
                home = self.root / t / ws_id
                with contextlib.suppress(ApiError, OSError):
                    if self.clock() - self._used_at(home) > self.limits.idle_seconds:
                        self._expire(t, ws_id)
                        removed += 1
        return removed

    # -- internals -------------------------------------------------------------------------------
    def _expire(self, tenant: str, ws_id: str) -> None:
        home = self.root / tenant / ws_id
        fd = os.open(home / "lock", os.O_RDWR | os.O_NOFOLLOW | os.O_CLOEXEC)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # BlockingIOError: in use, so not idle
            gone = home.with_name(f".gone-{ws_id}-{uuid.uuid4().hex[:8]}")
            home.rename(gone)
        finally:
            os.close(fd)
        shutil.rmtree(gone, ignore_errors=True)
        log.info("workspace %s of %s expired", ws_id, tenant)

    def _ids(self, tenant: str) -> list[str]:
        tenant_dir = self.root / tenant
        if not tenant_dir.is_dir():
            return []
        return sorted(p.name for p in tenant_dir.iterdir() if p.name.startswith(ID_PREFIX))

    def _home(self, tenant: str, ws_id: str) -> Path:
        """The workspace's directory, or WORKSPACE_NOT_FOUND (unknown, another tenant's, or expired)."""
        if not (ws_id.startswith(ID_PREFIX) and len(ws_id) == 35 and all(c in _HEX for c in ws_id[3:])):
            raise self._not_found(ws_id)
        home = self.root / tenant / ws_id
        try:
            self._meta(home)
            used_at = self._used_at(home)
        except (ApiError, OSError):
            raise self._not_found(ws_id) from None
        if self.clock() - used_at > self.limits.idle_seconds:
            with contextlib.suppress(BlockingIOError, OSError):
                self._expire(tenant, ws_id)
                raise self._not_found(ws_id, "expired")
        return home

    @staticmethod
    def _not_found(ws_id: str, why: str = "unknown") -> ApiError:
        return ApiError("WORKSPACE_NOT_FOUND", f"no workspace {ws_id[:40]!r} ({why})")

    @staticmethod
    def _meta(home: Path) -> dict[str, Any]:
        try:
            return dict(json.loads((home / "meta.json").read_text()))
        except (OSError, ValueError):
            raise ApiError("WORKSPACE_NOT_FOUND", f"no workspace {home.name!r}") from None

    def _touch(self, home: Path) -> None:
        """Its last use is the mtime of `used` (apart from meta.json, which only a lease writes)."""
        now = self.clock()
        with contextlib.suppress(FileExistsError):
            (home / "used").touch(mode=0o600, exist_ok=False)
        os.utime(home / "used", (now, now))

    @staticmethod
    def _used_at(home: Path) -> float:
        return os.stat(home / "used").st_mtime

    @staticmethod
    def _write_meta(home: Path, meta: dict[str, Any]) -> None:
        tmp = home / f".meta-{uuid.uuid4().hex[:8]}"
        tmp.write_text(json.dumps(meta))
        os.replace(tmp, home / "meta.json")

    def _entries(self, home: Path, meta: dict[str, Any]) -> list[Entry]:
        return [Entry(p, size, x) for p, size, x in walk(home / f"g{meta['gen']}", read=False)]

    def _read_all(self, tenant: str, ws_id: str) -> list[tuple[str, bytes, bool]]:
        home = self._home(tenant, ws_id)
        return [(p, c, x) for p, c, x in walk(home / f"g{self._meta(home)['gen']}", read=True)]

    def _put(self, tenant: str, ws_id: str, path: str, content: bytes) -> None:
        home = self._home(tenant, ws_id)
        meta = self._meta(home)
        gen = home / f"g{meta['gen']}"
        entries = {e.path: e for e in self._entries(home, meta)}
        old = entries.get(path)
        files = len(entries) + (old is None)
        total = sum(e.size for e in entries.values()) - (old.size if old else 0) + len(content)
        if files > self.limits.max_files or total > self.limits.max_bytes:
            raise ApiError(
                "WORKSPACE_QUOTA_EXCEEDED",
                f"the workspace would hold {files} files of {total} bytes; its quota is "
                f"{self.limits.max_files} files of {self.limits.max_bytes} bytes",
            )
        write_file(gen, path, content, executable=old.executable if old else False)

    def _remove(self, tenant: str, ws_id: str, path: str) -> None:
        home = self._home(tenant, ws_id)
        parts = path.split("/")
        try:
            dfd = open_dirs(home / f"g{self._meta(home)['gen']}", parts[:-1])
        except (FileNotFoundError, NotADirectoryError):
            raise ApiError("WORKSPACE_NOT_FOUND", f"no file {path[:64]!r} in workspace {ws_id}") from None
        try:
            st = os.stat(parts[-1], dir_fd=dfd, follow_symlinks=False)
            if not stat.S_ISREG(st.st_mode):
                raise FileNotFoundError(path)
            os.unlink(parts[-1], dir_fd=dfd)
        except FileNotFoundError:
            raise ApiError("WORKSPACE_NOT_FOUND", f"no file {path[:64]!r} in workspace {ws_id}") from None
        finally:
            os.close(dfd)

    def _swap(self, tenant: str, ws_id: str, files: Sequence[OutputFile]) -> None:
        """Generation N+1 holds `files`; meta.json then names it (the commit), and N goes."""
        home = self._home(tenant, ws_id)
        meta = self._meta(home)
        old, new = meta["gen"], meta["gen"] + 1
        target = home / f"g{new}"
        shutil.rmtree(target, ignore_errors=True)  # a write-back that died before its commit
        target.mkdir(mode=0o700)
        for f in files:
            write_file(target, f.path, f.content, executable=f.executable)
        self._write_meta(home, {**meta, "gen": new})
        self._touch(home)
        shutil.rmtree(home / f"g{old}", ignore_errors=True)
