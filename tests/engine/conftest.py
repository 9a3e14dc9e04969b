"""One real sandbox and engine for all engine tests, plus the invariant checks they share."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from stockade.engine import Engine
from stockade.runtimes import Registry
from stockade.sandbox import Sandbox, SandboxConfig

# Unique to this suite: no other test module may share the run dir, the uids or the cgroup.
ENGINE_CONFIG = SandboxConfig(
    run_dir=Path("/run/stockade-t-engine"), slots=2, uid_base=64000, cgroup_name="stockade-t-engine"
)


@pytest.fixture(scope="session")
def registry() -> Registry:
    return Registry.default()


@pytest.fixture(scope="session")
def sandbox() -> Iterator[Sandbox]:
    # The slot pool is not bound to an event loop, so one sandbox serves every test's own loop.
    sb = Sandbox(ENGINE_CONFIG)
    sb.start()
    yield sb
    sb.reap()
    sb.close()  # and its read-only roots go


@pytest.fixture(scope="session")
def engine(sandbox: Sandbox, registry: Registry) -> Engine:
    return Engine(sandbox, registry)


def slot_uids(sb: Sandbox) -> range:
    return range(sb.config.uid_base, sb.config.uid_base + sb.config.slots)


def processes_of(uids: range) -> list[str]:
    """`pid (uids)` of every live host process whose real, effective, saved or fs uid is one of `uids`.

    Zombies are dead: a box's inner processes are reparented to the host's init when the box's pid
    namespace goes away, and linger as zombies until that init reaps them."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            status = Path(f"/proc/{entry}/status").read_text()
        except OSError:  # gone meanwhile
            continue
        fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
        if fields.get("State", "").split()[:1] in (["Z"], ["X"]):
            continue
        for line in status.splitlines():
            if line.startswith("Uid:"):
                ids = [int(x) for x in line.split()[1:]]
                if any(i in uids for i in ids):
                    found.append(f"{entry} {ids}")
                break
    return found


def assert_nothing_left(sb: Sandbox) -> None:
    """Invariant 2: no process of a slot uid and no box cgroup survives a finished execution (once the
    boxes built ahead are discarded too)."""
    sb.settle()
    assert processes_of(slot_uids(sb)) == []
    assert sb.cgroups is not None
    for parent in sb.cgroups.parents.values():
        assert sorted(p.name for p in parent.iterdir() if p.name.startswith("box-")) == []
    assert list((sb.config.run_dir / "boxes").iterdir()) == []
    assert sb.slots_in_use == 0
