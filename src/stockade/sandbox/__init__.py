"""The sandbox layer: run one untrusted command in a fresh, kernel-limited, fully accounted box."""

from stockade.sandbox.runner import Sandbox, SandboxConfig, SandboxUnavailable
from stockade.sandbox.spec import BoxResult, BoxSpec, InputFile, Limits, OutputFile, Status, TimeoutKind

__all__ = [
    "BoxResult",
    "BoxSpec",
    "InputFile",
    "Limits",
    "OutputFile",
    "Sandbox",
    "SandboxConfig",
    "SandboxUnavailable",
    "Status",
    "TimeoutKind",
]
