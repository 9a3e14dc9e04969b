"""The edges of the HTTP contract (docs/api.md), against a real `stockade serve`: wrong paths and methods,
an empty bearer in open mode and the end of open mode, strict limits and what the schema says of them,
and the rate-limit headers (docs/tenants.md)."""

from __future__ import annotations

import http.client
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from stockade.engine import LimitPolicy, StageLimits
from stockade.service.store import Store
from tests.service.live import LiveServer, live_server, metric

HELLO = {"language": "python", "code": "print('hello')"}


@pytest.fixture(scope="module")
def open_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """No API keys, loopback bind: open mode, and it stays so (no test here adds a key to it)."""
    with live_server("edges-open", uid_base=66800, data_dir=tmp_path_factory.mktemp("edges-open") / "data") as s:
        yield s


@pytest.fixture(scope="module")
def client(open_server: LiveServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=open_server.url, timeout=60) as c:
        yield c


def assert_error(r: httpx.Response, code: str, status: int) -> dict[str, Any]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/json")
    body = r.json()
    assert body["status"] == "failed" and body["error"] == code, body
    assert isinstance(body["message"], str) and body["message"]
    return body


# -- wrong paths, wrong methods ---------------------------------------------------------------------


@pytest.mark.parametrize("method", ["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"])
@pytest.mark.parametrize("path", ["/v1/nope", "/nope", "/v1/v1/execute", "/v1/runtimes/", "/index.htm"])
def test_an_unknown_path_is_not_found_whatever_the_method(client: httpx.Client, method: str, path: str) -> None:
    assert_error(client.request(method, path, json=HELLO), "NOT_FOUND", 404)


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        ("GET", "/v1/execute", "POST"),
        ("DELETE", "/execute", "POST"),
        ("PUT", "/v1/runtimes", "GET"),
        ("POST", "/healthz", "GET"),
        ("POST", "/", "GET, HEAD"),  # the playground's page
        ("POST", "/index.html", "GET, HEAD"),
    ],
)
def test_a_wrong_method_is_405_with_allow(client: httpx.Client, method: str, path: str, allow: str) -> None:
    r = client.request(method, path, json=HELLO)
    assert_error(r, "METHOD_NOT_ALLOWED", 405)
    assert r.headers["allow"] == allow


def test_the_playground_is_still_served(client: httpx.Client) -> None:
    r = client.get("/")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")


# -- open mode ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("header", ["Bearer ", "Bearer", "bearer   "])
def test_an_empty_bearer_in_open_mode_is_no_key(open_server: LiveServer, header: str) -> None:
    # What `-H "Authorization: Bearer $STOCKADE_API_KEY"` sends with the variable unset. (http.client, as
    # httpx refuses to send a header value with trailing spaces.)
    conn = http.client.HTTPConnection(open_server.host, open_server.port, timeout=60)
    try:
        conn.request(
            "POST", "/v1/execute", json.dumps(HELLO), {"Content-Type": "application/json", "Authorization": header}
        )
        r = conn.getresponse()
        assert r.status == 200, r.read()
        assert json.loads(r.read())["stdout"] == "hello\n"
    finally:
        conn.close()


def test_a_wrong_key_in_open_mode_is_still_refused(client: httpx.Client) -> None:
    r = client.post("/v1/execute", json=HELLO, headers={"Authorization": "Bearer sk_0000000000000000_x"})
    assert_error(r, "UNAUTHENTICATED", 401)
    assert_error(client.post("/v1/execute", json=HELLO, headers={"Authorization": "Basic abc"}), "UNAUTHENTICATED", 401)


