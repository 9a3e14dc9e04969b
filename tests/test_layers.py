"""The layers import only downward: sandbox < runtimes < engine < service < client (the SDK)/cli."""

import ast
from pathlib import Path

SRC = Path(__file__).parent.parent / "src" / "stockade"
# What each layer may import from stockade (besides itself).
ALLOWED = {
    "sandbox": set(),
    "runtimes": set(),
    "engine": {"sandbox", "runtimes"},
    "service": {"sandbox", "runtimes", "engine"},
    "client": set(),  # the SDK talks HTTP only
    "clients": {"client"},  # the SDK's deprecated import path
    "cli": {"sandbox", "runtimes", "engine", "service", "client", "clients"},
}


def stockade_imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        names = []
        if isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        for name in names:
            parts = name.split(".")
            if parts[0] == "stockade" and len(parts) > 1:
                found.add(parts[1])
    return found


def test_no_layer_imports_upward() -> None:
    checked = 0
    for layer, allowed in ALLOWED.items():
        for path in (SRC / layer).rglob("*.py"):
            bad = stockade_imports(path) - allowed - {layer}
            assert not bad, f"{path.relative_to(SRC)} imports {sorted(bad)} (layer {layer} may use {sorted(allowed)})"
            checked += 1
    assert checked > 20


# The rooms of the service package, lowest first: a room imports only rooms ranked below it (or itself).
# Type-only imports (under `if TYPE_CHECKING:`) are not imports at run time and are not counted.
SERVICE_ROOMS = {
    "errors": 0,
    "config": 0,
    "quota": 4,  # quota holds: in memory, or in the shared database
    "ratelimit": 0,
    "telemetry": 0,
    "tenants": 0,
    "db": 0,  # SQLite or PostgreSQL: connections, transactions, the schema version
    "schema": 1,  # the store's migrations
    "store": 2,
    "body_limit": 1,
    "wire": 1,
    "workspace_fs": 1,  # a workspace's host files, by directory fd, never following a link
    "workspaces": 2,  # workspaces: quota, expiry, the lease, the write-back
    "audit_check": 0,  # how an audit log is judged: rows checked, problems named (reads only)
    "audit": 3,
    "problems": 1,  # judge mode's stored problems, in a SQLite file of their own
    "connections": 1,  # serve's connection guard: read timeouts, the connection cap, accept() errors
    "storage": 3,  # whether the data dir takes records (free space, a probe write)
    "journal": 4,  # admitted runs, journaled before their first box, recorded once
    "trail": 4,  # the audit trail read without writing anything (verify, head, export)
    "compat": 2,  # other APIs' wire forms (Judge0, Piston) over wire.py's
    "admission": 4,
    "node": 5,
    "webhooks": 1,  # a submission's result POSTed to its callback_url: checked, signed, retried
    "submissions": 5,  # queued submissions: their records and the runner, over node's steps (at run time)
    "plans": 5,  # an execution body's engine plan (every surface's, and the workers')
    "queue": 1,  # the cluster's job queue: a Redis stream and its consumer group
    "worker": 6,  # a cluster's execution role: the queue's jobs through the Runner's path
    "cluster": 7,  # an API node's side of the cluster queue: enqueue, await, figures
    "routes": 8,  # one module per API surface, over node's pipeline and wire's translation
    "app": 9,
}


def service_imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    type_only = {
        id(n)
        for node in ast.walk(tree)
        if isinstance(node, ast.If) and ast.unparse(node.test) in ("TYPE_CHECKING", "typing.TYPE_CHECKING")
        for n in ast.walk(node)
    }
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and id(node) not in type_only:
            parts = node.module.split(".")
            if parts[:2] == ["stockade", "service"] and len(parts) > 2:
                found.add(parts[2])
    return found


def test_service_rooms_import_only_lower_rooms() -> None:
    service = SRC / "service"
    package_doc = ast.get_docstring(ast.parse((service / "__init__.py").read_text())) or ""
    for path in service.rglob("*.py"):
        relative = path.relative_to(service)
        room = relative.parts[0].removesuffix(".py")
        if room == "__init__":
            continue
        assert room in SERVICE_ROOMS, f"service/{relative} is in no room: give it a rank in SERVICE_ROOMS"
        assert f"{relative.parts[0]}" in package_doc, f"service/__init__.py does not say what {room} is"
        for other in service_imports(path) - {room}:
            assert SERVICE_ROOMS[other] < SERVICE_ROOMS[room], f"service/{relative} imports the higher room {other}"
