"""The sandbox layer: run one untrusted command in a fresh, kernel-limited, fully accounted box."""

from stockade.sandbox.pool import CallerRuns
from stockade.sandbox.runner import Sandbox, SandboxBusy, SandboxConfig, SandboxUnavailable
from stockade.sandbox.spec import BoxResult, BoxSpec, InputFile, Limits, OutputFile, Status, TimeoutKind
from stockade.sandbox.supervise import LiveIO

__all__ = [
    "BoxResult",
    "BoxSpec",
    "CallerRuns",
    "InputFile",
    "Limits",
    "LiveIO",
    "OutputFile",
    "Sandbox",
    "SandboxBusy",
    "SandboxConfig",
    "SandboxUnavailable",
    "Status",
    "TimeoutKind",
]
