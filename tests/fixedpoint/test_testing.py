"""fixedpoint.testing: strategies, the exact reference, and the README example."""
from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import pytest
from hypothesis import find, given, settings
from hypothesis import strategies as st

import fixedpoint as fxp
from fixedpoint.testing import formats, reference_quantize, reference_raw, values

README = Path(__file__).resolve().parents[2] / "README.md"


@given(fmt=formats(max_word=20, signed=False, min_frac=-3, max_frac=9))
def test_formats_respect_bounds(fmt: fxp.Fixed) -> None:
    assert 1 <= fmt.word <= 20 and -3 <= fmt.frac <= 9 and not fmt.signed


@given(fmt=formats(), data=st.data())
def test_values_are_floats_of_the_requested_width(fmt: fxp.Fixed, data) -> None:
    x = data.draw(values(fmt, width=32))
    assert isinstance(x, float) and math.isfinite(x)
    assert float(np.float32(x)) == x


def test_values_reach_ties_edges_and_specials() -> None:
    fmt = fxp.Fixed(8, 2)
    search = settings(derandomize=True, max_examples=1000, database=None)
    find(values(fmt), lambda v: v == fmt.max, settings=search)
    find(values(fmt), lambda v: (v * 4) % 1 == 0.5 and fmt.min < v < fmt.max, settings=search)
    find(values(fmt), lambda v: v > 1e6, settings=search)
    find(values(fmt), lambda v: v == 0 and math.copysign(1, v) < 0, settings=search)
    find(values(fmt, allow_nan=True), math.isnan, settings=search)
    find(values(fmt, allow_infinity=True), math.isinf, settings=search)


def test_reference_known_values() -> None:
    fmt = fxp.Fixed(16, 8)
    assert reference_quantize(0.3, fmt) == 77 / 256
    assert reference_quantize(1000.0, fmt) == fmt.max
    assert reference_quantize(128.0, fmt, "floor", "wrap") == -128.0
    y = reference_quantize(np.array([[2.5, -2.5]]) / 256, fmt, "nearest_away")
    assert y.shape == (1, 2) and y.tolist() == [[3 / 256, -3 / 256]]
    assert reference_raw(-np.inf, fmt) == -32768
    with pytest.raises(ValueError):
        reference_raw(np.nan, fmt)
    with pytest.raises(ValueError, match="rounding must be one of"):
        reference_quantize(0.3, fmt, "stochastic")


def _readme_example() -> str:
    text = README.read_text()
    section = text[text.index("<!-- section: fixedpoint -->"):]
    blocks = re.findall(r"```python\n(.*?)```", section, flags=re.S)
    return next(b for b in blocks if "reference_quantize" in b)


def test_readme_example_runs_and_catches_a_wrong_rounding() -> None:
    code = _readme_example()
    assert len(code.strip().splitlines()) <= 12
    namespace: dict = {}
    exec(compile(code, str(README), "exec"), namespace)
    example = namespace["test_my_round"]
    example()  # the correct function passes on every drawn case
    namespace["my_round"] = _ties_up  # the example's globals are ``namespace``
    with pytest.raises(AssertionError):  # a tie, as values() draws them, exposes the bug
        example.hypothesis.inner_test(fxp.Fixed(8, 2), _Drawn(2.5 / 4))


class _Drawn:
    """Stands in for hypothesis' ``data``: every draw returns ``value``."""

    def __init__(self, value: float) -> None:
        self.value = value

    def draw(self, strategy) -> float:
        return self.value


def _ties_up(x: float, fmt: fxp.Fixed) -> float:
    """A wrong rounding: ties go up instead of to even."""
    raw = np.clip(np.floor(x * 2.0**fmt.frac + 0.5), fmt.raw_min, fmt.raw_max)
    return raw * fmt.step
