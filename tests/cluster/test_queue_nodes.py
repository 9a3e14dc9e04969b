"""A cluster on one machine: API nodes (`serve --redis-url`) and `stockade worker`s on one private PostgreSQL
and one private Redis. Every submission finished once with its verdict, in the results and in the audit
trail; quotas and rate limits held across the API nodes; /v1/execute through the queue."""

from __future__ import annotations

import json
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import httpx

from tests.cluster.nodes import Cluster, bearer, running, submit, wait_finished
from tests.service.live import cli, make_key

# Program, expected (status, stdout or exit code): benign, failing, timing out, a compile error.
PROGRAMS = [
    ({"language": "python", "code": "print(6*7)"}, ("ok", "42\n")),
    ({"language": "python", "code": "import sys; sys.exit(3)"}, ("runtime_error", 3)),
    ({"language": "python", "code": "while True: pass", "limits": {"cpu_ms": 300, "wall_ms": 1000}}, ("timeout", None)),
    ({"language": "c", "code": "int main( { return 0; }"}, ("compile_error", None)),
]
MIX = [0] * 16 + [1] * 2 + [2] + [3]  # mostly benign, as real traffic is


def _expected(record: dict, index: int) -> None:
    status, detail = PROGRAMS[MIX[index % len(MIX)]][1]
    result = record["result"]
    assert record["error"] is None and result["status"] == status, record
    if status == "ok":
        assert result["stdout"] == detail
    elif status == "runtime_error":
        assert result["exit_code"] == detail


def _audit(cluster: Cluster) -> list[dict]:
    out = cli("audit", "export", data_dir=cluster.keys_dir).stdout
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def test_two_api_nodes_two_workers_run_every_submission_once(cluster: Cluster) -> None:
    token = make_key(cluster.keys_dir, "acme", rate_per_minute=100_000)
    bodies = [PROGRAMS[MIX[i % len(MIX)]][0] for i in range(500)]
    with (
        cluster.api("q-api-a", 69700) as a,
        cluster.api("q-api-b", 69710) as b,
        running(cluster.worker("q-work-a", 69720, slots=1)),
        running(cluster.worker("q-work-b", 69730, slots=1)),
    ):
        # Five batches of 100 through each API node at once.
        batches = [bodies[i : i + 50] for i in range(0, 500, 50)]
        with ThreadPoolExecutor(4) as pool:
            ids = [i for got in pool.map(lambda k: submit((a, b)[k % 2], token, batches[k]), range(10)) for i in got]
        assert len(set(ids)) == 500
        records = wait_finished(b, token, ids)  # read on one node, whichever took them
        for index, record in enumerate(records):
            assert record["id"] == ids[index]
            _expected(record, index)
        ran = httpx.post(f"{a.url}/v1/execute", json=PROGRAMS[0][0], headers=bearer(token), timeout=60)
        assert ran.status_code == 200 and ran.json()["stdout"] == "42\n", ran.text
        workers = Counter(r["result"]["execution_id"] for r in records)
        assert len(workers) == 500
    executions = [r for r in _audit(cluster) if r["kind"] == "execution"]
    per_submission = Counter(r["data"].get("submission") for r in executions)
    assert all(per_submission[i] == 1 for i in ids), [i for i in ids if per_submission[i] != 1][:5]
    assert len(executions) == 501  # and the /v1/execute
    assert cli("audit", "verify", data_dir=cluster.keys_dir).returncode == 0
