"""Fixtures of the whole suite: no test leaves a box instance or a toolchain probe dir behind.

Every in-process Sandbox.start() declares its instance (tests/residue.py; live servers declare theirs in
tests/service/live.py). After each test, each module and the session, what nothing holds any more is
removed, and anything of a box still there, or a cgroup or run dir that cannot go, fails that test.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from stockade.sandbox import Sandbox
from tests import residue
from tests.receiver import receiver  # noqa: F401 (the webhook receiver fixture, for every suite)


def _no_residue(final: bool = False) -> None:
    problems = residue.sweep(final=final)
    assert not problems, "left on the host:\n" + "\n".join(problems)


@pytest.fixture(scope="session", autouse=True)
def _session_leaves_nothing() -> Iterator[None]:
    start = Sandbox.start

    def tracked_start(self: Sandbox) -> None:
        residue.track(self.config.run_dir, self.config.cgroup_name)
        start(self)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(Sandbox, "start", tracked_start)
        yield
    _no_residue(final=True)


@pytest.fixture(scope="module", autouse=True)
def _module_leaves_nothing() -> Iterator[None]:
    yield
    _no_residue()


@pytest.fixture(autouse=True)
def _test_leaves_nothing() -> Iterator[None]:
    yield
    _no_residue()
