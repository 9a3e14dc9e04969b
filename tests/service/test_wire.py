"""The wire models are derived from the engine's one declaration of the per-stage limits."""

from __future__ import annotations

import pytest
from pydantic import BaseModel

from stockade.engine import StageLimits
from stockade.service.store import TenantLimits
from stockade.service.wire import CompileLimitsIn, ExecuteIn, RunLimitsIn


@pytest.mark.parametrize("model", [RunLimitsIn, CompileLimitsIn])
def test_the_wire_limits_are_the_engines_fields_with_their_descriptions(model: type[BaseModel]) -> None:
    schema = model.model_json_schema()
    assert list(schema["properties"]) == list(StageLimits.names())
    assert {n: p["description"] for n, p in schema["properties"].items()} == StageLimits.docs()
    assert schema["additionalProperties"] is False


def test_tenant_ceilings_are_stage_limits() -> None:
    assert issubclass(TenantLimits, StageLimits)
    assert TenantLimits(cpu_ms=5).as_dict() == {**StageLimits().as_dict(), "cpu_ms": 5}


def test_a_body_translates_its_limits_by_name() -> None:
    body = ExecuteIn.model_validate({"language": "python", "code": "", "limits": {"cpu_ms": 7, "file_size_kb": 9}})
    assert body.limits is not None
    assert body.limits.model_dump() == {**StageLimits().as_dict(), "cpu_ms": 7, "file_size_kb": 9}
