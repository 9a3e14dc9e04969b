"""What the host offers for boxes, and whether a safe box can be built here (fail closed)."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from stockade.sandbox.netpolicy import NetworkPolicy
from stockade.sandbox.runner import Sandbox, SandboxConfig, SandboxUnavailable
from stockade.sandbox.spec import BoxSpec, Limits, Status


@dataclass
class HostReport:
    ok: bool
    problems: list[str] = field(default_factory=list)  # a safe box cannot be built: refuse to serve
    warnings: list[str] = field(default_factory=list)  # boxes are safe, but a defence is weaker here
    facts: dict[str, Any] = field(default_factory=dict)


def _bwrap_version(bwrap: str) -> str | None:
    path = shutil.which(bwrap)
    if path is None:
        return None
    out = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=10, check=False)
    return out.stdout.strip() or None


CAP_SYS_RESOURCE = 24
# The box tries to undo the launcher's oom_score_adj of 1000 and says what it has afterwards.
OOM_PROBE = ["/bin/sh", "-c", "echo 0 > /proc/self/oom_score_adj 2>/dev/null; cat /proc/self/oom_score_adj"]
OOM_UNPINNED = (
    "a box can lower its OOM score (oom_score_adj 1000 -> 0): {cause}; in a host-wide out-of-memory kill "
    "its processes are then no longer the first victims and a larger host process (often the service) may "
    "go first. Grant CAP_SYS_RESOURCE to the service to pin it (see docs/sandbox.md)"
)


def _has_capability(cap: int) -> bool:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("CapEff:"):
                return bool(int(line.split()[1], 16) >> cap & 1)
    return False


def _oom_cause() -> str:
    if _has_capability(CAP_SYS_RESOURCE):
        return "the supervisor holds CAP_SYS_RESOURCE, yet the launcher's write did not pin the minimum"
    return (
        "the supervisor lacks CAP_SYS_RESOURCE (a container's default set, or a systemd CapabilityBoundingSet), "
        "so the launcher's write of 1000 does not set the kernel's oom_score_adj_min"
    )


def _swap_active() -> bool:
    with open("/proc/swaps") as f:
        return len(f.read().strip().splitlines()) > 1


# Its own instance, so a check never collides with a running service's boxes.
PROBE_POLICY = NetworkPolicy.parse(["stockade.invalid"])
CHECK_CONFIG = SandboxConfig(run_dir=Path("/run/stockade-check"), slots=1, uid_base=61900, cgroup_name="stockade-check")


async def check_host(config: SandboxConfig | None = None, *, probe_run: bool = True) -> HostReport:
    """Start a sandbox and, unless told otherwise, run one real box to prove the whole path works."""
    config = config or CHECK_CONFIG
    report = HostReport(ok=False)
    facts = report.facts
    facts["bubblewrap"] = _bwrap_version(config.bwrap)
    facts["euid"] = os.geteuid()
    with open("/proc/sys/user/max_user_namespaces") as f:
        facts["max_user_namespaces"] = int(f.read())
    facts["seccomp"] = os.path.exists("/proc/sys/kernel/seccomp/actions_avail")
    facts["slots"] = config.slots
    facts["slot_uids"] = f"{config.uid_base}-{config.uid_base + config.slots - 1}"
    if facts["max_user_namespaces"] == 0:
        report.problems.append("user namespaces are disabled (user.max_user_namespaces = 0)")
    if not facts["seccomp"]:
        report.problems.append("the kernel offers no seccomp filter support")
    sandbox = Sandbox(config)
    try:
        sandbox.start()
    except SandboxUnavailable as e:
        report.problems.append(str(e))
        return report
    assert sandbox.cgroups is not None
    facts["cgroup"] = sandbox.cgroups.describe()
    memory = sandbox.cgroups.parents.get("memory")  # v1 only; v2 has memory.swap.max
    swap_limited = sandbox.cgroups.mode == "v2" or bool(memory and (memory / "memory.memsw.limit_in_bytes").exists())
    facts["swap_active"] = _swap_active()
    if facts["swap_active"] and not swap_limited:
        report.problems.append("swap is on and this cgroup setup cannot limit it (enable swapaccount)")
    if probe_run and not report.problems:
        await _probe(sandbox, report)
    else:
        facts["oom_score_pinned"] = _has_capability(CAP_SYS_RESOURCE)  # what the launcher inherits as root
    if facts.get("oom_score_pinned") is False:
        report.warnings.append(OOM_UNPINNED.format(cause=_oom_cause()))
    report.ok = not report.problems
    sandbox.close()
    return report


async def _probe(sandbox: Sandbox, report: HostReport) -> None:
    """One real box proves the whole path; a second one tries to undo its OOM score."""
    result = await sandbox.run(BoxSpec(argv=["/bin/true"], limits=Limits(wall_ms=5000)))
    report.facts["probe_run"] = {"status": result.status.value, "wall_time_ms": result.wall_time_ms}
    if result.status is not Status.OK:
        report.problems.append(f"a probe box failed: {result.status.value} {result.error or ''}".strip())
        return
    oom = await sandbox.run(BoxSpec(argv=OOM_PROBE, limits=Limits(wall_ms=5000)))
    if oom.status is not Status.OK:
        report.problems.append(f"the OOM score probe box failed: {oom.status.value} {oom.error or ''}".strip())
        return
    report.facts["oom_score_pinned"] = oom.stdout.strip() == b"1000"
    # A box with a policy starts behind its forwarder and proxy (docs/network.md); one that cannot
    # fails its run, so a request for network never gets an open one.
    egress = await sandbox.run(BoxSpec(argv=["/bin/true"], limits=Limits(wall_ms=5000), network=PROBE_POLICY))
    report.facts["egress"] = {"mechanism": "proxy", "probe": egress.status.value}
    if egress.status is not Status.OK:
        report.warnings.append(f"a box with an egress policy failed ({egress.error or egress.status.value}): "
                               "requests for network will fail")  # fmt: skip


def check_host_sync(config: SandboxConfig | None = None) -> HostReport:
    return asyncio.run(check_host(config))
