"""The layers import only downward: sandbox < runtimes < engine < service < clients/cli."""

import ast
from pathlib import Path

SRC = Path(__file__).parent.parent / "src" / "stockade"
# What each layer may import from stockade (besides itself).
ALLOWED = {
    "sandbox": set(),
    "runtimes": set(),
    "engine": {"sandbox", "runtimes"},
    "service": {"sandbox", "runtimes", "engine"},
    "clients": set(),  # the SDK talks HTTP only
    "cli": {"sandbox", "runtimes", "engine", "service", "clients"},
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
