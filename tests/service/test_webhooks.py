"""Webhooks of submissions: the destination check (every refusal decided before any packet is sent),
and delivery to a receiver on loopback: signed, retried, never redirected (docs/api.md, "Webhooks")."""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import json
import subprocess
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from stockade.runtimes.registry import Registry
from stockade.sandbox import SandboxConfig
from stockade.service import webhooks
from stockade.service.app import Service, create_app
from stockade.service.config import ServiceConfig
from tests.receiver import Receiver

LOOPBACK = (ipaddress.ip_network("127.0.0.1/32"),)


def resolver(table: dict[str, list[str]]) -> webhooks.Resolver:
    async def resolve(host: str, port: int) -> list[str]:
        if host not in table:
            raise OSError("no such name")
        return table[host]

    return resolve


NAMES = resolver({
    "hooks.example.com": ["93.184.216.34"],
    "rebinds.example.com": ["93.184.216.34", "10.0.0.7"],  # one public address, one private
    "localhost": ["127.0.0.1", "::1"],
    "metadata.internal": ["169.254.169.254"],
})  # fmt: skip


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("http://127.0.0.1:9/", "loopback"),
        ("http://[::1]/", "loopback"),
        ("http://[::ffff:127.0.0.1]/", "loopback"),
        ("http://10.1.2.3/", "private"),
        ("http://192.168.1.1/", "private"),
        ("http://169.254.169.254/latest/meta-data/", "link-local"),
        ("http://metadata.internal/", "link-local"),
        ("http://100.64.0.1/", "not a public address"),
        ("http://0.0.0.0/", "unspecified"),
        ("http://localhost:8000/", "loopback"),
        ("http://rebinds.example.com/", "private"),
        ("http://nowhere.example.com/", "does not resolve"),
        ("ftp://hooks.example.com/", "http:// or https://"),
        ("http://user:pw@hooks.example.com/", "credentials"),
        ("https://hooks.example.com/" + "a" * 2100, "longer than"),
    ],
)
async def test_a_forbidden_destination_is_refused_at_the_check(url: str, why: str) -> None:
    with pytest.raises(webhooks.Refused, match=why):
        await webhooks.check(url, (), NAMES)


async def test_a_public_name_is_pinned_to_its_checked_address() -> None:
    target = await webhooks.check("https://hooks.example.com/in?x=1", (), NAMES)
    assert (target.host, target.port, target.address) == ("hooks.example.com", 443, "93.184.216.34")


async def test_only_an_allowed_network_opens_a_private_address() -> None:
    assert (await webhooks.check("http://127.0.0.1:9/", LOOPBACK, NAMES)).address == "127.0.0.1"
    with pytest.raises(webhooks.Refused, match="loopback"):  # ::1 is not in 127.0.0.1/32
        await webhooks.check("http://localhost/", LOOPBACK, NAMES)
    with pytest.raises(webhooks.Refused, match="private"):
        await webhooks.check("http://10.0.0.1/", LOOPBACK, NAMES)


@asynccontextmanager
async def node(tmp_path: Path, allow: tuple[str, ...]) -> AsyncIterator[tuple[Any, httpx.AsyncClient]]:
    box = SandboxConfig(
        run_dir=Path("/run/stockade-t-webhooks"), slots=1, uid_base=69960, cgroup_name="stockade-t-webhooks"
    )
    config = ServiceConfig(data_dir=tmp_path / "data", sandbox=box, webhook_allow=allow, webhook_attempts=3,
                           webhook_backoff_s=0.01)  # fmt: skip
    service = Service(config, registry=Registry([Registry.default().get("python")]))
    app = create_app(service=service)
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1") as c:
            yield app, c
        await service.registry.detect_all()


async def submit_and_settle(app: Any, c: httpx.AsyncClient, url: str) -> dict[str, Any]:
    queued = await c.post("/v1/submissions", json={"language": "python", "code": "print(42)", "callback_url": url})
    assert queued.status_code == 202, queued.text
    record = (await c.get(f"/v1/submissions/{queued.json()['id']}", params={"wait_ms": 60_000})).json()
    assert record["state"] == "finished" and record["callback"]["state"] == "pending"
    await app.state.webhooks.settled()
    return dict((await c.get(f"/v1/submissions/{record['id']}")).json())


