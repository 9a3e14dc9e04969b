"""Operator CLI on a data dir: tenants, keys, and the audit trail of executions done through a live server."""

from __future__ import annotations

import hashlib
import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

from tests.service.live import cli, cli_json, live_server


def test_tenants_and_keys(tmp_path: Path) -> None:
    d = tmp_path / "data"
    t = cli_json(
        "tenants", "create", "acme", "--name", "Acme Corp", "--rate-per-minute", "30",
        "--executions-per-day", "100", "--languages", "python,c", "--max-cpu-ms", "2000", "--max-memory-mb", "128",
        data_dir=d,
    )  # fmt: skip
    assert t["id"] == "acme" and t["name"] == "Acme Corp" and t["disabled"] is False
    assert t["rate_per_minute"] == 30 and t["executions_per_day"] == 100 and t["cpu_seconds_per_day"] is None
    assert sorted(t["allowed_languages"]) == ["c", "python"]
    assert t["max_limits"]["cpu_ms"] == 2000 and t["max_limits"]["memory_mb"] == 128
    assert t["max_limits"]["wall_ms"] is None
    cli("tenants", "create", "beta", data_dir=d)

    listed = cli_json("tenants", "list", data_dir=d)
    assert [x["id"] for x in listed] == ["acme", "beta"]
    assert listed[1]["rate_per_minute"] == 60 and listed[1]["allowed_languages"] is None

    u = cli_json(
        "tenants", "update", "acme", "--rate-per-minute", "5", "--executions-per-day", "-1",
        "--languages", "all", "--disabled", data_dir=d,
    )  # fmt: skip
    assert u["rate_per_minute"] == 5 and u["executions_per_day"] is None and u["allowed_languages"] is None
    assert u["disabled"] is True and u["name"] == "Acme Corp"  # untouched fields kept

    dup = cli("tenants", "create", "acme", data_dir=d, check=False)
    assert dup.returncode == 1 and dup.stderr == "stockade tenants create: tenant 'acme' already exists\n"

    k1 = cli_json("keys", "create", "acme", "--name", "ci", data_dir=d)
    k2 = cli_json("keys", "create", "beta", data_dir=d)
    assert k1["tenant"] == "acme" and k1["api_key"].startswith(f"sk_{k1['key_id']}_")

    listing = cli("keys", "list", data_dir=d).stdout
    assert k1["api_key"] not in listing and k1["api_key"].split("_", 2)[2] not in listing  # never the secret
    keys = {k["key_id"]: k for k in json.loads(listing)}
    assert set(keys) == {k1["key_id"], k2["key_id"]}
    assert keys[k1["key_id"]]["name"] == "ci" and keys[k1["key_id"]]["revoked_at"] is None
    assert keys[k2["key_id"]]["tenant_id"] == "beta"
    only_beta = cli_json("keys", "list", "--tenant", "beta", data_dir=d)
    assert [k["key_id"] for k in only_beta] == [k2["key_id"]]

    revoked = cli_json("keys", "revoke", k1["key_id"], data_dir=d)
    assert revoked["key_id"] == k1["key_id"] and revoked["revoked_at"] is not None
    missing = cli("keys", "revoke", "0123456789abcdef", data_dir=d, check=False)
    assert missing.returncode == 1 and "0123456789abcdef" in missing.stderr


def test_revoked_key_audit_verify_tamper_and_export(tmp_path: Path) -> None:
    d = tmp_path / "data"
    since = (datetime.now(UTC) - timedelta(seconds=2)).strftime("%Y-%m-%dT%H:%M:%S")
    cli("tenants", "create", "acme", data_dir=d)
    key = cli_json("keys", "create", "acme", data_dir=d)
    marker = "SECRETCODE" + uuid.uuid4().hex
    code = f"# {marker}\nprint(input())"
    stdin = "in-" + uuid.uuid4().hex

    with live_server("cli-admin", uid_base=66700, data_dir=d, slots=1) as server:
        auth = {"Authorization": f"Bearer {key['api_key']}"}
        ids = []
        for _ in range(2):
            r = httpx.post(
                f"{server.url}/v1/execute", json={"language": "python", "code": code, "stdin": stdin}, headers=auth
            )
            assert r.status_code == 200 and r.json()["stdout"] == stdin + "\n", r.text
            ids.append(r.json()["execution_id"])
        # Revoked while the server runs: the very next request is refused.
        cli("keys", "revoke", key["key_id"], data_dir=d)
        r = httpx.post(f"{server.url}/v1/execute", json={"language": "python", "code": code}, headers=auth)
        assert r.status_code == 401 and r.json()["error"] == "UNAUTHENTICATED"
        assert server.stop(signal.SIGTERM) in (0, -signal.SIGTERM)

    ok = cli("audit", "verify", data_dir=d)
    report = json.loads(ok.stdout)
    assert report["ok"] is True and report["problems"] == []
    # tenant.create, key.create, 2 executions, key.revoke
    assert report["count"] == 5 and report["head"]["seq"] == 5

    lines = cli("audit", "export", "--since", since, data_dir=d).stdout.splitlines()
    records = [json.loads(line) for line in lines]
    assert [r["seq"] for r in records] == [1, 2, 3, 4, 5]
    execs = [r for r in records if r["kind"] == "execution"]
    assert [e["data"]["execution_id"] for e in execs] == ids
    for e in execs:
        data = e["data"]
        assert e["tenant"] == "acme" and e["key_id"] == key["key_id"]
        assert data["language"] == "python" and data["verdict"] == "ok"
        assert data["code_sha256"] == hashlib.sha256(b"main.py\0" + code.encode()).hexdigest()
        assert data["stdin_sha256"] == hashlib.sha256(stdin.encode()).hexdigest()
        assert data["stdout_sha256"] == hashlib.sha256((stdin + "\n").encode()).hexdigest()
        assert len(e["hash"]) == 64 and e["signature"]
    admin = [r["data"]["action"] for r in records if r["kind"] == "admin"]
    assert admin == ["tenant.create", "key.create", "key.revoke"]
    whole = "\n".join(lines)
    assert marker not in whole and stdin not in whole  # digests only, never the payloads
    later = records[3]["time"][:19]  # whole seconds: --since takes them; record 4 is at or after it
    tail = [
        json.loads(line)["seq"] for line in cli("audit", "export", "--since", later, data_dir=d).stdout.splitlines()
    ]
    assert tail and tail[0] <= 4 and tail[-1] == 5

    # Tamper with one record's data in the SQLite file: verify fails and names it.
    seq = execs[1]["seq"]
    db = sqlite3.connect(d / "stockade.db")
    try:
        body = json.loads(db.execute("SELECT body FROM audit_log WHERE seq = ?", (seq,)).fetchone()[0])
        body["data"]["verdict"] = "runtime_error"
        with db:
            db.execute("UPDATE audit_log SET body = ? WHERE seq = ?", (json.dumps(body), seq))
    finally:
        db.close()
    bad = cli("audit", "verify", data_dir=d, check=False)
    assert bad.returncode == 1, bad.stdout
    report = json.loads(bad.stdout)
    assert report["ok"] is False
    assert [(p["seq"], p["kind"]) for p in report["problems"]] == [(seq, "edited")]
    assert f"record {seq}" in report["problems"][0]["message"]


