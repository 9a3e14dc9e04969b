"""The engine layer: one request in any language -> sandboxed compile and run stages -> one verdict."""

from stockade.engine.engine import Engine, Plan, check_file_name
from stockade.engine.errors import (
    EngineError,
    InvalidRequest,
    LimitOutOfRange,
    PayloadTooLarge,
    ToolchainMissing,
    UnknownLanguage,
    VersionUnavailable,
)
from stockade.engine.limits import LimitPolicy
from stockade.engine.model import ExecutionRequest, ExecutionResult, SourceFile, StageLimits, Verdict

__all__ = [
    "Engine",
    "EngineError",
    "ExecutionRequest",
    "ExecutionResult",
    "InvalidRequest",
    "LimitOutOfRange",
    "LimitPolicy",
    "PayloadTooLarge",
    "Plan",
    "SourceFile",
    "StageLimits",
    "ToolchainMissing",
    "UnknownLanguage",
    "Verdict",
    "VersionUnavailable",
    "check_file_name",
]
