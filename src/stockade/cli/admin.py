"""Operator commands on the embedded store: tenants, API keys and the audit trail."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import typer

from stockade.cli.serve import DATA_DIR
from stockade.service.audit import AuditLog, admin_data
from stockade.service.config import ServiceConfig
from stockade.service.store import UNSET, Store, StoreError

tenants_app = typer.Typer(no_args_is_help=True, help="Tenants: limits, quotas, rate limits, languages.")
keys_app = typer.Typer(no_args_is_help=True, help="API keys (stored hashed; shown once).")
audit_app = typer.Typer(no_args_is_help=True, help="The signed, hash-chained audit trail.")

DataDir = Annotated[Path, typer.Option("--data-dir", envvar="STOCKADE_DATA_DIR", help="Service data directory")]
LIMIT_FIELDS = ("cpu_ms", "wall_ms", "memory_mb", "processes", "output_kb", "file_size_kb")


@contextmanager
def opened(data_dir: Path) -> Iterator[tuple[Store, AuditLog]]:
    cfg = ServiceConfig(data_dir=data_dir)
    data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    store = Store(cfg.db_path)
    try:
        yield store, AuditLog(store, cfg.audit_key_path)
    except (StoreError, LookupError, ValueError) as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(1) from e
    finally:
        store.close()


def out(obj: Any) -> None:
    typer.echo(json.dumps(obj, indent=2, default=str))


def _max_limits(values: dict[str, int | None]) -> dict[str, int | None] | None:
    given: dict[str, int | None] = {k: v for k, v in values.items() if v is not None}
    return given or None


@tenants_app.command("create")
def tenants_create(
    tenant_id: Annotated[str, typer.Argument(help="Tenant id (slug)")],
    name: Annotated[str | None, typer.Option(help="Display name")] = None,
    rate_per_minute: Annotated[int, typer.Option(help="Requests per minute")] = 60,
    executions_per_day: Annotated[int | None, typer.Option(help="Daily executions")] = None,
    cpu_seconds_per_day: Annotated[float | None, typer.Option(help="Daily CPU seconds")] = None,
    languages: Annotated[str | None, typer.Option(help="Allowed languages, comma separated")] = None,
    max_cpu_ms: Annotated[int | None, typer.Option()] = None,
    max_wall_ms: Annotated[int | None, typer.Option()] = None,
    max_memory_mb: Annotated[int | None, typer.Option()] = None,
    max_processes: Annotated[int | None, typer.Option()] = None,
    max_output_kb: Annotated[int | None, typer.Option()] = None,
    max_file_size_kb: Annotated[int | None, typer.Option()] = None,
    data_dir: DataDir = DATA_DIR,
) -> None:
    """Create a tenant."""
    limits = dict(zip(LIMIT_FIELDS, (max_cpu_ms, max_wall_ms, max_memory_mb, max_processes, max_output_kb,
                                     max_file_size_kb), strict=True))  # fmt: skip
    with opened(data_dir) as (store, audit):
        t = store.create_tenant(
            tenant_id,
            name or tenant_id,
            max_limits=_max_limits(limits),
            allowed_languages=languages.split(",") if languages else None,
            rate_per_minute=rate_per_minute,
            executions_per_day=executions_per_day,
            cpu_seconds_per_day=cpu_seconds_per_day,
        )
        audit.append("admin", tenant_id, None, admin_data("tenant.create", tenant_id))
        out(t.to_json())


@tenants_app.command("list")
def tenants_list(data_dir: DataDir = DATA_DIR) -> None:
    """List tenants."""
    with opened(data_dir) as (store, _):
        out([t.to_json() for t in store.list_tenants()])


@tenants_app.command("update")
def tenants_update(
    tenant_id: Annotated[str, typer.Argument()],
    name: Annotated[str | None, typer.Option()] = None,
    rate_per_minute: Annotated[int | None, typer.Option()] = None,
    executions_per_day: Annotated[int | None, typer.Option(help="-1 clears the quota")] = None,
    cpu_seconds_per_day: Annotated[float | None, typer.Option(help="-1 clears the quota")] = None,
    languages: Annotated[str | None, typer.Option(help="Comma separated; 'all' clears the list")] = None,
    disabled: Annotated[bool | None, typer.Option("--disabled/--enabled")] = None,
    data_dir: DataDir = DATA_DIR,
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
    if disabled is not None:
        changes["disabled"] = disabled
    with opened(data_dir) as (store, audit):
        t = store.update_tenant(tenant_id, **{k: changes.get(k, UNSET) for k in changes})
        audit.append("admin", tenant_id, None, admin_data("tenant.update", tenant_id, fields=sorted(changes)))
        out(t.to_json())


@keys_app.command("create")
def keys_create(
    tenant_id: Annotated[str, typer.Argument()],
    name: Annotated[str, typer.Option(help="What the key is for")] = "default",
    data_dir: DataDir = DATA_DIR,
) -> None:
    """Create an API key; the secret is printed once and stored only as a hash."""
    with opened(data_dir) as (store, audit):
        key_id, token = store.create_key(tenant_id, name)
        audit.append("admin", tenant_id, key_id, admin_data("key.create", key_id))
        out({"key_id": key_id, "tenant": tenant_id, "api_key": token})


@keys_app.command("revoke")
def keys_revoke(key_id: Annotated[str, typer.Argument()], data_dir: DataDir = DATA_DIR) -> None:
    """Revoke an API key."""
    with opened(data_dir) as (store, audit):
        k = store.revoke_key(key_id)
        audit.append("admin", k.tenant_id, key_id, admin_data("key.revoke", key_id))
        out(k.to_json())


@keys_app.command("list")
def keys_list(tenant: Annotated[str | None, typer.Option()] = None, data_dir: DataDir = DATA_DIR) -> None:
    """List API keys (never their secrets)."""
    with opened(data_dir) as (store, _):
        out([k.to_json() for k in store.list_keys(tenant)])


@audit_app.command("verify")
def audit_verify(
    anchor: Annotated[str | None, typer.Option(help="SEQ:HASH of a head saved off the host")] = None,
    public_key: Annotated[Path | None, typer.Option(help="Verify with this public key")] = None,
    data_dir: DataDir = DATA_DIR,
) -> None:
    """Check every record's hash, chain and signature; name any edited, deleted, inserted or moved record."""
    pinned = None
    if anchor:
        seq, _, digest = anchor.partition(":")
        pinned = (int(seq), digest)
    with opened(data_dir) as (_, audit):
        report = audit.verify(public_key=public_key, anchor=pinned)
        out(report.to_json())
        if not report.ok:
            raise typer.Exit(1)


@audit_app.command("export")
def audit_export(
    since: Annotated[datetime | None, typer.Option(help="Only records at or after this time (UTC)")] = None,
    data_dir: DataDir = DATA_DIR,
) -> None:
    """Write records as JSON lines."""
    with opened(data_dir) as (_, audit):
        for record in audit.export(since):
            typer.echo(json.dumps(record, sort_keys=True, default=str))