def test_keys_create_for_a_missing_tenant_says_what_to_do_or_creates_it(tmp_path: Path) -> None:
    d = tmp_path / "data"
    cli("tenants", "create", "beta", data_dir=d)
    refused = cli("keys", "create", "acme", data_dir=d, check=False)
    assert refused.returncode == 1 and "Traceback" not in refused.stderr
    assert refused.stderr.strip() == (
        "stockade keys create: no tenant 'acme': create it first with `stockade tenants create acme`, "
        "or pass --create-tenant"
    )
    assert [t["id"] for t in cli_json("tenants", "list", data_dir=d)] == ["beta"]

    token = cli("keys", "create", "acme", "--create-tenant", "--key-only", data_dir=d).stdout.strip()
    assert re.fullmatch(r"sk_[0-9a-f]{16}_\S+", token)
    tenants = {t["id"]: t for t in cli_json("tenants", "list", data_dir=d)}
    assert set(tenants) == {"acme", "beta"} and tenants["acme"]["rate_per_minute"] == 60
    (key,) = cli_json("keys", "list", "--tenant", "acme", data_dir=d)
    assert token.startswith(f"sk_{key['key_id']}_")

    revoked = cli_json("keys", "revoke", token, data_dir=d)  # the key itself names its id
    assert revoked["key_id"] == key["key_id"] and revoked["revoked_at"] is not None
    actions = [json.loads(line)["data"]["action"] for line in cli("audit", "export", data_dir=d).stdout.splitlines()]
    assert actions == ["tenant.create", "tenant.create", "key.create", "key.revoke"]


DOC = Path(__file__).parents[2] / "docs" / "tenants.md"
SECTION = "## From open mode to keys: the operator's path"


def operator_path() -> str:
    """Every ```sh block of the section, in order, as one script."""
    text = DOC.read_text()
    section = text[text.index(SECTION) :]
    section = section[: section.find("\n## ", len(SECTION))]
    blocks = re.findall(r"^```sh\n(.*?)^```$", section, flags=re.S | re.M)
    assert len(blocks) >= 4
    return "".join(blocks)


def test_the_operator_path_in_tenants_md_runs_as_written(tmp_path: Path) -> None:
    d = tmp_path / "data"
    script = operator_path()
    with live_server("cli-doc", uid_base=66750, data_dir=d, slots=1) as server:
        assert f"listening on {server.url}" in server.log()  # what `make run` shows
        env = {k: v for k, v in os.environ.items() if not k.startswith("STOCKADE_")}
        env |= {
            "PATH": f"{Path(sys.executable).parent}:{env['PATH']}",  # this checkout's stockade
            "STOCKADE_DATA_DIR": str(d),
            "STOCKADE_URL": server.url,
            "COLUMNS": "200",
        }
        proc = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True,
            timeout=300,
        )  # fmt: skip
        assert proc.returncode == 0, f"{proc.stdout}\n{proc.stderr}"
        # Open mode, the first key, the new key, enabled again: four runs; three refusals, each for its reason.
        assert proc.stdout.count("hello from a box") == 4, proc.stdout
        for refusal in ("refused without a key", "refused: the old key is revoked", "refused: acme is disabled"):
            assert refusal in proc.stdout
        assert proc.stderr.count("UNAUTHENTICATED") == 3, proc.stderr

        r = httpx.post(f"{server.url}/v1/execute", json={"language": "python", "code": "print(1)"})
        assert r.status_code == 401 and r.json()["error"] == "UNAUTHENTICATED"  # open mode has ended
    keys = {k["name"]: k for k in cli_json("keys", "list", "--tenant", "acme", data_dir=d)}
    assert set(keys) == {"ci", "ci-2"}
    assert keys["ci"]["revoked_at"] is not None and keys["ci-2"]["revoked_at"] is None
    (acme,) = [t for t in cli_json("tenants", "list", data_dir=d) if t["id"] == "acme"]
    assert (acme["name"], acme["rate_per_minute"], acme["executions_per_day"], acme["disabled"]) == (
        "Acme Corp", 120, 10000, False,
    )  # fmt: skip
