"""matmul with an accumulator format against a nested-loop Python-int reference (both accumulator
modes, alignment rounding, the BLAS split path, shapes)."""
from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fixedpoint import Fixed, FixedArray, QuantStats, matmul
from fixedpoint._counter_rng import random_ints
from fixedpoint._matmul import dot_mod64
from fixedpoint.testing import fixed_arrays, formats, round_fraction

MODES = ("nearest_even", "nearest_away", "toward_zero", "floor", "ceil", "stochastic")


def draw(seed: int, counter: int, k: int = 53) -> int:
    return int(random_ints(seed, counter, 1, k)[0])


def round_to(x: Fraction, rounding: str, seed: int, counter: int, k: int = 53) -> int:
    if rounding != "stochastic":
        return round_fraction(x, rounding)
    f = math.floor(x)
    return f + (draw(seed, counter, k) < math.floor((x - f) * 2**k))


def fit(v: int, fmt: Fixed, overflow: str) -> int:
    if overflow == "saturate":
        return min(max(v, fmt.raw_min), fmt.raw_max)
    v %= 1 << fmt.word
    return v - (1 << fmt.word) if v > fmt.raw_max else v


def reference(a: FixedArray, b: FixedArray, acc: Fixed, out: Fixed, rounding: str, overflow: str,
              acc_overflow: str, seed: int = 0, k: int = 53) -> list[list[int]]:
    """Nested loops over Python ints: the MAC array of the matmul docstring, one product at a time."""
    M, K = a.shape
    N = b.shape[1]
    scale = Fraction(2) ** (acc.frac - a.fmt.frac - b.fmt.frac)
    result = []
    for m in range(M):
        row = []
        for n in range(N):
            total = 0
            for i in range(K):
                product = int(a.raw[m, i]) * int(b.raw[i, n])
                total += round_to(product * scale, rounding, seed, (m * N + n) * K + i, k)
                if acc_overflow == "saturate":
                    total = fit(total, acc, "saturate")
            total = fit(total, acc, "wrap")  # no-op after saturation
            cast = round_to(total * Fraction(2) ** (out.frac - acc.frac), rounding, seed,
                            M * N * K + m * N + n, k)
            row.append(fit(cast, out, overflow))
        result.append(row)
    return result


operand_formats = formats(max_word=31, min_frac=-4, max_frac=24)


@settings(max_examples=80)
@given(operand_formats, operand_formats, formats(min_frac=-8, max_frac=48),
       formats(min_frac=-8, max_frac=48), st.sampled_from(MODES), st.sampled_from(["saturate", "wrap"]),
       st.sampled_from(["saturate", "wrap"]), st.integers(0, 4), st.integers(0, 6),
       st.integers(0, 4), st.data())
def test_matmul_equals_python_int_mac(fa, fb, acc, out, rounding, overflow, acc_overflow, M, K, N,
                                      data):
    a = data.draw(fixed_arrays(fmt=fa, shape=(M, K)))
    b = data.draw(fixed_arrays(fmt=fb, shape=(K, N)))
    got = matmul(a, b, acc, out, rounding, overflow, acc_overflow, seed=7)
    assert got.fmt == out and got.shape == (M, N)
    assert got.raw.tolist() == reference(a, b, acc, out, rounding, overflow, acc_overflow, seed=7)


@pytest.mark.parametrize("acc_overflow", ["wrap", "saturate"])
def test_accumulator_overflow_modes(acc_overflow):
    """Sums that leave an 8-bit accumulator: wrap is the sum mod 2**8, saturate is order-dependent."""
    a = FixedArray([[100, 100, -100, -100]], Fixed(8, 0))
    b = FixedArray([[1], [1], [1], [1]], Fixed(8, 0))
    got = matmul(a, b, Fixed(8, 0), Fixed(16, 0), acc_overflow=acc_overflow)
    # wrap: 0 exactly; saturate: 100, 127 (clamped), 27, -73
    assert got.raw.tolist() == [[0 if acc_overflow == "wrap" else -73]]


