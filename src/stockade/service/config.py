"""Service settings: embedded defaults (a SQLite file, no other server), every one overridable."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from pathlib import Path

from stockade.sandbox import SandboxConfig


@dataclass(frozen=True)
class ServiceConfig:
    host: str = "127.0.0.1"
    port: int = 8000
    data_dir: Path = Path("/var/lib/stockade")  # stockade.db and the audit signing key
    # A PostgreSQL URL for the store instead of data_dir's stockade.db (docs/cluster.md), shared by the
    # nodes of a cluster; each then needs its own node_id, kept across its restarts.
    database_url: str | None = None
    node_id: str = ""
    # A Redis URL: the cluster's job queue (docs/cluster.md). Then POST /v1/submissions and /v1/execute
    # are run by workers (`stockade worker`, or this node too with embedded_worker); needs database_url.
    redis_url: str | None = None
    embedded_worker: bool = False
    tenant_queue_size: int = 200  # a tenant's jobs queued or running on the cluster; beyond: 429
    job_attempts: int = 3  # deliveries of a job whose worker died, then it ends as an internal error
    worker_dead_after_s: float = 5.0  # a worker whose heartbeat is older is dead: its jobs are reclaimed
    sandbox: SandboxConfig = field(default_factory=SandboxConfig)
    queue_size: int = 8  # requests that may wait for a slot; beyond it: immediate 503
    max_body_bytes: int = 12 * 1024 * 1024
    drain_seconds: float = 30.0  # SIGTERM: in-flight runs get this long, then boxes are killed
    admin_tenants: tuple[str, ...] = ("admin",)
    open_tenant: str = "local"  # the tenant of open mode (no keys, loopback bind)
    open_rate_per_minute: int = 6000
    # The Judge0 CE and Piston v2 compatible APIs (docs/compat.md), each switchable off.
    judge0: bool = True
    judge0_prefix: str = "/judge0"
    judge0_queue_size: int = 100  # wait=false submissions waiting to run; beyond it: 503 "queue is full"
    judge0_keep_seconds: int = 24 * 3600  # finished submissions stay readable by token this long...
    judge0_keep_rows: int = 2000  # ...and at most this many, the oldest go first
    piston: bool = True
    # POST /v1/submissions (docs/api.md): queued submissions, and how long their results are kept.
    submission_queue_size: int = 1000  # beyond it: 503 OVERLOADED with Retry-After
    submission_keep_seconds: int = 24 * 3600
    submission_keep_rows: int = 10_000
    submission_max_wait_ms: int = 60_000  # the longest ?wait_ms= a read may block for
    # Webhooks (callback_url): networks allowed although not public (CIDRs; default none), and retries.
    webhook_allow: tuple[str, ...] = ()
    webhook_attempts: int = 5
    webhook_backoff_s: float = 1.0  # before the second attempt; doubled before each next one
    webhook_timeout_s: float = 10.0
    judge_max_tests: int = 256  # POST /v1/judge (docs/judge.md): tests per request...
    judge_max_bytes: int = 8 * 1024 * 1024  # ...and their stdin and expected output together
    problems_per_tenant: int = 100  # stored problems (POST /v1/problems) a tenant may keep...
    problems_tenant_bytes: int = 256 * 1024 * 1024  # ...and their bytes together
    # Workspaces (docs/agents.md): each one's quota, a tenant's number of them, their idle expiry.
    workspace_max_bytes: int = 32 * 1024 * 1024
    workspace_max_files: int = 1000
    workspaces_per_tenant: int = 16
    workspace_idle_seconds: float = 24 * 3600.0
    mcp: bool = True  # the MCP server over streamable HTTP at /mcp (docs/agents.md)

    def cluster_problem(self) -> str | None:
        """Why these cluster settings cannot work together, or None."""
        if self.redis_url is not None and self.database_url is None:
            return "a job queue (--redis-url) needs the store its nodes share (--database-url)"
        if self.redis_url is not None and not self.node_id:
            return "a cluster's node needs a --node-id of its own, kept across its restarts"
        return None

    @property
    def db_path(self) -> Path:
        return self.data_dir / "stockade.db"

    @property
    def store_location(self) -> Path | str:
        """The store's database: the PostgreSQL URL if one is set, else the SQLite file."""
        return self.database_url or self.db_path

    @property
    def judge0_db_path(self) -> Path:
        return self.data_dir / "judge0.db"

    @property
    def submissions_db_path(self) -> Path:
        return self.data_dir / "submissions.db"

    @property
    def webhook_key_path(self) -> Path:
        return self.data_dir / "webhook-key"

    @property
    def workspaces_dir(self) -> Path:
        return self.data_dir / "workspaces"

    @property
    def problems_db_path(self) -> Path:
        return self.data_dir / "problems.db"

    @property
    def audit_key_path(self) -> Path:
        return self.data_dir / "audit-signing-key.pem"

    @property
    def loopback(self) -> bool:
        if self.host == "localhost":
            return True
        try:
            return ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            return False
