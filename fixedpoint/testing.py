"""Property-test helpers: hypothesis strategies and an exact reference quantizer.

``reference_quantize`` is a separate, deliberately plain implementation of the fixed-point rule
in exact rational arithmetic (``fractions.Fraction``), one Python scalar at a time. Use it to test
your own rounding code::

    from hypothesis import given
    from fixedpoint.testing import formats, values, reference_quantize

    @given(formats(max_word=24), st.data())
    def test_my_round(fmt, data):
        x = data.draw(values(fmt))
        assert my_round(x, fmt) == reference_quantize(x, fmt, "nearest_even", "saturate")

Requires ``hypothesis`` (the ``test`` extra).
"""
from __future__ import annotations

import math
from fractions import Fraction
from typing import Any, Optional

import numpy as np
from hypothesis import strategies as st

from ._fixed_array import FixedArray
from ._fixed_format import MAX_FRAC, MAX_WORD, MIN_FRAC, Fixed
from ._modes import Rounding, mode_names
from ._validate import check_int, check_overflow, check_rounding

#: Deterministic rounding modes (``reference_quantize`` has no random source).
DETERMINISTIC_MODES = mode_names(tuple(m for m in Rounding if not m.random))


def round_fraction(q: Fraction, rounding: str) -> int:
    """Round the exact rational ``q`` to an integer with a deterministic mode."""
    if rounding == "floor":
        return math.floor(q)
    if rounding == "ceil":
        return math.ceil(q)
    if rounding == "toward_zero":
        return math.trunc(q)
    if rounding == "nearest_even":
        return round(q)  # Fraction.__round__ rounds ties to even
    if rounding == "nearest_away":
        magnitude = math.floor(abs(q) + Fraction(1, 2))
        return magnitude if q >= 0 else -magnitude
    raise ValueError(f"rounding must be one of {DETERMINISTIC_MODES}, got {rounding!r}")


def reference_raw(x: float, fmt: Fixed, rounding: str = "nearest_even",
                  overflow: str = "saturate") -> int:
    """The exact raw integer of one float ``x`` (Python int).

    NaN raises ValueError; +-inf saturates (and raises with wrap).
    """
    check_overflow(overflow)
    x = float(x)
    if math.isnan(x):
        raise ValueError("x is NaN")
    if math.isinf(x):
        if overflow == "wrap":
            raise ValueError("overflow='wrap' cannot wrap infinity")
        return fmt.raw_max if x > 0 else fmt.raw_min
    n = round_fraction(Fraction(x) * Fraction(2) ** fmt.frac, rounding)
    if fmt.raw_min <= n <= fmt.raw_max:
        return n
    if overflow == "saturate":
        return fmt.raw_max if n > fmt.raw_max else fmt.raw_min
    return (n - fmt.raw_min) % (1 << fmt.word) + fmt.raw_min


def reference_quantize(x: Any, fmt: Fixed, rounding: str = "nearest_even",
                       overflow: str = "saturate") -> Any:
    """Exact quantization of ``x`` (scalar or array) onto ``fmt``: float64 values ``raw * step``.

    Deterministic modes only. A scalar gives a Python float, an array a float64 array.
    """
    check_rounding(rounding, DETERMINISTIC_MODES)
    arr = np.asarray(x, dtype=np.float64)
    raws = [reference_raw(v, fmt, rounding, overflow) for v in arr.ravel().tolist()]
    out = np.array([float(Fraction(r) / Fraction(2) ** fmt.frac) for r in raws],
                   dtype=np.float64).reshape(arr.shape)
    return float(out) if out.ndim == 0 else out


def formats(max_word: int = MAX_WORD, signed: Optional[bool] = None, min_frac: int = MIN_FRAC,
            max_frac: int = MAX_FRAC) -> st.SearchStrategy[Fixed]:
    """Fixed formats with ``1 <= word <= max_word`` and ``min_frac <= frac <= max_frac``.

    ``signed=None`` draws both kinds. Small words and frac near ``[0, word]`` come up often.
    """
    check_int(max_word, "max_word", 1, MAX_WORD)
    check_int(min_frac, "min_frac", MIN_FRAC, MAX_FRAC)
    check_int(max_frac, "max_frac", min_frac, MAX_FRAC)
    sign = st.booleans() if signed is None else st.just(bool(signed))
    word = st.integers(1, max_word)
    near_lo = max(min_frac, -2)
    near = st.integers(near_lo, max(near_lo, min(max_frac, 2 * max_word)))
    frac = st.one_of(near, st.integers(min_frac, max_frac))
    return st.builds(Fixed, word=word, frac=frac, signed=sign)


