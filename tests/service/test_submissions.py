"""POST /v1/submissions against a live server: queued at once, read back (with a bounded wait) as the body
/v1/execute answers, batches whole or refused whole, per tenant, each audited once (docs/api.md)."""

from __future__ import annotations

import base64
import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from stockade.service.store import Store
from tests.service.live import LiveServer, live_server

WAIT = {"wait_ms": 60_000}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    data_dir = tmp_path_factory.mktemp("submissions") / "data"
    data_dir.mkdir(mode=0o700)
    with Store(data_dir / "stockade.db") as st:
        for tenant, opts in (("acme", {}), ("other", {}), ("frugal", {"executions_per_day": 2})):
            st.create_tenant(tenant, tenant, rate_per_minute=10_000, **opts)
    with live_server("submissions", uid_base=69900, data_dir=data_dir, slots=2) as s:
        yield s


def key(server: LiveServer, tenant: str) -> dict[str, str]:
    with Store(server.data_dir / "stockade.db") as st:
        return {"Authorization": f"Bearer {st.create_key(tenant, 'test')[1]}"}


@pytest.fixture(scope="module")
def acme(server: LiveServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, headers=key(server, "acme"), timeout=90) as c:
        yield c


def finished(client: httpx.Client, submission_id: str) -> dict[str, Any]:
    reply = client.get(f"/v1/submissions/{submission_id}", params=WAIT)
    assert reply.status_code == 200, reply.text
    record = reply.json()
    assert record["state"] == "finished", record
    return dict(record)


def test_one_submission_is_queued_then_read_as_execute_answers_it(acme: httpx.Client) -> None:
    queued = acme.post("/v1/submissions", json={"language": "python", "code": "print(input()[::-1])", "stdin": "abc"})
    assert queued.status_code == 202 and queued.json()["state"] == "queued"
    assert queued.headers["X-RateLimit-Limit"] == "10000"
    record = acme.get(f"/v1/submissions/{queued.json()['id']}", params={"wait": "true"}).json()
    assert record["state"] == "finished", record  # wait=true: up to the node's limit (60 s)
    direct = acme.post("/v1/execute", json={"language": "python", "code": "print(input()[::-1])", "stdin": "abc"})
    assert record["result"]["stdout"] == "cba\n" and record["error"] is None
    assert set(record["result"]) == set(direct.json())  # the same body /v1/execute answers
    assert record["created_at"] <= record["started_at"] <= record["finished_at"]


def test_a_batch_runs_every_submission_to_its_own_verdict(acme: httpx.Client) -> None:
    programs = [
        ({"language": "python", "code": "print(6*7)"}, "ok"),
        ({"language": "c", "code": "int main(void) { return 3; }"}, "runtime_error"),
        ({"language": "c", "code": "int main(void) { return }"}, "compile_error"),
        ({"language": "python", "code": "while True: pass", "limits": {"cpu_ms": 200}}, "timeout"),
        ({"language": "python", "code": "print('x')", "output_encoding": "base64"}, "ok"),
    ]
    queued = acme.post("/v1/submissions", json={"submissions": [p for p, _ in programs]})
    assert queued.status_code == 202
    ids = [s["id"] for s in queued.json()["submissions"]]
    assert len(set(ids)) == len(programs)
    verdicts = [finished(acme, i)["result"]["status"] for i in ids]
    assert verdicts == [v for _, v in programs]
    assert base64.b64decode(finished(acme, ids[4])["result"]["stdout"]) == b"x\n"
    listed = acme.get("/v1/submissions", params={"ids": ",".join([ids[1], "f" * 32, ids[0]])}).json()["submissions"]
    assert [s["id"] for s in listed] == [ids[1], "f" * 32, ids[0]]
    assert listed[1] == {"id": "f" * 32, "error": "SUBMISSION_NOT_FOUND"} and listed[2]["result"]["stdout"] == "42\n"


