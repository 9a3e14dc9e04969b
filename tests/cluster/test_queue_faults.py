"""A cluster's parts failing under it: a worker or an API node killed with kill -9, Redis restarted,
PostgreSQL stopped for a while. Each time every accepted submission still ends with one recorded result,
and no box is left on a worker. And the bounds a cluster keeps across its API nodes: a tenant's queue,
its daily quota, its rate limit."""

from __future__ import annotations

import hashlib
import hmac
import json
import signal
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx

from tests.cluster.nodes import Cluster, Worker, bearer, read, running, submit, wait_finished
from tests.receiver import Receiver
from tests.service.live import LiveServer, cli, make_key

SLOW = {"language": "python", "code": "import time; time.sleep(2); print('done')"}
HELLO = {"language": "python", "code": "print(6*7)"}
DEADLINE_S = 120.0


def _until(what: str, check: Any, deadline_s: float = DEADLINE_S) -> Any:
    end = time.monotonic() + deadline_s
    while not (found := check()):
        assert time.monotonic() < end, f"{what}: not within {deadline_s} s"
        time.sleep(0.05)
    return found


def _executions(cluster: Cluster, submission: str) -> list[dict[str, Any]]:
    out = cli("audit", "export", data_dir=cluster.keys_dir).stdout
    records = [json.loads(line) for line in out.splitlines() if line.strip()]
    return [r["data"] for r in records if r["kind"] == "execution" and r["data"].get("submission") == submission]


def _ready(node: LiveServer) -> httpx.Response:
    return httpx.get(f"{node.url}/readyz", timeout=30)


def _refused(api: LiveServer, token: str, check: str, error: str) -> list[httpx.Response]:
    """With a part down: /readyz 503 naming its `check`, and new work (a submission, an execution)
    refused with 503 `error`. The refusals, for the caller to look at further."""
    down = _ready(api)
    assert down.status_code == 503 and down.json()["checks"][check] is False, down.text
    refusals = [httpx.post(f"{api.url}{path}", json=HELLO, headers=bearer(token), timeout=30)
                for path in ("/v1/submissions", "/v1/execute")]  # fmt: skip
    for r in refusals:
        assert r.status_code == 503 and r.json()["error"] == error, r.text
    return refusals


def test_a_worker_killed_mid_run_has_its_job_run_again_once(cluster: Cluster) -> None:
    token, admin = make_key(cluster.keys_dir, "acme", rate_per_minute=100_000), make_key(cluster.keys_dir, "admin")
    with cluster.api("f-api", 69600) as api:
        doomed = cluster.worker("f-work-a", 69610)
        (key,) = submit(api, token, [SLOW])
        _until("the job running on worker a", lambda: read(api, token, [key])[0]["state"] == "running")
        doomed.proc.send_signal(signal.SIGKILL)
        doomed.proc.wait(30)
        # Its box dies with it (the box's processes have it as their parent's parent: --die-with-parent).
        _until("no process of worker a's box", lambda: not doomed.box_processes())
        with running(cluster.worker("f-work-b", 69620)):
            (record,) = wait_finished(api, token, [key], DEADLINE_S)
            queue = httpx.get(f"{api.url}/v1/diagnostics", headers=bearer(admin), timeout=30).json()
        assert record["error"] is None and record["result"]["stdout"] == "done\n", record
        assert queue["queues"]["submissions"]["redelivered"] >= 1
        # A restart of worker a under its name records its cut-short run, takes nothing again, and
        # its clean stop leaves no box (the residue check of tests/conftest.py sees cgroups and mounts).
        with running(Worker.start(cluster, "f-work-a", 69610, 1)) as again:
            pass
        assert not again.box_processes()
    runs = _executions(cluster, key)
    assert [r["verdict"] for r in runs] == ["ok"], runs  # one recorded result, the redelivered run's
    assert cli("audit", "verify", data_dir=cluster.keys_dir).returncode == 0


def test_a_job_whose_worker_dies_each_time_ends_as_an_internal_error(cluster: Cluster) -> None:
    token, admin = make_key(cluster.keys_dir, "acme", rate_per_minute=100_000), make_key(cluster.keys_dir, "admin")
    endless = {"language": "python", "code": "import time; time.sleep(600)"}
    with cluster.api("f-api-d", 69770) as api:
        (key,) = submit(api, token, [endless])
        for _ in range(3):  # the retry budget (job_attempts): each delivery's worker killed mid-run
            doomed = cluster.worker("f-work-d", 69780)  # its next start adopts its own pending entry
            _until("the job's box running", doomed.box_processes)
            doomed.proc.send_signal(signal.SIGKILL)
            doomed.proc.wait(30)
            _until("no process of the box", lambda w=doomed: not w.box_processes())
        with running(cluster.worker("f-work-d", 69780)):
            (record,) = wait_finished(api, token, [key], DEADLINE_S)
            queue = httpx.get(f"{api.url}/v1/diagnostics", headers=bearer(admin), timeout=30).json()
    assert record["result"] is None and record["error"]["error"] == "INTERNAL_ERROR", record
    assert "each of 3 attempts" in record["error"]["message"]
    assert queue["queues"]["submissions"]["dead_letters"] == 1
    assert _executions(cluster, key) == []  # no run of it ended, so none was recorded


