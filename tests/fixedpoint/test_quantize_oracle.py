"""The numpy oracle against exact rational arithmetic, and its algebraic properties."""
from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import fixedpoint as fxp
from fixedpoint.testing import DETERMINISTIC_MODES, formats, reference_raw, values

OVERFLOWS = ("saturate", "wrap")


@st.composite
def format_and_values(draw, max_word: int = 62, width: int = 64, **kwargs):
    fmt = draw(formats(max_word=max_word, **kwargs))
    xs = draw(st.lists(values(fmt, width=width), min_size=1, max_size=12))
    return fmt, np.array(xs, dtype=np.float64 if width == 64 else np.float32)


@pytest.mark.parametrize("overflow", OVERFLOWS)
@pytest.mark.parametrize("rounding", DETERMINISTIC_MODES)
@given(case=format_and_values())
def test_raw_equals_exact_rational_rounding(rounding: str, overflow: str, case) -> None:
    fmt, x = case
    got = fxp.to_raw(x, fmt, rounding, overflow, backend="numpy")
    assert got.dtype == np.int64
    assert got.tolist() == [reference_raw(v, fmt, rounding, overflow) for v in x.tolist()]


@pytest.mark.parametrize("signed", [True, False])
@given(data=st.data())
def test_float32_values_equal_exact_reference(signed: bool, data) -> None:
    fmt, x = data.draw(format_and_values(max_word=24, width=32, signed=signed, min_frac=-20,
                                         max_frac=40))
    rounding = data.draw(st.sampled_from(DETERMINISTIC_MODES))
    overflow = data.draw(st.sampled_from(OVERFLOWS))
    y = fxp.quantize(x, fmt, rounding, overflow, backend="numpy")
    assert y.dtype == np.float32
    expected = [reference_raw(v, fmt, rounding, overflow) * fmt.step for v in x.tolist()]
    assert y.tolist() == expected


@pytest.mark.parametrize("overflow", OVERFLOWS)
@given(case=format_and_values(max_word=53), rounding=st.sampled_from(DETERMINISTIC_MODES))
def test_idempotent(overflow: str, case, rounding: str) -> None:
    fmt, x = case
    y = fxp.quantize(x, fmt, rounding, overflow, backend="numpy")
    assert np.array_equal(fxp.quantize(y, fmt, rounding, overflow, backend="numpy"), y)


@given(case=format_and_values(max_word=53), rounding=st.sampled_from(DETERMINISTIC_MODES))
def test_monotone_with_saturation(case, rounding: str) -> None:
    fmt, x = case
    x = np.sort(x)
    y = fxp.quantize(x, fmt, rounding, backend="numpy")
    assert np.all(np.diff(y) >= 0)


@given(case=format_and_values(max_word=53), rounding=st.sampled_from(DETERMINISTIC_MODES))
def test_error_bounds_inside_the_range(case, rounding: str) -> None:
    fmt, x = case
    x = x[(x >= fmt.min) & (x <= fmt.max)]
    y = fxp.quantize(x, fmt, rounding, backend="numpy")
    step = Fraction(fmt.step)
    for xv, yv in zip(x.tolist(), y.tolist()):
        err = Fraction(yv) - Fraction(xv)
        assert abs(err) <= step / 2 if rounding.startswith("nearest") else abs(err) < step
        assert {"floor": err <= 0, "ceil": err >= 0,
                "toward_zero": abs(yv) <= abs(xv)}.get(rounding, True)


@pytest.mark.parametrize("word, int_type", [(8, np.int8), (16, np.int16), (32, np.int32)])
@given(data=st.data())
def test_wrap_is_twos_complement(word: int, int_type, data) -> None:
    frac = data.draw(st.integers(-8, 16))
    x = np.array(data.draw(st.lists(st.floats(-2.0**40, 2.0**40), min_size=1, max_size=20)))
    rounding = data.draw(st.sampled_from(DETERMINISTIC_MODES))
    wide = fxp.to_raw(x * 2.0**-frac, fxp.Fixed(62, frac), rounding, "saturate", backend="numpy")
    got = fxp.to_raw(x * 2.0**-frac, fxp.Fixed(word, frac), rounding, "wrap", backend="numpy")
    assert np.array_equal(got, wide.astype(int_type).astype(np.int64))
    unsigned = fxp.to_raw(x * 2.0**-frac, fxp.Fixed(word, frac, False), rounding, "wrap",
                          backend="numpy")
    assert np.array_equal(unsigned, wide & ((1 << word) - 1))


