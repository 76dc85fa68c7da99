"""hcnode.consensus stays pure: standard library only, no clock, I/O,
threads or global randomness (DESIGN.md, "Layers")."""
from __future__ import annotations

import ast
from pathlib import Path

import hcnode.consensus

PACKAGE = Path(hcnode.consensus.__file__).parent
ALLOWED_IMPORTS = {"__future__", "collections", "collections.abc", "dataclasses", "enum", "random", "typing"}


def _modules() -> list[Path]:
    return sorted(PACKAGE.glob("*.py"))


def test_consensus_imports_only_pure_standard_library_modules() -> None:
    for path in _modules():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                names = [node.module or ""]
            else:
                continue
            assert set(names) <= ALLOWED_IMPORTS, f"{path.name} imports {names}"


def test_consensus_uses_randomness_only_through_an_injected_random_instance() -> None:
    for path in _modules():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "random":
                assert node.attr == "Random", f"{path.name} uses random.{node.attr}"


def test_public_api_is_declared() -> None:
    for name in hcnode.consensus.__all__:
        assert hasattr(hcnode.consensus, name)
    assert {"RawNode", "Config", "Ready", "MemoryStorage", "Storage", "RaftError", "Message"} <= set(
        hcnode.consensus.__all__
    )
