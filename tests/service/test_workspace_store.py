"""The workspace store (service/workspaces.py) on its own: files, quota, the lease, expiry, write-back."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from stockade.engine.outputs import Skipped
from stockade.sandbox import OutputFile
from stockade.service.errors import ApiError
from stockade.service.workspaces import WorkspaceLimits, WorkspaceStore


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def store(tmp_path: Path, clock: Clock) -> WorkspaceStore:
    limits = WorkspaceLimits(max_bytes=100, max_files=3, per_tenant=2, idle_seconds=60)
    return WorkspaceStore(tmp_path / "ws", limits, clock=clock)


def code_of(excinfo: pytest.ExceptionInfo[ApiError]) -> str:
    return excinfo.value.code


def test_files_round_trip_and_listing(store: WorkspaceStore) -> None:
    ws = store.create("acme")
    store.put("acme", ws.id, "a.txt", b"alpha")
    info = store.put("acme", ws.id, "deep/er/b.bin", b"\0\1")
    assert (info.files, info.bytes, info.busy) == (2, 7, False)
    assert store.read("acme", ws.id, "deep/er/b.bin") == b"\0\1"
    assert [e.path for e in store.entries("acme", ws.id)] == ["a.txt", "deep/er/b.bin"]
    store.remove("acme", ws.id, "a.txt")
    with pytest.raises(ApiError) as e:
        store.read("acme", ws.id, "a.txt")
    assert code_of(e) == "WORKSPACE_NOT_FOUND"
    store.delete("acme", ws.id)
    with pytest.raises(ApiError) as e:
        store.info("acme", ws.id)
    assert code_of(e) == "WORKSPACE_NOT_FOUND"


def test_a_workspace_is_its_tenants_alone(store: WorkspaceStore) -> None:
    ws = store.create("acme")
    for call in (lambda: store.info("other", ws.id), lambda: store.read("other", ws.id, "x")):
        with pytest.raises(ApiError) as e:
            call()
        assert code_of(e) == "WORKSPACE_NOT_FOUND"
    assert store.all("other") == []


@pytest.mark.parametrize("bad", ["", "/abs", "../up", "a/../b", "a//b", "./a", "tab\there", "x" * 256])
def test_bad_paths_are_refused(store: WorkspaceStore, bad: str) -> None:
    ws = store.create("acme")
    with store.lease("acme", ws.id) as lease, pytest.raises(ApiError) as e:
        lease.write(bad, b"x")
    assert code_of(e) == "INVALID_REQUEST"


def test_quota_of_bytes_files_and_workspaces(store: WorkspaceStore) -> None:
    ws = store.create("acme")
    with store.lease("acme", ws.id) as lease:
        lease.write("big", b"x" * 100)
        with pytest.raises(ApiError) as e:
            lease.write("more", b"y")
        assert code_of(e) == "WORKSPACE_QUOTA_EXCEEDED"
        lease.write("big", b"x" * 10)  # replacing a file counts its new size only
        lease.write("b", b"")
        lease.write("c", b"")
        with pytest.raises(ApiError) as e:
            lease.write("d", b"")
        assert code_of(e) == "WORKSPACE_QUOTA_EXCEEDED"
    store.create("acme")
    with pytest.raises(ApiError) as e:
        store.create("acme")
    assert code_of(e) == "WORKSPACE_QUOTA_EXCEEDED"
    assert len(store.create("other").id) == 35  # per tenant


def test_a_leased_workspace_is_busy_for_every_other_holder(store: WorkspaceStore) -> None:
    ws = store.create("acme")
    with store.lease("acme", ws.id):
        assert store.info("acme", ws.id).busy
        for again in (lambda: store.lease("acme", ws.id).__enter__(), lambda: store.delete("acme", ws.id)):
            with pytest.raises(ApiError) as e:
                again()
            assert code_of(e) == "WORKSPACE_BUSY" and e.value.retry_after == 1
    assert not store.info("acme", ws.id).busy
    with store.lease("acme", ws.id):  # free again
        pass


def test_idle_workspaces_expire_and_use_keeps_them(store: WorkspaceStore, clock: Clock) -> None:
    kept, idle = store.create("acme"), store.create("acme")
    clock.now += 50
    store.info("acme", kept.id)  # a use
    clock.now += 20  # idle is 70 s unused, kept 20 s
    with pytest.raises(ApiError) as e:
        store.info("acme", idle.id)
    assert code_of(e) == "WORKSPACE_NOT_FOUND" and "expired" in e.value.message
    assert [i.id for i in store.all("acme")] == [kept.id]
    assert not (store.root / "acme" / idle.id).exists()
    clock.now += 61
    assert store.sweep() == 1 and store.all("acme") == []


def test_a_leased_workspace_does_not_expire_under_its_run(store: WorkspaceStore, clock: Clock) -> None:
    ws = store.create("acme")
    with store.lease("acme", ws.id):
        clock.now += 3600
        assert store.sweep() == 0
    assert store.info("acme", ws.id).id == ws.id


def test_write_back_replaces_whole_or_not_at_all(store: WorkspaceStore) -> None:
    ws = store.create("acme")
    with store.lease("acme", ws.id) as lease:
        lease.write("keep.txt", b"old")
        over = [OutputFile(f"f{i}", b"", False) for i in range(4)]
        back = lease.replace(over, [])
        assert not back.saved and back.error is not None and back.error.code == "WORKSPACE_QUOTA_EXCEEDED"
        assert lease.files()[0].content == b"old"  # as it was
        bad_name = OutputFile("ctl\x01name", b"z", False)
        back = lease.replace([OutputFile("new.sh", b"#!", True), bad_name], [Skipped("pipe", "not_regular")])
        assert back.saved and (back.files, back.bytes) == (1, 2)
        assert [s if isinstance(s, dict) else s.reason for s in back.skipped] == [
            "not_regular",
            {"path": "ctl\x01name", "reason": "bad_name"},
        ]
    assert [(f.path, f.executable) for f in store.entries("acme", ws.id)] == [("new.sh", True)]
    home = store.root / "acme" / ws.id
    gens = sorted(p.name for p in home.iterdir() if p.name.startswith("g"))
    assert gens == ["g1"]  # the old generation is gone
    for dirpath, dirnames, filenames in os.walk(home):
        for name in dirnames + filenames:
            mode = os.lstat(os.path.join(dirpath, name)).st_mode
            assert stat.S_ISDIR(mode) or stat.S_ISREG(mode), name
