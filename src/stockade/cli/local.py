"""Boxes for commands that run code in this process (`stockade run`, `stockade sandbox run`)."""

from __future__ import annotations

import os
from pathlib import Path

from stockade.cli.errors import fail
from stockade.sandbox import Sandbox, SandboxBusy, SandboxConfig, SandboxUnavailable

LOCAL_INSTANCES = 8
LOCAL_UID_BASE = 61000


def local_sandbox(slots: int | None = None, shared_ro_paths: tuple[str, ...] = ()) -> Sandbox:
    """The first free local instance: each has its own run dir, cgroup and uid range, so several local
    commands (and a service on the defaults) never reap each other's boxes. A command's runs all start
    at once, so no box is built ahead: it would only be discarded. Close it when done."""
    for k in range(LOCAL_INSTANCES):
        config = SandboxConfig(
            run_dir=Path(f"/run/stockade-cli-{k}"),
            cgroup_name=f"stockade-cli-{k}",
            uid_base=LOCAL_UID_BASE + 100 * k,
            slots=slots or os.cpu_count() or 1,
            build_ahead=False,
            shared_ro_paths=shared_ro_paths,
        )
        sandbox = Sandbox(config)
        try:
            sandbox.start()
            return sandbox
        except SandboxBusy:
            continue
        except SandboxUnavailable as e:
            fail(f"cannot build a safe box: {e}", exit_code=2)
    fail(f"all {LOCAL_INSTANCES} local sandbox instances are busy", exit_code=2)
