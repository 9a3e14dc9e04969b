"""A request's `version` picks one of the language's toolchains; the result says which one ran."""

from __future__ import annotations

import pytest

from stockade.engine import Engine, ExecutionRequest, ToolchainMissing, Verdict, VersionUnavailable
from stockade.runtimes import Registry
from stockade.sandbox import Sandbox
from tests.engine.conftest import assert_nothing_left

GNUC = '#include <stdio.h>\nint main(void) { printf("%d.%d\\n", __GNUC__, __GNUC_MINOR__); return 0; }\n'


async def test_each_gcc_version_compiles_with_its_own_compiler(
    engine: Engine, registry: Registry, sandbox: Sandbox
) -> None:
    found = [t for t in await registry.detect_versions("c") if t.available]
    # make toolchains installs GCC 11 and 12 (bookworm's two).
    assert len(found) >= 2, [t.detail for t in await registry.detect_versions("c")]
    for toolchain in found:
        assert toolchain.version is not None
        result = await engine.execute(ExecutionRequest.from_code("c", GNUC, version=toolchain.version))
        assert result.status is Verdict.OK, result
        assert result.version == toolchain.version
        major, minor = toolchain.version.split(".")[:2]
        assert result.run is not None and result.run.stdout == f"{major}.{minor}\n".encode()
    newest = await engine.execute(ExecutionRequest.from_code("c", GNUC))
    assert newest.version == found[0].version  # no version: the newest available
    ranged = await engine.execute(ExecutionRequest.from_code("c", GNUC, version=f"<{found[0].version}"))
    assert ranged.version == found[1].version
    assert_nothing_left(sandbox)


async def test_unknown_version_lists_the_available_ones(engine: Engine, registry: Registry) -> None:
    available = [t.version for t in await registry.detect_versions("c") if t.available]
    with pytest.raises(VersionUnavailable) as info:
        await engine.execute(ExecutionRequest.from_code("c", GNUC, version="7"))
    assert info.value.code == "VERSION_UNAVAILABLE" and info.value.available == available
    assert "'7'" in info.value.message and ", ".join(v for v in available if v) in info.value.message
    assert isinstance(info.value, ToolchainMissing)  # what a caller that knows no versions catches
