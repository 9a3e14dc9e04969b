"""deploy/systemd/stockade.service (and the worker's unit made from it): systemd-analyze verify finds nothing
to say about either, and the hardening they carry leaves the box intact (its capability set is the one a
real box is built with here)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests import residue

REPO = Path(__file__).resolve().parents[2]
UNIT = REPO / "deploy" / "systemd" / "stockade.service"
WORKER_SED = REPO / "deploy" / "systemd" / "worker.sed"
LAUNCHER = "/usr/local/bin/stockade"
# Each of these breaks the box (the unit's comments say why); none may be switched on.
BREAKS_THE_BOX = (
    "RestrictNamespaces",
    "ProtectKernelTunables",
    "ProtectControlGroups",
    "PrivateDevices",
    "ProtectProc",
    "MemoryDenyWriteExecute",
    "PrivateUsers",
)


def this_checkouts_stockade() -> Path:
    return Path(sys.executable).parent / "stockade"


def settings(text: str) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for line in text.splitlines():
        if "=" in line and not line.startswith(("#", "[")):
            key, _, value = line.partition("=")
            out.setdefault(key.strip(), []).append(value.strip())
    return out


def worker_unit() -> str:
    """stockade-worker.service as `make install` writes it."""
    sed = ["sed", "-f", str(WORKER_SED), str(UNIT)]
    return subprocess.run(sed, capture_output=True, text=True, check=True).stdout


@pytest.mark.parametrize("name", ["stockade.service", "stockade-worker.service"])
def test_the_unit_verifies_clean(tmp_path: Path, name: str) -> None:
    # Rendered against this checkout: verify checks that ExecStart's program exists and is executable,
    # and /usr/local/bin/stockade is `make setup`'s link, which a test host need not have.
    text = UNIT.read_text() if name == "stockade.service" else worker_unit()
    assert f"ExecStart={LAUNCHER} {'serve' if name == 'stockade.service' else 'worker'}" in text
    rendered = tmp_path / name
    rendered.write_text(text.replace(LAUNCHER, str(this_checkouts_stockade())))
    analyze = shutil.which("systemd-analyze")
    assert analyze, "systemd-analyze missing: `make test` installs the systemd package"
    p = subprocess.run([analyze, "verify", "--man=no", str(rendered)], capture_output=True, text=True, timeout=60)
    # An unknown key or a bad value is only a warning (exit 0): clean means nothing printed at all.
    assert (p.returncode, p.stdout, p.stderr) == (0, "", "")


def test_verify_would_see_a_mistake(tmp_path: Path) -> None:
    broken = tmp_path / "stockade.service"
    text = UNIT.read_text().replace(LAUNCHER, str(this_checkouts_stockade()))
    broken.write_text(text.replace("Delegate=yes", "Delegat=yes"))
    p = subprocess.run(["systemd-analyze", "verify", "--man=no", str(broken)], capture_output=True, text=True)
    assert "Unknown key 'Delegat'" in p.stderr


def test_no_hardening_that_breaks_the_box() -> None:
    unit = settings(UNIT.read_text())
    assert unit["Delegate"] == ["yes"]
    assert unit["KillMode"] == ["control-group"]
    for key in BREAKS_THE_BOX:
        assert unit.get(key, ["no"])[-1] in ("no", "false", "off"), key


def test_the_worker_unit_is_the_service_unit_on_a_run_dir_and_uids_of_its_own() -> None:
    serve, worker = settings(UNIT.read_text()), settings(worker_unit())
    changed = {key for key in serve.keys() | worker.keys() if serve.get(key) != worker.get(key)}
    assert changed == {"Description", "Documentation", "ExecStart", "Environment", "EnvironmentFile",
                       "RuntimeDirectory"}  # fmt: skip
    env = dict(pair.split("=", 1) for pair in worker["Environment"][0].split())
    assert worker["RuntimeDirectory"] == ["stockade-worker"] and env["STOCKADE_RUN_DIR"] == "/run/stockade-worker"
    assert int(env["STOCKADE_UID_BASE"]) >= 60000 + 1000  # past serve's default slots (uid 60000 on)


# Its own instance (run dir, uids, cgroup), so it never meets `stockade sandbox check` of another test.
# The check, then boxes that take a file in (its owner and mode are set as the slot's) and that end at a
# wall-clock limit: each capability in the unit is needed by one of these (docs/deploy.md).
BOXES = """
import asyncio, sys
from pathlib import Path
from stockade.sandbox import BoxSpec, InputFile, Limits, Sandbox, SandboxConfig
from stockade.sandbox.check import check_host

async def main() -> None:
    config = SandboxConfig(run_dir=Path(sys.argv[1]), slots=1, uid_base=69700, cgroup_name="stockade-unitcaps")
    report = await check_host(config)
    print("check", report.ok, report.problems)
    sandbox = Sandbox(config)
    sandbox.start()
    try:
        script = InputFile("hello.py", b"print('hello')")
        hello = await sandbox.run(BoxSpec(argv=["python3", "hello.py"], files=[script]))
        print("hello", hello.status.value, hello.stdout, hello.error)
        spin = await sandbox.run(BoxSpec(argv=["sh", "-c", "while :; do :; done"], limits=Limits(wall_ms=500)))
        print("spin", spin.status.value, spin.error)
    finally:
        sandbox.close()

asyncio.run(main())
"""


def test_a_safe_box_is_built_with_the_units_capabilities_alone() -> None:
    run_dir = Path("/run/stockade-unitcaps")  # slot uids must reach it: not under pytest's 0700 tmp
    residue.track(run_dir, "stockade-unitcaps")
    caps = settings(UNIT.read_text())["CapabilityBoundingSet"][-1].split()
    bounding = ",".join(["-all"] + ["+" + c.removeprefix("CAP_").lower() for c in caps])
    argv = ["setpriv", f"--bounding-set={bounding}", "--inh-caps=-all", sys.executable, "-c", BOXES]
    p = subprocess.run([*argv, str(run_dir)], capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stdout + p.stderr
    lines = p.stdout.splitlines()
    assert lines == ["check True []", "hello ok b'hello\\n' None", "spin timeout None"], p.stdout + p.stderr
