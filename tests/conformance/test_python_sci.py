"""The Python for agents (python-sci): the scientific stack imports, and a Matplotlib picture drawn with
the Agg backend comes back through `collect` as a real PNG."""

from __future__ import annotations

import struct
from collections.abc import Iterator
from pathlib import Path

import pytest

from stockade.engine import Engine, ExecutionRequest, Verdict
from stockade.runtimes.registry import Registry
from stockade.sandbox import Sandbox, SandboxConfig

PLOT = """
import numpy as np, pandas as pd, scipy.stats as st
import matplotlib
import matplotlib.pyplot as plt
x = np.linspace(0, 2 * np.pi, 100)
frame = pd.DataFrame({"x": x, "y": np.sin(x)})
fig, ax = plt.subplots(figsize=(4, 3), dpi=50)
ax.plot(frame.x, frame.y)
fig.savefig("plot.png")
print(matplotlib.get_backend(), round(float(st.norm.cdf(0)), 2), round(float(frame.y.max()), 2))
"""


@pytest.fixture(scope="module")
def engine() -> Iterator[Engine]:
    config = SandboxConfig(run_dir=Path("/run/stockade-t-sci"), slots=1, uid_base=63100, cgroup_name="stockade-t-sci")
    sandbox = Sandbox(config)
    sandbox.start()
    yield Engine(sandbox, Registry.default())
    sandbox.close()


async def test_a_plot_saved_comes_back_as_a_png(engine: Engine) -> None:
    tc = await engine.registry.detect(engine.registry.get("python-sci"))
    assert tc.available, f"python-sci needs its Debian packages (stockade toolchains install): {tc.detail}"
    result = await engine.execute(ExecutionRequest.from_code("python-sci", PLOT, collect=("*.png",)))
    assert result.status is Verdict.OK, result.run
    assert result.run is not None and result.run.stdout.decode().split() == ["agg", "0.5", "1.0"]
    assert result.outputs is not None
    (png,) = result.outputs.files
    assert png.path == "plot.png" and png.content[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", png.content[16:24])  # IHDR: figsize * dpi
    assert (width, height) == (200, 150)
