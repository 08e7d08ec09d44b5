"""Layering rule: fixedpoint and devices never import hwsim or each other."""
from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FORBIDDEN = {"fixedpoint": {"hwsim", "devices"}, "devices": {"hwsim", "fixedpoint"}}


def _imported_top_names(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_no_forbidden_imports_in_source(package: str) -> None:
    bad = []
    for path in sorted((ROOT / package).rglob("*.py")):
        hits = _imported_top_names(path) & FORBIDDEN[package]
        bad.extend(f"{path.relative_to(ROOT)} imports {name}" for name in sorted(hits))
    assert not bad, "layering violated:\n" + "\n".join(bad)


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_importing_package_loads_no_forbidden_module(package: str) -> None:
    code = (
        f"import sys, {package}; "
        f"bad = sorted(m for m in sys.modules if m.split('.')[0] in {sorted(FORBIDDEN[package])!r}); "
        "print(','.join(bad))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "", f"importing {package} loaded {out.stdout.strip()}"


def _private_imports(path: Path) -> set[str]:
    """Modules ``pkg._name`` imported (absolutely) by ``path``, pkg one of the three packages."""
    tree = ast.parse(path.read_text(), filename=str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                 else [node.module] if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module
                 else [])
        for name in names:
            parts = name.split(".")
            if parts[0] in ("fixedpoint", "devices", "hwsim") and any(p.startswith("_") for p in parts[1:]):
                found.add(name)
    return found


def test_no_private_imports_across_packages() -> None:
    """What one package shares with another is public API: no ``from fixedpoint._x`` outside
    fixedpoint and its own tests, and likewise for devices. (Benchmark scripts that profile a
    package's internals may import them.)"""
    bad = []
    for folder in ("fixedpoint", "devices", "hwsim", "tests"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            rel = path.relative_to(ROOT).parts
            owner = rel[1] if rel[0] == "tests" and len(rel) > 2 else rel[0]
            for name in sorted(_private_imports(path)):
                if name.split(".")[0] != owner and name.split(".")[0] in FORBIDDEN:
                    bad.append(f"{path.relative_to(ROOT)} imports {name}")
    assert not bad, "private modules imported across packages:\n" + "\n".join(bad)