@pytest.mark.parametrize(
    ("bad", "code", "status"),
    [
        ({"language": "klingon", "code": "x"}, "UNKNOWN_LANGUAGE", 404),
        ({"language": "python"}, "INVALID_REQUEST", 400),
        ({"language": "python", "code": "1", "limits": {"cpu_ms": 10**9}}, "LIMIT_OUT_OF_RANGE", 422),
        ({"language": "python", "code": "1", "workspace": "w" * 32}, "INVALID_REQUEST", 400),
    ],
)
def test_a_batch_with_one_bad_submission_queues_none(
    server: LiveServer, bad: dict[str, Any], code: str, status: int
) -> None:
    with httpx.Client(base_url=server.url, headers=key(server, "frugal"), timeout=60) as c:
        reply = c.post("/v1/submissions", json={"submissions": [{"language": "python", "code": "print(1)"}, bad]})
        assert reply.status_code == status and reply.json()["error"] == code, reply.text
        assert "submissions" in reply.json()["message"]


def test_a_batch_over_the_quota_is_refused_whole_and_runs_nothing(server: LiveServer) -> None:
    with httpx.Client(base_url=server.url, headers=key(server, "frugal"), timeout=90) as c:
        three = {"submissions": [{"language": "python", "code": f"print({i})"} for i in range(3)]}
        refused = c.post("/v1/submissions", json=three)
        assert refused.status_code == 429 and refused.json()["error"] == "QUOTA_EXCEEDED"
        two = c.post("/v1/submissions", json={"submissions": three["submissions"][:2]})
        assert two.status_code == 202, two.text  # the refused batch used none of the 2 a day
        assert [finished(c, s["id"])["result"]["stdout"] for s in two.json()["submissions"]] == ["0\n", "1\n"]
        assert c.post("/v1/submissions", json=three["submissions"][0]).json()["error"] == "QUOTA_EXCEEDED"


def test_a_tenant_reads_only_its_own_submissions(server: LiveServer, acme: httpx.Client) -> None:
    mine = acme.post("/v1/submissions", json={"language": "python", "code": "print('mine')"}).json()["id"]
    finished(acme, mine)
    with httpx.Client(base_url=server.url, headers=key(server, "other"), timeout=60) as other:
        assert other.get(f"/v1/submissions/{mine}").json()["error"] == "SUBMISSION_NOT_FOUND"
        listed = other.get("/v1/submissions", params={"ids": mine}).json()["submissions"]
        assert listed == [{"id": mine, "error": "SUBMISSION_NOT_FOUND"}]
    assert acme.get("/v1/submissions/" + "0" * 32).status_code == 404


@pytest.mark.parametrize(
    "body", [{"submissions": []}, {"submissions": [{}] * 101}, {"submissions": "x"}, [1, 2], "not json"]
)
def test_malformed_bodies_are_invalid_requests(acme: httpx.Client, body: Any) -> None:
    content = body.encode() if isinstance(body, str) else json.dumps(body).encode()
    reply = acme.post("/v1/submissions", content=content, headers={"Content-Type": "application/json"})
    assert reply.status_code == 400 and reply.json()["error"] == "INVALID_REQUEST", reply.text