async def test_the_result_is_posted_signed_with_the_tenants_secret(tmp_path: Path, receiver: Receiver) -> None:
    async with node(tmp_path, ("127.0.0.1/32",)) as (app, c):
        record = await submit_and_settle(app, c, f"http://127.0.0.1:{receiver.port}/hook")
    assert record["callback"] == {"url": f"http://127.0.0.1:{receiver.port}/hook", "state": "delivered",
                                  "attempts": 1, "error": None}  # fmt: skip
    ((headers, body),) = receiver.got
    posted = json.loads(body)
    assert posted["id"] == record["id"] and posted["result"]["stdout"] == "42\n"
    assert headers["Stockade-Submission"] == record["id"]
    stamp, mac = (part.split("=", 1)[1] for part in headers["Stockade-Signature"].split(","))
    key = (tmp_path / "data" / "webhook-key").read_bytes()
    secret = hmac.new(key, b"local", hashlib.sha256).hexdigest()
    assert hmac.compare_digest(mac, hmac.new(secret.encode(), f"{stamp}.".encode() + body, hashlib.sha256).hexdigest())
    other = hmac.new(key, b"acme", hashlib.sha256).hexdigest()
    assert other != secret  # another tenant's secret signs differently
    shown = subprocess.run(
        [".venv/bin/stockade", "tenants", "webhook-secret", "local", "--data-dir", str(tmp_path / "data")],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert shown.stdout == secret + "\n"  # what the operator hands the tenant


async def test_a_failing_receiver_is_retried_until_it_answers(tmp_path: Path, receiver: Receiver) -> None:
    receiver.answers = [(500, {}), (503, {})]
    async with node(tmp_path, ("127.0.0.1/32",)) as (app, c):
        record = await submit_and_settle(app, c, f"http://127.0.0.1:{receiver.port}/")
    assert record["callback"]["state"] == "delivered" and record["callback"]["attempts"] == 3
    assert len(receiver.got) == 3 and len({body for _, body in receiver.got}) == 1


async def test_a_redirect_is_never_followed(tmp_path: Path, receiver: Receiver) -> None:
    receiver.answers = [(302, {"Location": "http://169.254.169.254/latest/meta-data/"})] * 3
    async with node(tmp_path, ("127.0.0.1/32",)) as (app, c):
        record = await submit_and_settle(app, c, f"http://127.0.0.1:{receiver.port}/")
    assert record["callback"]["state"] == "failed" and record["callback"]["attempts"] == 3
    assert "redirects are not followed" in record["callback"]["error"]
    assert len(receiver.got) == 3  # three POSTs to the receiver, none anywhere else


@pytest.mark.parametrize("url", ["http://127.0.0.1:9/", "http://10.0.0.1/", "http://169.254.169.254/", "gopher://x/"])
async def test_a_forbidden_callback_refuses_the_submission(tmp_path: Path, url: str) -> None:
    async with node(tmp_path, ()) as (_, c):
        bad = {"language": "python", "code": "1", "callback_url": url}
        reply = await c.post("/v1/submissions", json={"submissions": [{"language": "python", "code": "print(1)"}, bad]})
        assert reply.status_code == 400 and reply.json()["error"] == "INVALID_REQUEST"
        assert reply.json()["message"].startswith("submissions[1]: callback_url: ")


async def test_judge0_puts_a_finished_submission_to_its_callback_url(tmp_path: Path, receiver: Receiver) -> None:
    """As Judge0 does: a PUT of the submission's default fields, base64 encoded (docs/compat.md)."""
    url = f"http://127.0.0.1:{receiver.port}/judge0"
    async with node(tmp_path, ("127.0.0.1/32",)) as (app, c):
        body = {"language_id": 71, "source_code": "print(42)", "callback_url": url}
        token = (await c.post("/judge0/submissions", params={"wait": "true"}, json=body)).json()["token"]
        await app.state.judge0_webhooks.settled()
    ((headers, sent),) = receiver.got
    posted = json.loads(sent)
    assert receiver.methods == ["PUT"] and headers["Stockade-Submission"] == token
    assert posted["token"] == token and posted["status"] == {"id": 3, "description": "Accepted"}
    assert base64.b64decode(posted["stdout"]) == b"42\n"