def _grid_value(fmt: Fixed, raw: int, part: Fraction) -> float:
    return float((Fraction(raw) + part) / Fraction(2) ** fmt.frac)


def values(fmt: Fixed, allow_nan: bool = False, allow_infinity: bool = False,
           width: int = 64) -> st.SearchStrategy[float]:
    """Floats for ``fmt``: grid points, ties ``(k + 1/2) * step``, near-ties, +-max, min,
    just outside the range, far outside, -0.0, subnormals and arbitrary floats.

    ``width=32`` (or 16) rounds each value to that float width; NaN and +-inf on request.
    """
    raw = st.integers(fmt.raw_min - 4, fmt.raw_max + 4)
    part = st.sampled_from([Fraction(0), Fraction(1, 2), Fraction(1, 4), Fraction(3, 4),
                            Fraction(1, 2) - Fraction(1, 2**30), Fraction(1, 2) + Fraction(1, 2**30),
                            Fraction(-1, 2)])
    edges = [fmt.max, fmt.min, -fmt.max, fmt.step, -fmt.step, 0.0, -0.0, 5e-324, -5e-324,
             2.2250738585072014e-308, 1e-300, -1e300, 1e300, 1.7976931348623157e308,
             _grid_value(fmt, fmt.raw_max, Fraction(1, 2)), _grid_value(fmt, fmt.raw_min, Fraction(-1, 2)),
             float(2 ** (fmt.word - fmt.frac)), -float(2 ** (fmt.word - fmt.frac))]
    strategy = st.one_of(
        st.builds(lambda r, p: _grid_value(fmt, r, p), raw, part),
        st.sampled_from(edges),
        st.floats(-4.0 * abs(fmt.min or 1.0), 4.0 * max(fmt.max, 1.0)),
        st.floats(allow_nan=False, allow_infinity=False),
    )
    if allow_nan or allow_infinity:
        strategy = st.one_of(strategy, st.sampled_from(
            ([math.nan] if allow_nan else []) + ([math.inf, -math.inf] if allow_infinity else [])))
    if width != 64:
        dtype = {32: np.float32, 16: np.float16}[width]
        strategy = strategy.map(lambda v: _narrow(v, dtype))
    return strategy


def _narrow(v: float, dtype: Any) -> float:
    """``v`` rounded to ``dtype``; finite values that overflow become the largest finite value."""
    with np.errstate(over="ignore"):
        narrow = float(dtype(v))
    if math.isinf(narrow) and math.isfinite(v):
        return math.copysign(float(np.finfo(dtype).max), v)
    return narrow


def fixed_arrays(fmt: Any = None, shape: Any = None, *, max_word: int = MAX_WORD, max_dims: int = 2,
                 max_side: int = 4) -> st.SearchStrategy[FixedArray]:
    """FixedArrays with raw values anywhere in the format's range (``raw_min``, ``raw_max`` and 0
    drawn often).

    ``fmt``: a Fixed or a strategy of them (default ``formats(max_word)``); ``shape``: a tuple or a
    strategy (default 0 to ``max_dims`` dimensions of 0 to ``max_side`` elements).
    """
    from hypothesis.extra.numpy import array_shapes, arrays

    fmts = st.just(fmt) if isinstance(fmt, Fixed) else (fmt or formats(max_word))
    shapes = (st.just(tuple(shape)) if isinstance(shape, (tuple, list)) else
              shape or array_shapes(min_dims=0, max_dims=max_dims, min_side=0, max_side=max_side))

    def arrays_of(f: Fixed) -> st.SearchStrategy[FixedArray]:
        raw = st.integers(f.raw_min, f.raw_max) | st.sampled_from([f.raw_min, f.raw_max, 0])
        return shapes.flatmap(lambda s: arrays(np.int64, s, elements=raw)).map(
            lambda r: FixedArray(r, f))

    return fmts.flatmap(arrays_of)
