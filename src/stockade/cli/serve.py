"""`stockade serve`: the HTTP service on an embedded default (SQLite file, no other server)."""

from __future__ import annotations

import contextlib
import os
import signal
from pathlib import Path
from types import FrameType
from typing import Annotated

import typer

from stockade.sandbox import SandboxConfig, SandboxUnavailable

DATA_DIR = Path(os.environ.get("STOCKADE_DATA_DIR", "/var/lib/stockade"))


def serve(
    host: Annotated[str, typer.Option(envvar="STOCKADE_HOST", help="Bind address")] = "127.0.0.1",
    port: Annotated[int, typer.Option(envvar="STOCKADE_PORT", help="Port")] = 8000,
    data_dir: Annotated[Path, typer.Option(envvar="STOCKADE_DATA_DIR", help="SQLite file and audit key")] = DATA_DIR,
    slots: Annotated[int, typer.Option(envvar="STOCKADE_SLOTS", help="Boxes running at once")] = os.cpu_count() or 1,
    queue: Annotated[int, typer.Option(envvar="STOCKADE_QUEUE", help="Requests that may wait for a slot")] = 8,
    run_dir: Annotated[Path, typer.Option(envvar="STOCKADE_RUN_DIR", help="Per-box host dirs")] = Path("/run/stockade"),
    uid_base: Annotated[int, typer.Option(envvar="STOCKADE_UID_BASE", help="Host uid of slot 0")] = 60000,
    cgroup_name: Annotated[
        str, typer.Option(envvar="STOCKADE_CGROUP", help="cgroup under the service's own")
    ] = "stockade",
    drain_seconds: Annotated[float, typer.Option(envvar="STOCKADE_DRAIN_SECONDS", help="SIGTERM grace")] = 30.0,
) -> None:
    """Start the service. Refuses to start, naming why, when the host cannot build a safe box."""
    # The web stack loads only for this command, so `stockade run` and friends start fast.
    import uvicorn

    from stockade.service.app import Service, StartupRefused, create_app
    from stockade.service.config import ServiceConfig
    from stockade.service.telemetry import setup_logging

    class DrainingServer(uvicorn.Server):
        """SIGTERM first stops admission (503 with Retry-After), then uvicorn drains connections."""

        def handle_exit(self, sig: int, frame: FrameType | None) -> None:
            service.draining = True
            super().handle_exit(sig, frame)
            # A completed drain is a clean exit (status 0); uvicorn would re-raise the signal afterwards.
            self._captured_signals.clear()

        def capture_signals(self) -> contextlib._GeneratorContextManager[None]:
            # uvicorn restores the handlers it found once serving ends. Make those "ignore": past that
            # point the process is only exiting, and a late signal must not turn a clean exit into -15.
            for sig in (signal.SIGTERM, signal.SIGINT):
                signal.signal(sig, signal.SIG_IGN)
            return super().capture_signals()

    setup_logging()
    config = ServiceConfig(
        host=host,
        port=port,
        data_dir=data_dir,
        sandbox=SandboxConfig(run_dir=run_dir, slots=slots, uid_base=uid_base, cgroup_name=cgroup_name),
        queue_size=queue,
        drain_seconds=drain_seconds,
    )
    service = Service(config)
    app = create_app(service=service)
    uv = uvicorn.Config(
        app, host=host, port=port, log_config=None, access_log=False, timeout_graceful_shutdown=int(drain_seconds) + 1
    )
    server = DrainingServer(uv)
    try:
        service.start()
    except (SandboxUnavailable, StartupRefused) as e:
        typer.echo(f"stockade: cannot start: {e}", err=True)
        raise typer.Exit(2) from e
    server.run()
    if not server.started:
        raise typer.Exit(2)
