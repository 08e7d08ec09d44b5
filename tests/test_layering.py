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
