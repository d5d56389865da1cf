"""The data layer stands alone: nam_mmm.data imports nothing of the package but itself and nam_mmm.errors
(never training, evaluation, models, serving …), so it can be used and tested without them."""

from __future__ import annotations

import ast
from pathlib import Path

DATA = Path(__file__).resolve().parents[1] / "nam_mmm" / "data"
ALLOWED = ("nam_mmm.data", "nam_mmm.errors")


def _package_imports(path: Path) -> list[str]:
    out = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.append(node.module)
        elif isinstance(node, ast.Import):
            out += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level:
            out.append("." * node.level + (node.module or ""))
    return [m for m in out if m.startswith(("nam_mmm", "."))]


def test_the_data_layer_imports_only_itself_and_errors() -> None:
    modules = sorted(DATA.rglob("*.py"))
    assert len(modules) > 20
    bad = {
        str(p.relative_to(DATA)): m
        for p in modules
        for m in _package_imports(p)
        if not any(m == a or m.startswith(a + ".") for a in ALLOWED)
    }
    assert not bad, f"nam_mmm.data imports outside itself: {bad}"
