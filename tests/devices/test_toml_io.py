"""The profile TOML writer (devices._io): escaping per the TOML spec, round trip through tomllib,
atomic writes."""
from __future__ import annotations

import math

import pytest

from devices._io import to_toml, toml_string, write_toml

try:
    import tomllib
except ModuleNotFoundError:  # Python < 3.11
    import tomli as tomllib

AWKWARD = 'say "hi" \\ back\\slash\nnew line\ttab\r\x01\x1f\x7f\b\f é ∑ 🙂'


def test_strings_round_trip_with_every_escape():
    assert tomllib.loads(f"s = {toml_string(AWKWARD)}")["s"] == AWKWARD
    for code in [*range(0x20), 0x7F]:
        text = f"a{chr(code)}b"
        assert tomllib.loads(f"s = {toml_string(text)}")["s"] == text
    assert toml_string('"\\\n\x01') == '"\\"\\\\\\n\\u0001"'


def test_profile_document_round_trips():
    doc = {
        "name": AWKWARD,
        "kind": "cpu",
        "cache": True,
        "static_w": 12.5,
        "curve": [[4096.0, 1.5e10], [8192.0, 2.25e-3]],
        "tags": ["a\"b", "c\\d", "e\nf"],
        "peak": {"fp32": 1e12, "odd key": 2.0, "a.b": 3.0, AWKWARD: 4.0},
        "efficiency_curves": {"matmul_fp32@l2": [[1.0, 0.5], [64.0, 0.9]]},
        "memory": [{"name": "l1", "capacity_bytes": 32768.0, "cache": True},
                   {"name": "dram", "capacity_bytes": 1.0e12, "cache": False}],
    }
    comments = {"static_w": "estimate\nwith a newline \x01 and a tab\t", "peak.fp32": "measured",
                "memory.l1.capacity_bytes": "from /sys"}
    text = to_toml(doc, comments)
    assert tomllib.loads(text) == doc
    assert "# measured" in text and "# from /sys" in text


def test_numbers_are_floats_and_non_finite_values_survive():
    back = tomllib.loads(to_toml({"n": 3, "big": 10 ** 20, "tiny": 1e-300, "inf": math.inf,
                                  "minus_inf": -math.inf, "nan": math.nan}))
    assert back["n"] == 3.0 and isinstance(back["n"], float) and back["big"] == 1e20
    assert back["tiny"] == 1e-300 and back["inf"] == math.inf and back["minus_inf"] == -math.inf
    assert math.isnan(back["nan"])


def test_write_toml_is_atomic_and_writes_the_header(tmp_path):
    path = tmp_path / "sub" / "p.toml"
    assert write_toml(path, {"name": "x", "peak": {"fp32": 1.0}}, header="line one\nline two") == path
    text = path.read_text(encoding="utf-8")
    assert text.startswith("# line one\n# line two\nname = ")
    assert tomllib.loads(text) == {"name": "x", "peak": {"fp32": 1.0}}
    with pytest.raises(TypeError):
        write_toml(path, {"name": "y", "bad": object()})
    assert path.read_text(encoding="utf-8") == text  # the failed write left the old file
    assert [p.name for p in path.parent.iterdir()] == ["p.toml"]  # and no temporary file