def test_ties_and_signs_s16_8() -> None:
    fmt = fxp.Fixed(16, 8)
    x = np.array([0.5, 1.5, 2.5, -0.5, -1.5, -2.5]) * fmt.step
    expect = {"nearest_even": [0, 2, 2, 0, -2, -2], "nearest_away": [1, 2, 3, -1, -2, -3],
              "toward_zero": [0, 1, 2, 0, -1, -2], "floor": [0, 1, 2, -1, -2, -3],
              "ceil": [1, 2, 3, 0, -1, -2]}
    for rounding, raw in expect.items():
        assert fxp.to_raw(x, fmt, rounding).tolist() == raw, rounding


def test_negative_zero_gives_positive_zero() -> None:
    y = fxp.quantize(np.array([-0.0, -1e-9]), fxp.Fixed(8, 4))
    assert y.tolist() == [0.0, 0.0] and not np.signbit(y).any()


def test_infinities_saturate() -> None:
    fmt = fxp.Fixed(8, 4)
    assert fxp.quantize(np.array([np.inf, -np.inf]), fmt).tolist() == [fmt.max, fmt.min]
    assert fxp.to_raw(np.array([-np.inf]), fxp.Fixed(8, 4, False)).tolist() == [0]


def test_underflowing_scale_still_rounds_exactly() -> None:
    # 5e-324 * 2**-4 underflows in float64; ceil must still give one step
    fmt = fxp.Fixed(8, -4)
    x = np.array([5e-324, -5e-324, 1e-310])
    assert fxp.to_raw(x, fmt, "ceil").tolist() == [1, 0, 1]
    assert fxp.to_raw(x, fmt, "floor").tolist() == [0, -1, 0]
    assert fxp.to_raw(x, fmt, "nearest_away").tolist() == [0, 0, 0]


def test_huge_values_wrap_exactly() -> None:
    fmt = fxp.Fixed(16, 8)
    x = np.array([1e300, -1.7976931348623157e308, 2.0**200 + 2.0**148, 3.0 * 2**7 + 2**-8])
    got = fxp.to_raw(x, fmt, overflow="wrap")
    assert got.tolist() == [reference_raw(v, fmt, "nearest_even", "wrap") for v in x.tolist()]


def test_wide_word_limits() -> None:
    fmt = fxp.Fixed(62, 0)
    x = np.array([2.0**61, -(2.0**61), 2.0**61 - 512, 2.0**62])
    assert fxp.to_raw(x, fmt).tolist() == [2**61 - 1, -(2**61), 2**61 - 512, 2**61 - 1]
    assert fxp.to_raw(x, fmt, overflow="wrap").tolist() == [-(2**61), -(2**61), 2**61 - 512, 0]
    assert fxp.to_raw(x, fxp.Fixed(62, 0, False)).tolist() == [2**61, 0, 2**61 - 512, 2**62 - 1]


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_dtype_and_shape_kept(dtype) -> None:
    x = np.linspace(-3, 3, 12, dtype=dtype).reshape(3, 4)
    y = fxp.quantize(x, fxp.Fixed(8, 3))
    assert y.dtype == dtype and y.shape == (3, 4)
    assert np.array_equal(y.astype(np.float64), np.round(x.astype(np.float64) * 8) / 8)


