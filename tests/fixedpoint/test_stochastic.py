"""Stochastic rounding: the counter-hash rule, unbiasedness, reproducibility, chunking, sr_bits."""
from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import fixedpoint as fxp
from fixedpoint import _counter_rng
from fixedpoint.testing import formats, reference_raw, values

SEEDS = st.integers(0, 2**64 - 1)


def _exact_sr_raw(x: float, fmt: fxp.Fixed, r: int, k: int) -> int:
    """Round up iff r < floor(f * 2**k), f the exact fractional part of x * 2**frac; saturate."""
    q = Fraction(x) * Fraction(2) ** fmt.frac
    low = math.floor(q)
    n = low + (r < math.floor((q - low) * 2**k))
    return min(max(n, fmt.raw_min), fmt.raw_max)


@given(fmt=formats(), data=st.data(), seed=SEEDS, offset=st.integers(0, 2**64 - 1),
       k=st.sampled_from([1, 3, 8, 24, 53]))
def test_rule_equals_exact_rational_threshold(fmt, data, seed, offset, k) -> None:
    x = np.array(data.draw(st.lists(values(fmt), min_size=1, max_size=10)))
    got = fxp.to_raw(x, fmt, "stochastic", seed=seed, offset=offset, sr_bits=k, backend="numpy")
    draws = _counter_rng.random_ints(seed, offset, x.size, k).tolist()
    assert got.tolist() == [_exact_sr_raw(v, fmt, r, k) for v, r in zip(x.tolist(), draws)]


@given(fmt=formats(max_word=40), data=st.data(), seed=SEEDS)
def test_result_is_floor_or_ceil(fmt, data, seed) -> None:
    x = np.array(data.draw(st.lists(values(fmt), min_size=1, max_size=10)))
    for overflow in ("saturate", "wrap"):
        got = fxp.to_raw(x, fmt, "stochastic", overflow, seed=seed, backend="numpy").tolist()
        for v, g in zip(x.tolist(), got):
            assert g in (reference_raw(v, fmt, "floor", overflow),
                         reference_raw(v, fmt, "ceil", overflow))


@pytest.mark.parametrize("value", [0.3, -0.3, 5.7, -5.05, 1e-3])
def test_mean_error_within_four_sigma(value: float) -> None:
    fmt, n = fxp.Fixed(16, 4), 40_000
    y = fxp.quantize(np.full(n, value), fmt, "stochastic", seed=1234, backend="numpy")
    p = float(Fraction(value) * 16 - math.floor(Fraction(value) * 16))  # P(round up)
    sigma = math.sqrt(p * (1 - p) / n) * fmt.step
    assert abs(y.mean() - value) <= 4 * sigma
    assert set(np.unique(y)) <= {math.floor(value * 16) / 16, math.ceil(value * 16) / 16}


def test_same_seed_same_bits_other_seed_or_offset_differs() -> None:
    x = np.random.default_rng(0).normal(size=1000)
    fmt = fxp.Fixed(8, 3)
    a = fxp.to_raw(x, fmt, "stochastic", seed=7)
    assert np.array_equal(a, fxp.to_raw(x, fmt, "stochastic", seed=7))
    assert not np.array_equal(a, fxp.to_raw(x, fmt, "stochastic", seed=8))
    assert not np.array_equal(a, fxp.to_raw(x, fmt, "stochastic", seed=7, offset=1))


@given(n=st.integers(0, 300), split=st.integers(0, 300), seed=SEEDS,
       offset=st.integers(0, 2**64 - 1))
def test_chunked_calls_with_offsets_equal_one_call(n, split, seed, offset) -> None:
    x = np.random.default_rng(n).normal(size=n) * 10
    split = min(split, n)
    fmt = fxp.Fixed(10, 2)
    whole = fxp.to_raw(x, fmt, "stochastic", seed=seed, offset=offset)
    first = fxp.to_raw(x[:split], fmt, "stochastic", seed=seed, offset=offset)
    second = fxp.to_raw(x[split:], fmt, "stochastic", seed=seed, offset=(offset + split) % 2**64)
    assert np.array_equal(whole, np.concatenate([first, second]))


def test_counter_follows_c_order_of_any_shape() -> None:
    x = np.random.default_rng(1).normal(size=(6, 7))
    fmt = fxp.Fixed(8, 2)
    flat = fxp.to_raw(x.ravel(), fmt, "stochastic", seed=3)
    assert np.array_equal(fxp.to_raw(x, fmt, "stochastic", seed=3).ravel(), flat)
    assert np.array_equal(fxp.to_raw(np.asfortranarray(x), fmt, "stochastic", seed=3).ravel(), flat)


def test_seed_none_is_drawn_recorded_and_replayable() -> None:
    x = np.random.default_rng(2).normal(size=500)
    fmt = fxp.Fixed(8, 3)
    stats = fxp.QuantStats()
    y = fxp.quantize(x, fmt, "stochastic", stats=stats)
    assert stats.seed is not None
    assert np.array_equal(y, fxp.quantize(x, fmt, "stochastic", seed=stats.seed))
    again = fxp.QuantStats()
    fxp.quantize(x, fmt, "stochastic", stats=again)
    assert again.seed != stats.seed


def test_sr_bits_bias_ignores_low_fraction_bits() -> None:
    fmt, n = fxp.Fixed(16, 0), 20_000
    # with one random bit, a fraction of 0.3 never rounds up (floor(0.3 * 2) = 0) ...
    low = fxp.quantize(np.full(n, 2.3), fmt, "stochastic", seed=5, sr_bits=1)
    assert np.all(low == 2.0)
    # ... and 0.75 rounds up with probability floor(0.75 * 2) / 2 = 1/2, not 3/4
    high = fxp.quantize(np.full(n, 2.75), fmt, "stochastic", seed=5, sr_bits=1)
    assert abs((high == 3.0).mean() - 0.5) < 4 * math.sqrt(0.25 / n)
    default = fxp.to_raw(np.full(50, 2.3), fmt, "stochastic", seed=5)
    assert np.array_equal(default, fxp.to_raw(np.full(50, 2.3), fmt, "stochastic", seed=5,
                                              sr_bits=53))


def test_exact_values_never_move() -> None:
    x = np.arange(-20, 20) * 0.25
    y = fxp.quantize(x, fxp.Fixed(8, 2), "stochastic", seed=9)
    assert np.array_equal(x, y)
