"""What the store holds, as values: tenants and their limit ceilings, API keys (metadata only), the
quota state of a tenant's day, and the store's errors. store.py reads and writes them."""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, fields
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Final, Literal

from stockade.engine.model import StageLimits
from stockade.sandbox.netpolicy import NetworkPolicy


class StoreError(Exception):
    """Base class of store errors."""


class NotFoundError(StoreError, LookupError):
    """The tenant or key does not exist."""


class ConflictError(StoreError):
    """The tenant or key already exists."""


class _Unset(enum.Enum):
    UNSET = enum.auto()


UNSET: Final = _Unset.UNSET  # "leave unchanged" in update_tenant, where None means "no limit"


@dataclass(frozen=True)
class TenantLimits(StageLimits):
    """Per-tenant ceilings on the limits a caller may set (the fields of the engine's StageLimits); None
    means the server maximum applies."""

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            # bool is an int subclass; reject it so `True` never means 1 ms.
            if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value <= 0):
                raise ValueError(f"max_limits.{f.name} must be a positive integer or None, got {value!r}")

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> TenantLimits:
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown max_limits keys: {sorted(unknown)}")
        return cls(**dict(data))

    def to_dict(self) -> dict[str, int | None]:
        return asdict(self)


@dataclass(frozen=True)
class Tenant:
    id: str
    name: str
    created_at: datetime
    disabled: bool
    max_limits: TenantLimits
    allowed_languages: tuple[str, ...] | None  # None = every installed language
    rate_per_minute: int
    executions_per_day: int | None  # None = unlimited
    cpu_seconds_per_day: float | None  # None = unlimited
    network_allow: tuple[str, ...] = ()  # the egress allowlist its runs may ask for; () = no network

    def allows_language(self, language: str) -> bool:
        return self.allowed_languages is None or language in self.allowed_languages

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "created_at": self.created_at.isoformat(),
            "disabled": self.disabled,
            "max_limits": self.max_limits.to_dict(),
            "allowed_languages": list(self.allowed_languages) if self.allowed_languages is not None else None,
            "rate_per_minute": self.rate_per_minute,
            "executions_per_day": self.executions_per_day,
            "cpu_seconds_per_day": self.cpu_seconds_per_day,
            "network_allow": list(self.network_allow),
        }


@dataclass(frozen=True)
class ApiKey:
    """Key metadata; the secret itself is never stored or returned."""

    key_id: str
    tenant_id: str
    name: str
    created_at: datetime
    revoked_at: datetime | None

    @property
    def revoked(self) -> bool:
        return self.revoked_at is not None

    def to_json(self) -> dict[str, Any]:
        return {
            "key_id": self.key_id,
            "tenant_id": self.tenant_id,
            "name": self.name,
            "created_at": self.created_at.isoformat(),
            "revoked_at": self.revoked_at.isoformat() if self.revoked_at else None,
        }


@dataclass(frozen=True)
class AuthContext:
    tenant: Tenant
    key_id: str


QuotaName = Literal["executions", "cpu_seconds"]


@dataclass(frozen=True)
class QuotaState:
    tenant_id: str
    day: date  # UTC day the counters belong to
    executions_used: int
    executions_limit: int | None
    cpu_seconds_used: float
    cpu_seconds_limit: float | None
    exceeded_by: QuotaName | None  # first quota that is used up, or None

    @property
    def exceeded(self) -> bool:
        return self.exceeded_by is not None

    @property
    def resets_at(self) -> datetime:
        return datetime.combine(self.day + timedelta(days=1), time(0), tzinfo=UTC)

    def to_json(self) -> dict[str, Any]:
        return {
            "day": self.day.isoformat(),
            "executions_used": self.executions_used,
            "executions_limit": self.executions_limit,
            "cpu_seconds_used": self.cpu_seconds_used,
            "cpu_seconds_limit": self.cpu_seconds_limit,
            "exceeded": self.exceeded_by,
            "resets_at": self.resets_at.isoformat(),
        }


def as_limits(value: TenantLimits | Mapping[str, int | None] | None) -> TenantLimits:
    if value is None:
        return TenantLimits()
    if isinstance(value, TenantLimits):
        return value
    return TenantLimits.from_mapping(value)


def check_tenant_fields(
    *,
    name: str | None = None,
    rate_per_minute: int | None = None,
    executions_per_day: int | None = None,
    cpu_seconds_per_day: float | None = None,
    allowed_languages: Sequence[str] | None = None,
    network_allow: Sequence[str] | None = None,
) -> None:
    """ValueError for the first given field that is out of its domain."""
    if network_allow is not None:
        if isinstance(network_allow, str):
            raise ValueError("network_allow must be a list of entries, not a string")
        NetworkPolicy.parse(network_allow)  # names the first bad entry
    if name is not None and not name.strip():
        raise ValueError("tenant name must not be empty")
    if rate_per_minute is not None and (
        not isinstance(rate_per_minute, int) or isinstance(rate_per_minute, bool) or rate_per_minute < 1
    ):
        raise ValueError("rate_per_minute must be an integer >= 1")
    if executions_per_day is not None and (
        not isinstance(executions_per_day, int) or isinstance(executions_per_day, bool) or executions_per_day < 0
    ):
        raise ValueError("executions_per_day must be an integer >= 0 or None")
    if cpu_seconds_per_day is not None and (
        isinstance(cpu_seconds_per_day, bool) or not isinstance(cpu_seconds_per_day, int | float)
    ):
        raise ValueError("cpu_seconds_per_day must be a number >= 0 or None")
    if cpu_seconds_per_day is not None and not cpu_seconds_per_day >= 0:  # also rejects NaN
        raise ValueError("cpu_seconds_per_day must be a number >= 0 or None")
    if allowed_languages is not None:
        if isinstance(allowed_languages, str):
            raise ValueError("allowed_languages must be a list of language ids, not a string")
        if any(not isinstance(lang, str) or not lang for lang in allowed_languages):
            raise ValueError("allowed_languages entries must be non-empty strings")