def test_an_api_node_killed_leaves_its_accepted_submissions_to_finish(cluster: Cluster) -> None:
    token = make_key(cluster.keys_dir, "acme", rate_per_minute=100_000)
    with cluster.api("f-api-b", 69630) as b, running(cluster.worker("f-work-c", 69640)):
        with cluster.api("f-api-a", 69650) as a:
            ids = submit(a, token, [SLOW, HELLO, HELLO, SLOW])
            a.stop(signal.SIGKILL)
        records = wait_finished(b, token, ids)
        assert [r["result"]["stdout"] for r in records] == ["done\n", "42\n", "42\n", "done\n"], records
        with cluster.api("f-api-a", 69650):  # restarted on its run dir: it clears the box it had built ahead
            pass


def test_an_api_node_restart_keeps_the_quota_holds_of_its_queued_jobs(cluster: Cluster) -> None:
    token = make_key(cluster.keys_dir, "metered", executions_per_day=2, rate_per_minute=100_000)
    with cluster.api("f-api-h", 69790) as api:
        ids = submit(api, token, [HELLO, HELLO])  # no worker yet: queued, each holding one of the two
        api.stop(signal.SIGKILL)
    with cluster.api("f-api-h", 69790) as api:  # its start drops its own runs' holds, not the queue's
        over = httpx.post(f"{api.url}/v1/submissions", json=HELLO, headers=bearer(token), timeout=30)
        assert over.status_code == 429 and over.json()["error"] == "QUOTA_EXCEEDED", over.text
        with running(cluster.worker("f-work-h", 69800)):
            records = wait_finished(api, token, ids)
    assert [r["result"]["stdout"] for r in records] == ["42\n", "42\n"], records


def test_redis_restarted_refuses_with_a_type_then_recovers_and_loses_nothing(cluster: Cluster) -> None:
    token = make_key(cluster.keys_dir, "acme", rate_per_minute=100_000)
    redis = cluster.redis
    assert redis is not None
    with cluster.api("f-api-r", 69660) as api:
        waiting = submit(api, token, [HELLO, HELLO, SLOW])  # no worker yet: they wait in the queue
        redis.stop()
        assert [r.headers["Retry-After"] for r in _refused(api, token, "queue", "QUEUE_UNAVAILABLE")] == ["1", "1"]
        redis.start()  # same port, and its append-only file: the queued jobs are still there
        _until("/readyz 200 again", lambda: _ready(api).status_code == 200)
        with running(cluster.worker("f-work-r", 69670)):
            records = wait_finished(api, token, [*waiting, *submit(api, token, [HELLO])])
            ran = httpx.post(f"{api.url}/v1/execute", json=HELLO, headers=bearer(token), timeout=60)
        assert [r["result"]["stdout"] for r in records] == ["42\n", "42\n", "done\n", "42\n"]
        assert ran.status_code == 200 and ran.json()["stdout"] == "42\n"


def test_postgres_stopped_refuses_with_a_type_and_the_jobs_wait_for_it(cluster: Cluster) -> None:
    token = make_key(cluster.keys_dir, "acme", rate_per_minute=100_000)
    postgres = cluster.postgres
    assert postgres is not None
    with cluster.api("f-api-g", 69750) as api, running(cluster.worker("f-work-g", 69760)) as worker:
        slow, *quick = submit(api, token, [SLOW, HELLO, HELLO])
        _until("the slow job running", lambda: read(api, token, [slow])[0]["state"] == "running")
        postgres.stop()
        _refused(api, token, "storage", "STORAGE_UNAVAILABLE")
        # The slow run ends in the outage: its end cannot be stored, so the job waits, holding its slot.
        _until("the worker waiting for the store", lambda: "waits for the store" in worker.log())
        postgres.start()
        _until("/readyz 200 again", lambda: _ready(api).status_code == 200)
        records = wait_finished(api, token, [slow, *quick, *submit(api, token, [HELLO])])
    assert [r["result"]["stdout"] for r in records] == ["done\n", "42\n", "42\n", "42\n"], records
    assert [r["verdict"] for r in _executions(cluster, slow)] == ["ok"]  # its unstored run left no record
    assert cli("audit", "verify", data_dir=cluster.keys_dir).returncode == 0