def test_each_finished_submission_is_audited_once(server: LiveServer, acme: httpx.Client) -> None:
    ids = [s["id"] for s in acme.post("/v1/submissions", json={"submissions": [
        {"language": "python", "code": f"print({i})"} for i in range(4)]}).json()["submissions"]]  # fmt: skip
    executions = [finished(acme, i)["result"]["execution_id"] for i in ids]
    assert acme.get("/readyz").status_code == 200
    with httpx.Client(base_url=server.url, timeout=60) as c:  # diagnostics answer once records are written
        c.get("/v1/diagnostics", headers=key(server, "acme"))
    export = subprocess.run(
        [".venv/bin/stockade", "audit", "export", "--data-dir", str(server.data_dir)],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    audited = [json.loads(line)["data"].get("execution_id") for line in export.stdout.splitlines()]
    assert all(audited.count(e) == 1 for e in executions)


def test_restart_fails_what_was_queued_and_keeps_what_finished(tmp_path: Path) -> None:
    from stockade.service.submissions import V1_FORM as FORM
    from stockade.service.submissions import SubmissionStore

    path = tmp_path / "submissions.db"
    store = SubmissionStore(path, keep_seconds=3600, keep_rows=10)
    store.put("acme", "q", "queued", {"id": "q", "state": "queued", "result": None, "error": None})
    store.put("acme", "d", "finished", {"id": "d", "state": "finished", "result": {"status": "ok"}, "error": None})
    store.close()
    again = SubmissionStore(path, keep_seconds=3600, keep_rows=10)
    assert again.fail_unfinished(FORM.failed, "the node restarted") == 1
    assert again.get("acme", "q")["error"] == {"error": "INTERRUPTED", "message": "the node restarted"}  # type: ignore[index]
    assert again.get("acme", "d") == {"id": "d", "state": "finished", "result": {"status": "ok"}, "error": None}
    assert again.get("other", "d") is None


def test_judge0_records_of_the_previous_table_are_adopted(tmp_path: Path) -> None:
    import sqlite3

    from stockade.service.submissions import SubmissionStore

    path = tmp_path / "judge0.db"
    old = sqlite3.connect(path)
    old.execute("CREATE TABLE submissions (token TEXT PRIMARY KEY, tenant TEXT NOT NULL, created REAL NOT NULL,"
                " status INTEGER NOT NULL, record TEXT NOT NULL)")  # fmt: skip
    old.execute("INSERT INTO submissions VALUES ('t1', 'acme', 1e10, 3, '{\"token\": \"t1\", \"status_id\": 3}')")
    old.execute("INSERT INTO submissions VALUES ('t2', 'acme', 1e10, 1, '{\"token\": \"t2\", \"status_id\": 1}')")
    old.commit()
    old.close()
    store = SubmissionStore(path, keep_seconds=3600, keep_rows=10)
    assert store.get("acme", "t1") == {"token": "t1", "status_id": 3}
    assert store.fail_unfinished(lambda r, m, code: {**r, "status_id": 13}, "restarted") == 1
    assert store.get("acme", "t2") == {"token": "t2", "status_id": 13}


async def test_a_batch_beyond_the_queue_is_refused_whole_with_retry_after(tmp_path: Path) -> None:
    from stockade.runtimes.registry import Registry
    from stockade.sandbox import SandboxConfig
    from stockade.service.app import Service, create_app
    from stockade.service.config import ServiceConfig

    box = SandboxConfig(
        run_dir=Path("/run/stockade-t-submit-q"), slots=1, uid_base=69950, cgroup_name="stockade-t-submit-q"
    )
    config = ServiceConfig(data_dir=tmp_path / "data", sandbox=box, submission_queue_size=2)
    service = Service(config, registry=Registry([Registry.default().get("python")]))
    app = create_app(service=service)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as c:
            three = {"submissions": [{"language": "python", "code": "print(1)"}] * 3}
            refused = await c.post("/v1/submissions", json=three)
            assert refused.status_code == 503 and refused.json()["error"] == "OVERLOADED"
            assert refused.headers["Retry-After"] == "1"
            assert service.quota_holds.held("local") == 0  # nothing of the batch is held
            two = await c.post("/v1/submissions", json={"submissions": three["submissions"][:2]})
            assert two.status_code == 202
            for s in two.json()["submissions"]:
                done = (await c.get(f"/v1/submissions/{s['id']}", params=WAIT)).json()
                assert done["result"]["stdout"] == "1\n"
            queues = (await c.get("/v1/diagnostics")).json()["queues"]
            assert queues["submissions"] == {"queued": 0, "queue_size": 2, "oldest_queued_s": 0.0}
            assert set(queues) == {"submissions", "judge0"}
            metrics = (await c.get("/metrics")).text
            assert 'stockade_submissions_queued{surface="submissions"} 0.0' in metrics
            assert 'stockade_submission_oldest_seconds{surface="judge0"} 0.0' in metrics
        await service.registry.detect_all()


async def test_no_submission_is_queued_when_its_run_could_not_be_recorded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from stockade.runtimes.registry import Registry
    from stockade.sandbox import SandboxConfig
    from stockade.service.app import Service, create_app
    from stockade.service.config import ServiceConfig

    name = "stockade-t-submit-disk"
    box = SandboxConfig(run_dir=Path("/run") / name, slots=1, uid_base=69970, cgroup_name=name)
    service = Service(
        ServiceConfig(data_dir=tmp_path / "data", sandbox=box), registry=Registry([Registry.default().get("python")])
    )
    app = create_app(service=service)
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1") as c:
            monkeypatch.setattr(service.storage, "check", lambda: "0.0 MiB free on the filesystem of the data dir")
            refused = await c.post("/v1/submissions", json={"language": "python", "code": "print(1)"})
            assert refused.status_code == 503 and refused.json()["error"] == "STORAGE_UNAVAILABLE"
            assert app.state.submissions.waiting == 0 and service.quota_holds.held("local") == 0
        await service.registry.detect_all()