def test_open_mode_ends_with_the_first_key(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    with (
        live_server("edges-keys", uid_base=66900, data_dir=data_dir) as server,
        httpx.Client(base_url=server.url, timeout=60) as c,
    ):
        assert c.get("/v1/diagnostics").json()["open_mode"] is True
        with Store(data_dir / "stockade.db") as st:
            st.create_tenant("admin", "admin")
            _, key = st.create_key("admin", "first")
        d = c.get("/v1/diagnostics", headers={"Authorization": f"Bearer {key}"}).json()
        assert d["open_mode"] is False
        # And an empty bearer is no longer enough: it is a missing key.
        assert_error(c.post("/v1/execute", json=HELLO, headers={"Authorization": "Bearer"}), "UNAUTHENTICATED", 401)
        assert_error(c.post("/v1/execute", json=HELLO), "UNAUTHENTICATED", 401)


# -- limits are strict integers, and the schema says so -----------------------------------------------


@pytest.mark.parametrize("value", [True, False, "100", "lots", 1.5, 100.0, [100], {"ms": 1}])
@pytest.mark.parametrize("field", ["limits", "compile_limits"])
def test_a_limit_that_is_not_an_integer_is_refused(client: httpx.Client, field: str, value: Any) -> None:
    before = metric(client.get("/metrics").text, "stockade_rejections_total", reason="limit_out_of_range")
    body = assert_error(client.post("/v1/execute", json={**HELLO, field: {"cpu_ms": value}}), "LIMIT_OUT_OF_RANGE", 422)
    assert f"{field}.cpu_ms" in body["message"]
    after = metric(client.get("/metrics").text, "stockade_rejections_total", reason="limit_out_of_range")
    assert after == before + 1


def test_a_bad_shape_beside_a_bad_limit_is_an_invalid_request(client: httpx.Client) -> None:
    r = client.post("/v1/execute", json={**HELLO, "limits": {"cpu_ms": True, "gpu": 1}})
    assert_error(r, "INVALID_REQUEST", 400)


def test_integer_limits_still_run(client: httpx.Client) -> None:
    r = client.post("/v1/execute", json={**HELLO, "limits": {"cpu_ms": 2000, "memory_mb": 128}})
    assert r.status_code == 200 and r.json()["status"] == "ok", r.text


def _component(schema: dict[str, Any], ref_holder: dict[str, Any]) -> dict[str, Any]:
    ref = next(s["$ref"] for s in ref_holder["anyOf"] if "$ref" in s)
    return dict(schema["components"]["schemas"][ref.rsplit("/", 1)[1]])


def test_the_schema_gives_each_limit_its_bounds_as_an_integer(client: httpx.Client) -> None:
    schema = client.get("/openapi.json").json()
    execute_in = schema["components"]["schemas"]["ExecuteIn"]
    policy = LimitPolicy()
    for field, stage in (("limits", policy.run), ("compile_limits", policy.compile)):
        limits = _component(schema, execute_in["properties"][field])
        assert list(limits["properties"]) == list(StageLimits.names())
        for name, prop in limits["properties"].items():
            integer = next(s for s in prop["anyOf"] if s.get("type") == "integer")
            assert (integer["minimum"], integer["maximum"]) == stage.bounds[name], (field, name)
            assert prop["description"] == StageLimits.docs()[name]


def test_the_schema_says_code_and_files_exclude_each_other(client: httpx.Client) -> None:
    jsonschema_rs = pytest.importorskip("jsonschema_rs")
    schema = client.get("/openapi.json").json()
    execute_in = {**schema["components"]["schemas"]["ExecuteIn"], "components": schema["components"]}
    text = jsonschema_rs.validator_for(_inline_refs(execute_in))
    file = {"name": "main.py", "content": "print(1)"}
    assert text.is_valid({"language": "python", "code": "print(1)"})
    assert text.is_valid({"language": "python", "files": [file]})
    assert text.is_valid({"language": "python", "code": None, "files": [file]})
    assert not text.is_valid({"language": "python", "code": "print(1)", "files": [file]})
    assert not text.is_valid({"language": "python"})
    # And the service agrees with the schema on each.
    assert_error(
        client.post("/v1/execute", json={"language": "python", "code": "1", "files": [file]}), "INVALID_REQUEST", 400
    )
    assert_error(client.post("/v1/execute", json={"language": "python"}), "INVALID_REQUEST", 400)


def _inline_refs(node: Any, root: dict[str, Any] | None = None) -> Any:
    """The schema with its `#/components/schemas/...` references replaced by what they name."""
    root = root if root is not None else node
    if isinstance(node, dict):
        if "$ref" in node:
            return _inline_refs(root["components"]["schemas"][node["$ref"].rsplit("/", 1)[1]], root)
        return {k: _inline_refs(v, root) for k, v in node.items() if k != "components"}
    if isinstance(node, list):
        return [_inline_refs(v, root) for v in node]
    return node


# -- rate-limit headers ---------------------------------------------------------------------------------


def test_rate_limit_headers_count_down_and_come_with_the_refusal(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir(mode=0o700)
    with Store(data_dir / "stockade.db") as st:
        st.create_tenant("acme", "acme", rate_per_minute=3)
        _, key = st.create_key("acme", "test")
    auth = {"Authorization": f"Bearer {key}"}
    with (
        live_server("edges-rate", uid_base=66950, data_dir=data_dir, slots=1) as server,
        httpx.Client(base_url=server.url, timeout=60) as c,
    ):
        ok = c.post("/v1/execute", json=HELLO, headers=auth)
        assert ok.status_code == 200
        assert (ok.headers["x-ratelimit-limit"], ok.headers["x-ratelimit-remaining"]) == ("3", "2")
        # A request refused after the rate limit counted it says so too.
        unknown = c.post("/v1/execute", json={"language": "cobol-2077", "code": "1"}, headers=auth)
        assert_error(unknown, "UNKNOWN_LANGUAGE", 404)
        assert unknown.headers["x-ratelimit-remaining"] == "1"
        invalid = c.post("/v1/execute", json={"language": "python"}, headers=auth)
        assert_error(invalid, "INVALID_REQUEST", 400)
        assert invalid.headers["x-ratelimit-remaining"] == "0"
        refused = c.post("/v1/execute", json=HELLO, headers=auth)
        assert_error(refused, "RATE_LIMITED", 429)
        assert refused.headers["x-ratelimit-limit"] == "3" and refused.headers["x-ratelimit-remaining"] == "0"
        assert 1 <= int(refused.headers["retry-after"]) <= 60
        # Not counted: no headers.
        assert "x-ratelimit-limit" not in c.get("/healthz").headers
        assert "x-ratelimit-limit" not in c.post("/v1/execute", json=HELLO).headers  # no key: refused first