@pytest.mark.parametrize("rounding", MODES)
@pytest.mark.parametrize("acc_overflow", ["wrap", "saturate"])
def test_product_rounding_ties(rounding, acc_overflow):
    """Products at exact ties (+-0.5, +-1.5, ... acc steps) and beside them (+-0.25, +-0.75)."""
    a = FixedArray([[1, 1], [-1, 1], [3, 0], [-3, 0], [5, 1], [-5, 2], [7, -1], [-7, 1]], Fixed(8, 1))
    b = FixedArray([[1, 2], [1, 3]], Fixed(8, 1))
    acc = Fixed(12, 1)  # products have 2 fraction bits: each drops one, at a tie when odd
    got = matmul(a, b, acc, acc, rounding, acc_overflow=acc_overflow, seed=9)
    assert got.raw.tolist() == reference(a, b, acc, acc, rounding, "saturate", acc_overflow, 9)


@settings(max_examples=25)
@given(st.integers(24, 32), st.integers(24, 32), st.integers(1, 40),
       st.sampled_from(["saturate", "wrap"]), st.sampled_from(["s62.22", "s40.22", "u30.30"]),
       st.data())
def test_blas_split_path(wa, wb, K, acc_overflow, acc, data):
    """Operands with max|a|*max|b|*K far above 2**53: limb-split BLAS products (and the MAC loop)."""
    fa, fb = Fixed(wa, 10), Fixed(wb, 12)
    a = data.draw(fixed_arrays(fmt=fa, shape=(3, K)))
    b = data.draw(fixed_arrays(fmt=fb, shape=(K, 2)))
    exact = [[sum(int(a.raw[m, k]) * int(b.raw[k, n]) for k in range(K)) for n in range(2)]
             for m in range(3)]
    if wa + wb + math.ceil(math.log2(K)) <= 62:  # else `@` refuses (tested elsewhere)
        assert (a @ b).raw.tolist() == exact
    acc = Fixed.parse(acc)  # products have 22 fraction bits; u30.30 appends 8 zero bits
    got = matmul(a, b, acc, acc, acc_overflow=acc_overflow)
    assert got.raw.tolist() == reference(a, b, acc, acc, "nearest_even", "saturate", acc_overflow)


def test_dot_mod64_long_k_and_wraparound():
    """K above one BLAS chunk, and sums beyond int64 (kept modulo 2**64)."""
    rng = np.random.default_rng(0)
    K = 5000
    a = rng.integers(-2**30, 2**30, (2, K))
    b = rng.integers(-2**31, 2**31, (K, 2))
    a[0] = 2**30 - 1
    b[:, 0] = 2**31 - 1  # a[0] . b[:, 0] = 5000 * (2**30 - 1) * (2**31 - 1) > 2**63
    want = [[sum(int(x) * int(y) for x, y in zip(a[m], b[:, n])) for n in range(2)] for m in range(2)]
    wrapped = [[(v + 2**63) % 2**64 - 2**63 for v in row] for row in want]
    assert dot_mod64(a, b).tolist() == wrapped
    for mod_bits in range(1, 64, 3):  # limb products reaching only bits >= mod_bits may be skipped
        got = dot_mod64(a[:, :300], b[:300], mod_bits).tolist()
        exact = [[sum(int(x) * int(y) for x, y in zip(a[m, :300], b[:300, n])) for n in range(2)]
                 for m in range(2)]
        assert [[v % 2**mod_bits for v in row] for row in got] == \
            [[v % 2**mod_bits for v in row] for row in exact], mod_bits


@pytest.mark.parametrize("shape_a, shape_b, shape_out", [
    ((3,), (3, 2), (2,)), ((2, 3), (3,), (2,)), ((3,), (3,), ()), ((2, 1), (1, 4), (2, 4)),
    ((2, 0), (0, 3), (2, 3)), ((0,), (0,), ()),
])
def test_shapes(shape_a, shape_b, shape_out):
    rng = np.random.default_rng(1)
    fmt = Fixed(12, 4)
    a = FixedArray(rng.integers(-2000, 2000, shape_a), fmt)
    b = FixedArray(rng.integers(-2000, 2000, shape_b), fmt)
    got = matmul(a, b, Fixed(40, 8), Fixed(30, 4))
    want = np.matmul(a.raw.astype(object), b.raw.astype(object))  # exact Python ints
    assert got.shape == shape_out and (a @ b).shape == shape_out
    assert (a @ b).raw.tolist() == np.asarray(want).tolist()
    # acc frac 8 = product frac: exact sums, then >> 4 with ties to even
    rounded = [round_fraction(Fraction(int(v), 16), "nearest_even") for v in np.ravel(want)]
    assert got.raw.reshape(-1).tolist() == rounded


