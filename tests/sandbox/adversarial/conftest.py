"""Fixtures of the adversarial suite. Every test gets `adv`; when the test ends, the global oracle of
attack-catalogue.md section 0 runs (stockade_adv_harness.Oracle.verify) and fails the test on any breach."""

from __future__ import annotations

import contextlib
import importlib.util
import shutil
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest


def _load_harness():  # type: ignore[no-untyped-def]
    """By path, under one unique name, so tests/sandbox/test_concurrency.py shares the same module."""
    name = "stockade_adv_harness"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, Path(__file__).with_name(f"{name}.py"))
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


H = _load_harness()

from stockade.sandbox import Sandbox, SandboxUnavailable  # noqa: E402
from stockade.sandbox.bwrap import synthetic_etc  # noqa: E402

# Own run dir, cgroup name and uid range: other sessions on this machine use the defaults.
ADV_NAME = "stockade-adv"
ADV_UID_BASE = 62000
ADV_SLOTS = 2


@pytest.fixture(scope="session")
def adv_secrets() -> Iterator[H.Secrets]:
    planted = H.Secrets()
    planted.plant()
    yield planted
    planted.remove()


@pytest.fixture(scope="session")
def adv_listeners() -> Iterator[H.Listeners]:
    listeners = H.Listeners()
    yield listeners
    listeners.close()


@pytest.fixture(scope="session")
def adv_sandbox(adv_secrets: H.Secrets) -> Iterator[Sandbox]:
    # adv_secrets first: the canary env var must be in os.environ before any box is spawned.
    config = H.sandbox_config(ADV_NAME, ADV_UID_BASE, ADV_SLOTS)
    sandbox = Sandbox(config)
    try:
        sandbox.start()
    except SandboxUnavailable as e:  # a host that cannot build a box must fail the suite, not skip it
        pytest.fail(f"sandbox unavailable: {e}")
    yield sandbox
    assert sandbox.cgroups is not None
    parents = sandbox.cgroups.parents.values()
    sandbox.reap()
    sandbox.close()  # unmounts its read-only root before the run dir is removed
    shutil.rmtree(config.run_dir, ignore_errors=True)
    for parent in parents:
        with contextlib.suppress(OSError):
            parent.rmdir()


@pytest.fixture(scope="session")
def adv_oracle(adv_sandbox: Sandbox, adv_secrets: H.Secrets, adv_listeners: H.Listeners) -> H.Oracle:
    # CR-06: the box identity files in every box's read-only root are policy artefacts; they must not change.
    etc = adv_sandbox.root / "etc"
    adv_secrets.watch(sorted(etc / name for name in synthetic_etc()))
    oracle = H.Oracle(adv_sandbox, adv_secrets, adv_listeners)
    problems = oracle.precondition_problems()
    if problems:
        pytest.fail("; ".join(problems))
    return oracle


@pytest.fixture(scope="session")
def adv_compiler(tmp_path_factory: pytest.TempPathFactory) -> H.Compiler:
    return H.Compiler(tmp_path_factory.mktemp("adv-bin"))


@pytest.fixture
async def adv(adv_oracle: H.Oracle, adv_compiler: H.Compiler) -> AsyncIterator[H.Adversary]:
    handle = H.Adversary(adv_oracle, adv_compiler)
    handle._before = adv_oracle.snapshot()
    yield handle
    await adv_oracle.verify(handle._before, handle.results)