def test_a_tenants_queue_quota_and_rate_hold_across_api_nodes(cluster: Cluster) -> None:
    acme = make_key(cluster.keys_dir, "acme", rate_per_minute=100_000)
    quota = make_key(cluster.keys_dir, "metered", executions_per_day=4, rate_per_minute=100_000)
    rated = make_key(cluster.keys_dir, "rated", rate_per_minute=5)
    with cluster.api("f-api-x", 69680, tenant_queue=3) as x, cluster.api("f-api-y", 69690, tenant_queue=3) as y:
        # No worker runs: queued jobs stay queued. Three at most for a tenant, across both nodes.
        submit(x, acme, [HELLO, HELLO])
        submit(y, acme, [HELLO])
        full = httpx.post(f"{x.url}/v1/submissions", json=HELLO, headers=bearer(acme), timeout=30)
        assert full.status_code == 429 and full.json()["error"] == "TENANT_QUEUE_FULL" and full.headers["Retry-After"]
        with ThreadPoolExecutor(6) as pool:  # six at once on two nodes against a quota of four
            answers = list(pool.map(
                lambda n: httpx.post(f"{n.url}/v1/submissions", json=HELLO, headers=bearer(quota), timeout=30),
                [x, y] * 3,
            ))  # fmt: skip
        assert sorted(r.status_code for r in answers) == [202] * 3 + [429] * 3  # a tenant queue of 3 as well
        codes = Counter(r.json().get("error", "queued") for r in answers)
        assert codes["queued"] == 3 and codes["TENANT_QUEUE_FULL"] + codes["QUOTA_EXCEEDED"] == 3
        # Five requests a minute for `rated`, counted once across both nodes.
        got = [httpx.get(f"{n.url}/v1/submissions/none", headers=bearer(rated), timeout=30) for n in [x, y] * 4]
        assert [r.status_code for r in got] == [404] * 5 + [429] * 3
        assert {r.json()["error"] for r in got[5:]} == {"RATE_LIMITED"}


def test_quota_is_exact_across_api_nodes_and_the_workers_release_it(cluster: Cluster) -> None:
    token = make_key(cluster.keys_dir, "metered", executions_per_day=4, rate_per_minute=100_000)
    with (
        cluster.api("f-api-p", 69700) as p,
        cluster.api("f-api-q", 69710) as q,
        running(cluster.worker("f-work-q", 69720)),
    ):
        with ThreadPoolExecutor(6) as pool:
            answers = list(pool.map(
                lambda n: httpx.post(f"{n.url}/v1/execute", json=HELLO, headers=bearer(token), timeout=60),
                [p, q] * 3,
            ))  # fmt: skip
        got = sorted((r.status_code, r.json().get("error") or r.json()["stdout"]) for r in answers)
        assert got == [(200, "42\n")] * 4 + [(429, "QUOTA_EXCEEDED")] * 2, got


def test_the_worker_delivers_the_signed_webhook(cluster: Cluster, receiver: Receiver) -> None:
    token = make_key(cluster.keys_dir, "acme", rate_per_minute=100_000)
    secret = cli("tenants", "webhook-secret", "acme", data_dir=cluster.keys_dir).stdout.strip()
    hook = f"http://127.0.0.1:{receiver.port}/hook"
    with cluster.api("f-api-w", 69730, webhook_allow="127.0.0.1/32") as api:
        refused = httpx.post(f"{api.url}/v1/submissions", json={**HELLO, "callback_url": "http://169.254.169.254/"},
                             headers=bearer(token), timeout=30)  # fmt: skip
        assert refused.json()["error"] == "INVALID_REQUEST", refused.text  # checked at the API node
        with running(Worker.start(cluster, "f-work-w", 69740, 1, webhook_allow="127.0.0.1/32")):
            (key,) = submit(api, token, [{**HELLO, "callback_url": hook}])
            wait_finished(api, token, [key])
            _until("the webhook delivered", lambda: read(api, token, [key])[0]["callback"]["state"] == "delivered")
    ((headers, body),) = receiver.got
    assert json.loads(body)["result"]["stdout"] == "42\n"
    stamp, mac = (part.split("=", 1)[1] for part in headers["Stockade-Signature"].split(","))
    assert hmac.compare_digest(mac, hmac.new(secret.encode(), f"{stamp}.".encode() + body, hashlib.sha256).hexdigest())