def test_float_operands_with_formats():
    x = np.array([[0.5, -0.25], [1.0, 2.0]])
    w = np.array([[1.5], [0.75]])
    got = matmul(x, w, a_fmt=Fixed(8, 4), b_fmt=Fixed(8, 4))
    assert got.to_float().tolist() == [[0.5625], [3.0]]
    fixed_x = FixedArray.from_float(x, Fixed(8, 4))
    assert np.array_equal(matmul(fixed_x, w, b_fmt=Fixed(8, 4)).raw, got.raw)


def test_bad_arguments():
    a = FixedArray(np.zeros((2, 3), dtype=np.int64), Fixed(8, 0))
    with pytest.raises(ValueError, match="inner dimensions"):
        matmul(a, a)
    with pytest.raises(ValueError, match="1-D or 2-D"):
        matmul(a.reshape(1, 2, 3), a.T)
    with pytest.raises(TypeError, match="b_fmt"):
        matmul(a, np.ones((3, 1)))
    with pytest.raises(ValueError, match="contradicts"):
        matmul(a, a.T, a_fmt=Fixed(9, 0))
    with pytest.raises(ValueError, match="acc_overflow"):
        matmul(a, a.T, acc_overflow="clip")
    with pytest.raises(ValueError, match="rounding"):
        matmul(a, a.T, rounding="up")
    with pytest.raises(TypeError, match="acc"):
        matmul(a, a.T, acc="s40.16")
    with pytest.raises(ValueError, match="2\\*\\*62"):
        big = FixedArray(np.zeros((1, 1), dtype=np.int64), Fixed(40, 0))
        matmul(big, big)
    with pytest.raises(TypeError, match="FixedArray"):
        a @ np.ones((3, 1))


def test_stochastic_replay():
    rng = np.random.default_rng(2)
    a = FixedArray(rng.integers(-128, 128, (4, 8)), Fixed(8, 4))
    b = FixedArray(rng.integers(-128, 128, (8, 3)), Fixed(8, 4))
    acc = Fixed(20, 2)  # products have 8 fraction bits: each is rounded stochastically
    first = matmul(a, b, acc, Fixed(12, 1), "stochastic", seed=3)
    assert first.raw.tolist() == reference(a, b, acc, Fixed(12, 1), "stochastic", "saturate", "wrap", 3)
    assert np.array_equal(matmul(a, b, acc, Fixed(12, 1), "stochastic", seed=3).raw, first.raw)
    assert not np.array_equal(matmul(a, b, acc, Fixed(12, 1), "stochastic", seed=4).raw, first.raw)
    shifted = matmul(a, b, acc, Fixed(12, 1), "stochastic", seed=3, offset=1)
    assert not np.array_equal(shifted.raw, first.raw)


def test_stats_record_output_cast_and_seed():
    a = FixedArray([[100, 100], [1, -1]], Fixed(8, 0))
    b = FixedArray([[1], [1]], Fixed(8, 0))
    stats = QuantStats()
    got = matmul(a, b, Fixed(16, 0), Fixed(8, 1), "stochastic", stats=stats)  # 200 -> saturates
    assert got.raw.tolist() == [[127], [0]]
    assert (stats.n, stats.saturated, stats.wrapped, stats.flushed_to_zero) == (2, 1, 0, 0)
    assert stats.max_abs_error == 200 - 63.5 and stats.seed is not None
    again = matmul(a, b, Fixed(16, 0), Fixed(8, 1), "stochastic", seed=stats.seed)
    assert np.array_equal(again.raw, got.raw)
    with pytest.raises(TypeError, match="stats must be a QuantStats"):
        matmul(a, b, Fixed(16, 0), Fixed(8, 1), stats={})


@pytest.mark.parametrize("acc_frac", [6, 2, -3])  # products have 8 fraction bits: shift 2, 6, 11
def test_stochastic_with_few_random_bits(acc_frac):
    rng = np.random.default_rng(5)
    a = FixedArray(rng.integers(-128, 128, (3, 7)), Fixed(8, 4))
    b = FixedArray(rng.integers(-128, 128, (7, 2)), Fixed(8, 4))
    acc, out = Fixed(24, acc_frac), Fixed(12, acc_frac - 2)
    for acc_overflow in ("wrap", "saturate"):
        got = matmul(a, b, acc, out, "stochastic", acc_overflow=acc_overflow, seed=2, sr_bits=4)
        assert got.raw.tolist() == reference(a, b, acc, out, "stochastic", "saturate", acc_overflow,
                                             2, k=4)
