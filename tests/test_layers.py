"""Rule 1 of ARCHITECTURE.md: dependencies point one way, cli -> gb28181 -> (sip, registry).

Walks every module's AST (imports inside functions and TYPE_CHECKING blocks included) and fails on any
import against the arrow, and on asyncio imported by sip/ outside sip/aio/ (the sans-IO rule).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# layer -> top-level packages it may import from this project
ALLOWED = {
    "sip": {"sip"},
    "registry": {"registry"},
    "gb28181": {"gb28181", "sip", "registry"},
    "cli": {"cli", "gb28181", "sip", "registry"},
}
PROJECT = set(ALLOWED)


def _modules() -> list[Path]:
    files = [ROOT / "cli.py"] if (ROOT / "cli.py").exists() else []
    for pkg in ("sip", "registry", "gb28181"):
        files.extend(sorted((ROOT / pkg).rglob("*.py")))
    return files


def _imports(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module))
    return found


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(ROOT)))
def test_imports_follow_the_layering_arrow(path: Path) -> None:
    rel = path.relative_to(ROOT)
    layer = rel.parts[0].removesuffix(".py")
    bad = []
    for lineno, name in _imports(path):
        top = name.split(".")[0]
        if top in PROJECT and top not in ALLOWED[layer]:
            bad.append(f"{rel}:{lineno} imports {name} ({layer} may import only {sorted(ALLOWED[layer])})")
        if layer == "sip" and rel.parts[1] != "aio" and top in ("asyncio", "socket", "selectors", "uvloop"):
            bad.append(f"{rel}:{lineno} imports {name}: IO belongs in sip/aio/ only")
    assert not bad, "\n".join(bad)


def test_the_walk_sees_the_stack() -> None:
    names = {str(p.relative_to(ROOT)) for p in _modules()}
    assert {"sip/parser.py", "sip/endpoint.py", "sip/aio/runner.py"} <= names


def test_a_violation_would_be_caught(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text("from gb28181 import server\nimport registry.sqlite\n")
    assert [n for _, n in _imports(bad)] == ["gb28181", "registry.sqlite"]
