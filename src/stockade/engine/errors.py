"""Typed refusals: the request cannot be executed as asked. Verdicts of programs are results, not these."""

from __future__ import annotations


class EngineError(Exception):
    code = "INTERNAL_ERROR"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidRequest(EngineError):
    code = "INVALID_REQUEST"


class UnknownLanguage(EngineError):
    code = "UNKNOWN_LANGUAGE"


class ToolchainMissing(EngineError):
    code = "TOOLCHAIN_MISSING"


class LimitOutOfRange(EngineError):
    code = "LIMIT_OUT_OF_RANGE"


class PayloadTooLarge(EngineError):
    code = "PAYLOAD_TOO_LARGE"


class VersionUnavailable(ToolchainMissing):
    """No available toolchain of the language matches the requested version; `available` lists those that are.
    A ToolchainMissing (what a caller that knows no versions catches) with its own code."""

    code = "VERSION_UNAVAILABLE"

    def __init__(self, message: str, available: list[str]) -> None:
        super().__init__(message)
        self.available = available