def test_scalars_and_integer_input() -> None:
    fmt = fxp.Fixed(16, 8)
    assert fxp.quantize(0.3, fmt) == 77 / 256
    assert np.ndim(fxp.quantize(0.3, fmt)) == 0
    y = fxp.quantize(np.arange(-3, 4), fxp.Fixed(4, 0))
    assert y.dtype == np.float64 and y.tolist() == [-3, -2, -1, 0, 1, 2, 3]
    assert fxp.quantize([1, 200], fxp.Fixed(8, 0)).tolist() == [1.0, 127.0]


def test_from_raw_round_trip() -> None:
    fmt = fxp.Fixed(12, 5, signed=False)
    x = np.linspace(-10, 200, 77)
    raw = fxp.to_raw(x, fmt)
    assert np.array_equal(fxp.from_raw(raw, fmt), fxp.quantize(x, fmt))
    assert fxp.from_raw(raw, fmt, np.float32).dtype == np.float32
    assert fxp.from_raw(np.int64(3), fmt) == 3 / 32


def test_stats_counts_and_errors() -> None:
    fmt = fxp.Fixed(16, 8)
    x = np.array([1000.0, -1000.0, 1e-5, 0.5, np.nan, 0.3])
    stats = fxp.QuantStats()
    y = fxp.quantize(x, fmt, stats=stats, nan="zero")
    assert y[4] == 0.0
    assert (stats.n, stats.nan, stats.saturated, stats.flushed_to_zero, stats.wrapped) == (6, 1, 2, 1, 0)
    errors = [1000 - fmt.max, 1000 + fmt.min, 1e-5, 0.0, abs(77 / 256 - 0.3)]
    assert stats.max_abs_error == max(errors)
    assert stats.mean_abs_error == pytest.approx(sum(errors) / 5, rel=1e-15)
    assert stats.fraction_saturated == 2 / 6
    fxp.quantize(np.array([300.0]), fmt, "floor", "wrap", stats=stats)
    assert (stats.n, stats.wrapped, stats.seed) == (7, 1, None)
    both = fxp.QuantStats().merge(stats)
    assert both == stats and "saturated=2" in str(stats)


def test_stats_of_nothing() -> None:
    stats = fxp.QuantStats()
    fxp.quantize(np.zeros(0), fxp.Fixed(8, 4), stats=stats)
    assert stats.n == 0 and stats.fraction_saturated == 0.0 and math.isnan(stats.mean_abs_error)


def _lane_order_sum(errors: list[float]) -> float:
    """The documented order, written as plain Python: per BLOCK, LANES interleaved lane sums
    added left to right, then the lanes in order; blocks added exactly."""
    from fixedpoint._stats import BLOCK, LANES

    totals = []
    for start in range(0, len(errors), BLOCK):
        block = errors[start:start + BLOCK]
        lanes = [0.0] * LANES
        for i, e in enumerate(block):
            lanes[i % LANES] += e
        total = 0.0
        for lane in lanes:
            total += lane
        totals.append(total)
    return math.fsum(totals)


@pytest.mark.parametrize("backend", ["numpy", "numba"])
def test_error_sum_follows_the_lane_order(backend: str) -> None:
    """Errors of very different magnitudes make every summation order give other bits; the sum
    must be the lane order of ``_stats.block_sums`` (the statistics path and the NaN path)."""
    from fixedpoint._stats import BLOCK

    rng = np.random.default_rng(5)
    n = BLOCK + 77
    x = rng.uniform(-1, 1, n) * 10.0 ** rng.integers(-9, 3, n)  # errors from ~1e-9 to saturation
    fmt = fxp.Fixed(12, 6)
    for with_nan in (False, True):
        if with_nan:
            x[3] = np.nan
        stats = fxp.QuantStats()
        y = fxp.quantize(x, fmt, "stochastic", seed=9, stats=stats, backend=backend, nan="zero")
        errors = np.where(np.isnan(x), 0.0, np.abs(y - np.nan_to_num(x))).tolist()
        assert stats.sum_abs_error == _lane_order_sum(errors)
        sequential = math.fsum(sum(errors[s:s + BLOCK]) for s in range(0, n, BLOCK))
        assert stats.sum_abs_error != sequential  # the data tell the orders apart
