"""`stockade tenants` and `stockade keys`: tenants and their API keys, on the service's data directory."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from stockade.cli.datadir import data_dir_option, opened
from stockade.cli.errors import fail

LIMIT_FIELDS = ("cpu_ms", "wall_ms", "memory_mb", "processes", "output_kb", "file_size_kb")


def out(obj: Any) -> None:
    click.echo(json.dumps(obj, indent=2, default=str))


def _entries(text: str | None) -> tuple[str, ...]:
    return tuple(e.strip() for e in text.split(",") if e.strip()) if text else ()


@click.group("tenants", no_args_is_help=True)
def tenants() -> None:
    """Tenants: limits, quotas, rate limits, languages."""


@click.group("keys", no_args_is_help=True)
def keys() -> None:
    """API keys (stored hashed; shown once)."""


def _limit_options(f: Any) -> Any:
    for field in reversed(LIMIT_FIELDS):
        f = click.option(f"--max-{field.replace('_', '-')}", type=int, help=f"Ceiling on {field}")(f)
    return f


@tenants.command("create")
@click.argument("tenant_id")
@click.option("--name", help="Display name (default: the id)")
@click.option("--rate-per-minute", type=int, default=60, show_default=True, help="Requests per minute")
@click.option("--executions-per-day", type=int, help="Daily executions (default: unlimited)")
@click.option("--cpu-seconds-per-day", type=float, help="Daily CPU seconds (default: unlimited)")
@click.option("--languages", help="Allowed languages, comma separated (default: all)")
@click.option("--network-allow", help="Egress allowlist, comma separated (docs/network.md; default: no network)")
@_limit_options
@data_dir_option()
def tenants_create(
    tenant_id: str,
    name: str | None,
    rate_per_minute: int,
    executions_per_day: int | None,
    cpu_seconds_per_day: float | None,
    languages: str | None,
    network_allow: str | None,
    data_dir: Path,
    **max_limits: int | None,
) -> None:
    """Create a tenant (and the data directory, if it does not exist yet)."""
    limits = {field: max_limits[f"max_{field}"] for field in LIMIT_FIELDS if max_limits[f"max_{field}"] is not None}
    with opened(data_dir, create=True) as (store, audit):
        from stockade.service.audit import admin_data

        t = store.create_tenant(
            tenant_id,
            name or tenant_id,
            max_limits=limits or None,
            allowed_languages=languages.split(",") if languages else None,
            rate_per_minute=rate_per_minute,
            executions_per_day=executions_per_day,
            cpu_seconds_per_day=cpu_seconds_per_day,
            network_allow=_entries(network_allow),
        )
        audit.append("admin", tenant_id, None, admin_data("tenant.create", tenant_id))
        out(t.to_json())


@tenants.command("list")
@data_dir_option()
def tenants_list(data_dir: Path) -> None:
    """List tenants."""
    with opened(data_dir) as (store, _):
        out([t.to_json() for t in store.list_tenants()])


@tenants.command("webhook-secret")
@click.argument("tenant_id")
@data_dir_option()
def tenants_webhook_secret(tenant_id: str, data_dir: Path) -> None:
    """The secret that signs this tenant's webhooks (Stockade-Signature, docs/api.md): give it to the tenant."""
    with opened(data_dir) as (store, _):
        from stockade.service.config import ServiceConfig
        from stockade.service.webhooks import node_key, tenant_secret

        store.get_tenant(tenant_id)  # an unknown tenant is an error, not a secret
        click.echo(tenant_secret(node_key(ServiceConfig(data_dir=data_dir).webhook_key_path), tenant_id))


