"""Webhooks of submissions (docs/api.md, "Webhooks"): a finished submission's record POSTed to its
`callback_url`, signed, retried, and never to a place the operator has not allowed.

SSRF: a callback's host is resolved once per attempt and every address it resolves to must be global
(not loopback, private, link-local such as 169.254.169.254, CGNAT, multicast, reserved or unspecified)
and none of this host's own, unless inside one of the operator's `webhook_allow` networks. The request
goes to the checked address itself (the name only in Host and TLS's SNI and certificate check), so a
second resolution cannot rebind it; redirects are not followed. The check runs when the submission is
made too, so a bad URL is refused at once.

Signature: `Stockade-Signature: t=UNIX,v1=HEX`, HMAC-SHA256 over `f"{t}.{body}"` with the tenant's
webhook secret, itself HMAC-SHA256(the node's webhook key, tenant id): stable per tenant, different
across tenants, shown by `stockade tenants webhook-secret TENANT`.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import ipaddress
import json
import logging
import os
import secrets
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

from stockade.sandbox.netpolicy import Address, Network, Resolver, forbidden_reason, resolve
from stockade.service.config import ServiceConfig
from stockade.service.errors import ApiError

log = logging.getLogger("stockade.service")

MAX_URL = 2048


class Refused(ValueError):
    """A callback destination the policy does not allow; the message says why."""


@dataclass(frozen=True)
class Target:
    url: str
    host: str
    port: int
    address: str  # the checked address the request goes to


async def check(url: str, allow: Sequence[Network], resolver: Resolver = resolve) -> Target:
    """The destination of `url`, resolved and checked (module doc), or Refused."""
    if len(url) > MAX_URL:
        raise Refused(f"longer than {MAX_URL} characters")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise Refused("an http:// or https:// URL with a host")
    if parts.username or parts.password:
        raise Refused("no credentials in the URL")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        literal: Address | None = ipaddress.ip_address(parts.hostname)
    except ValueError:
        literal = None
    try:
        found = [str(literal)] if literal else await resolver(parts.hostname, port)
    except OSError as e:
        raise Refused(f"{parts.hostname} does not resolve ({e})") from None
    if not found:
        raise Refused(f"{parts.hostname} does not resolve")
    for each in found:  # every address, so which one the connection takes cannot matter
        if reason := forbidden_reason(ipaddress.ip_address(each), allow):
            raise Refused(f"{parts.hostname}: {reason}")
    return Target(url, parts.hostname, port, found[0])


def node_key(path: Path) -> bytes:
    """The node's webhook key (created once, 0600): tenants' secrets derive from it."""
    with contextlib.suppress(FileNotFoundError):
        return path.read_bytes()
    key = secrets.token_bytes(32)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(key)
    try:
        os.link(tmp, path)  # whole or not at all; the first of two surfaces to get here wins
    except FileExistsError:
        pass
    finally:
        os.unlink(tmp)
    return path.read_bytes()


def tenant_secret(key: bytes, tenant: str) -> str:
    return hmac.new(key, tenant.encode(), hashlib.sha256).hexdigest()


def signature(secret: str, body: bytes, at: int) -> str:
    mac = hmac.new(secret.encode(), str(at).encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"t={at},v1={mac}"


@dataclass(frozen=True)
class Policy:
    allow: tuple[Network, ...]
    attempts: int
    backoff_s: float
    timeout_s: float


def refusal(e: Refused) -> ApiError:
    return ApiError("INVALID_REQUEST", f"callback_url: {e}")


async def deliver(
    target_url: str,
    record: dict[str, Any],
    secret: str,
    policy: Policy,
    resolver: Resolver = resolve,
    method: str = "POST",
) -> dict[str, Any]:
    """Send `record` until a 2xx answer or `policy.attempts` tries, backing off; what happened, for the
    record's `callback`."""
    body = json.dumps(record, separators=(",", ":")).encode()
    submission = str(record.get("id") or record.get("token") or "")  # ours, or a Judge0 submission's
    error = ""
    for attempt in range(1, policy.attempts + 1):
        if attempt > 1:
            await asyncio.sleep(policy.backoff_s * 2 ** (attempt - 2))
        try:
            target = await check(target_url, policy.allow, resolver)
            status = await _send(method, target, body, submission, secret, policy.timeout_s)
        except Refused as e:
            error = f"refused: {e}"
            continue
        except httpx.HTTPError as e:
            error = f"{type(e).__name__}: {e}"
            continue
        if 200 <= status < 300:
            return {"url": target_url, "state": "delivered", "attempts": attempt, "error": None}
        error = f"answered {status}" + (" (redirects are not followed)" if 300 <= status < 400 else "")
    log.warning("webhook not delivered", extra={"fields": {"url": target_url, "error": error}})
    return {"url": target_url, "state": "failed", "attempts": policy.attempts, "error": error}


async def _send(method: str, target: Target, body: bytes, submission: str, secret: str, timeout: float) -> int:
    parts = urlsplit(target.url)
    ip = f"[{target.address}]" if ":" in target.address else target.address
    pinned = parts._replace(netloc=f"{ip}:{target.port}").geturl()
    headers = {
        "Host": parts.netloc.rsplit("@", 1)[-1],
        "Content-Type": "application/json",
        "User-Agent": "stockade-webhook",
        "Stockade-Signature": signature(secret, body, int(time.time())),
        "Stockade-Submission": submission,
    }
    async with httpx.AsyncClient(follow_redirects=False, timeout=timeout, trust_env=False) as client:
        request = client.build_request(method, pinned, content=body, headers=headers)
        if parts.scheme == "https":
            request.extensions["sni_hostname"] = target.host  # and the certificate is checked for it
        return (await client.send(request)).status_code


class Deliveries:
    """The webhooks in flight on this node: each a task, its outcome passed to `saved` (the record's
    `callback`); stop() waits for them, up to a deadline, then cancels the rest."""

    def __init__(self, key: bytes, policy: Policy, resolver: Resolver = resolve, method: str = "POST") -> None:
        self.key, self.policy, self.resolver, self.method = key, policy, resolver, method
        self._tasks: set[asyncio.Task[None]] = set()

    def send(self, url: str, tenant: str, record: dict[str, Any], saved: Callable[[dict[str, Any]], None]) -> None:
        async def one() -> None:
            secret = tenant_secret(self.key, tenant)
            try:
                outcome = await deliver(url, record, secret, self.policy, self.resolver, self.method)
            except Exception as e:  # never a callback left pending without a word: failed, and logged
                log.exception("webhook failed", extra={"fields": {"url": url}})
                outcome = {"url": url, "state": "failed", "attempts": 0, "error": f"internal error: {type(e).__name__}"}
            saved(outcome)

        task = asyncio.create_task(one(), name="webhook")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def settled(self) -> None:
        """Return once every webhook in flight now has its outcome saved."""
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def stop(self, timeout: float) -> None:
        if self._tasks:
            _, late = await asyncio.wait(set(self._tasks), timeout=timeout)
            for task in late:
                task.cancel()
            await asyncio.gather(*late, return_exceptions=True)


def configured(config: ServiceConfig, method: str = "POST") -> Deliveries:
    """The deliveries of one surface, with the node's key and the operator's policy."""
    allow = tuple(ipaddress.ip_network(n) for n in config.webhook_allow)
    policy = Policy(allow, config.webhook_attempts, config.webhook_backoff_s, config.webhook_timeout_s)
    return Deliveries(node_key(config.webhook_key_path), policy, method=method)
