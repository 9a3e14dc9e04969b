"""The sandbox layer: run one untrusted command in a fresh, kernel-limited, fully accounted box."""

from stockade.sandbox.runner import CallerRuns, Sandbox, SandboxBusy, SandboxConfig, SandboxUnavailable
from stockade.sandbox.spec import BoxResult, BoxSpec, InputFile, Limits, OutputFile, Status, TimeoutKind

__all__ = [
    "BoxResult",
    "BoxSpec",
    "CallerRuns",
    "InputFile",
    "Limits",
    "OutputFile",
    "Sandbox",
    "SandboxBusy",
    "SandboxConfig",
    "SandboxUnavailable",
    "Status",
    "TimeoutKind",
]