@tenants.command("update")
@click.argument("tenant_id")
@click.option("--name")
@click.option("--rate-per-minute", type=int)
@click.option("--executions-per-day", type=int, help="-1 clears the quota")
@click.option("--cpu-seconds-per-day", type=float, help="-1 clears the quota")
@click.option("--languages", help="Comma separated; 'all' clears the list")
@click.option("--network-allow", help="Egress allowlist, comma separated; 'none' clears it")
@click.option("--disabled/--enabled", default=None, help="Disable the tenant's keys, or enable them again")
@data_dir_option()
def tenants_update(
    tenant_id: str,
    name: str | None,
    rate_per_minute: int | None,
    executions_per_day: int | None,
    cpu_seconds_per_day: float | None,
    languages: str | None,
    network_allow: str | None,
    disabled: bool | None,
    data_dir: Path,
) -> None:
    """Change the given fields of a tenant."""
    changes: dict[str, Any] = {}
    if name is not None:
        changes["name"] = name
    if rate_per_minute is not None:
        changes["rate_per_minute"] = rate_per_minute
    if executions_per_day is not None:
        changes["executions_per_day"] = None if executions_per_day < 0 else executions_per_day
    if cpu_seconds_per_day is not None:
        changes["cpu_seconds_per_day"] = None if cpu_seconds_per_day < 0 else cpu_seconds_per_day
    if languages is not None:
        changes["allowed_languages"] = None if languages == "all" else languages.split(",")
    if network_allow is not None:
        changes["network_allow"] = () if network_allow == "none" else _entries(network_allow)
    if disabled is not None:
        changes["disabled"] = disabled
    with opened(data_dir) as (store, audit):
        from stockade.service.audit import admin_data

        t = store.update_tenant(tenant_id, **changes)
        audit.append("admin", tenant_id, None, admin_data("tenant.update", tenant_id, fields=sorted(changes)))
        out(t.to_json())


@keys.command("create")
@click.argument("tenant_id")
@click.option("--name", default="default", show_default=True, help="What the key is for")
@click.option("--create-tenant", is_flag=True, help="Create the tenant (with defaults) if it does not exist")
@click.option("--key-only", is_flag=True, help="Print only the API key (for scripts: KEY=$(stockade keys create …))")
@data_dir_option()
def keys_create(tenant_id: str, name: str, create_tenant: bool, key_only: bool, data_dir: Path) -> None:
    """Create an API key; the secret is printed once and stored only as a hash. The first key ends open mode."""
    with opened(data_dir, create=create_tenant) as (store, audit):
        from stockade.service.audit import admin_data

        try:
            store.get_tenant(tenant_id)
        except LookupError:
            if not create_tenant:
                fail(
                    f"no tenant {tenant_id!r}: create it first with `stockade tenants create {tenant_id}`, "
                    "or pass --create-tenant"
                )
            store.create_tenant(tenant_id, tenant_id)
            audit.append("admin", tenant_id, None, admin_data("tenant.create", tenant_id))
        key_id, token = store.create_key(tenant_id, name)
        audit.append("admin", tenant_id, key_id, admin_data("key.create", key_id))
        if key_only:
            click.echo(token)
        else:
            out({"key_id": key_id, "tenant": tenant_id, "api_key": token})


def _key_id(key: str) -> str:
    """A key id, or the id inside a whole API key (`sk_<key_id>_<secret>`)."""
    if key.startswith("sk_"):
        return key.split("_", 2)[1]
    return key


@keys.command("revoke")
@click.argument("key")
@data_dir_option()
def keys_revoke(key: str, data_dir: Path) -> None:
    """Revoke an API key, given its KEY_ID or the API key itself. Takes effect on the next request."""
    key_id = _key_id(key)
    with opened(data_dir) as (store, audit):
        from stockade.service.audit import admin_data

        k = store.revoke_key(key_id)
        audit.append("admin", k.tenant_id, key_id, admin_data("key.revoke", key_id))
        out(k.to_json())


@keys.command("list")
@click.option("--tenant", help="Only this tenant's keys")
@data_dir_option()
def keys_list(tenant: str | None, data_dir: Path) -> None:
    """List API keys (never their secrets)."""
    with opened(data_dir) as (store, _):
        out([k.to_json() for k in store.list_keys(tenant)])
