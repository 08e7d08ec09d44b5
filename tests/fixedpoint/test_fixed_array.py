"""FixedArray: exact arithmetic and format growth against Python-int / Fraction references, and cast
(every rounding and overflow mode) against a Fraction oracle, numpy and Numba bit for bit."""
from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import fixedpoint as fxp
from fixedpoint import Fixed, FixedArray
from fixedpoint._counter_rng import random_ints
from fixedpoint._shift_round import rescale, rescale_numba
from fixedpoint.testing import DETERMINISTIC_MODES as DETERMINISTIC
from fixedpoint.testing import fixed_arrays, formats, round_fraction


# --------------------------------------------------------------------------- references
def value(raw: int, fmt: Fixed) -> Fraction:
    return Fraction(int(raw)) * Fraction(2) ** -fmt.frac


def values(a: FixedArray) -> list[Fraction]:
    return [value(r, a.fmt) for r in a.raw.reshape(-1).tolist()]


def round_exact(x: Fraction, rounding: str, r: int = 0, k: int = 53) -> int:
    """Round a rational to an integer; stochastic rounds up iff r < floor(frac(x) * 2**k)."""
    if rounding != "stochastic":
        return round_fraction(x, rounding)
    f = math.floor(x)
    return f + (r < math.floor((x - f) * 2**k))


def fit_exact(v: int, fmt: Fixed, overflow: str) -> int:
    if overflow == "saturate":
        return min(max(v, fmt.raw_min), fmt.raw_max)
    v %= 1 << fmt.word
    return v - (1 << fmt.word) if v > fmt.raw_max else v


def small_formats(max_word: int = 24):
    return formats(max_word=max_word, min_frac=-6, max_frac=24)


# --------------------------------------------------------------------------- structure
def test_construct_checks_range_and_dtype():
    fmt = Fixed(8, 4)
    with pytest.raises(ValueError, match=r"1 values outside s8.4.*index \(1,\)"):
        FixedArray([0, 128], fmt)
    with pytest.raises(TypeError, match="integer"):
        FixedArray([0.5], fmt)
    with pytest.raises(TypeError, match="Fixed"):
        FixedArray([1], "s8.4")
    assert FixedArray(np.array([255], dtype=np.uint8), Fixed(8, 0, False)).raw.dtype == np.int64


def test_views_share_memory():
    a = FixedArray(np.arange(12).reshape(3, 4), Fixed(8, 2))
    for view in (a[1], a[:, 1:3], a.T, a.reshape(4, 3), a[..., 2]):
        assert isinstance(view, FixedArray) and view.fmt == a.fmt
        assert np.shares_memory(view.raw, a.raw)
    assert a[1, 2].shape == () and int(a[1, 2].raw) == 6  # a scalar element: 0-d, like numpy
    assert a[1, 1:3].raw.tolist() == [5, 6] and a.T.shape == (4, 3) and a.reshape(-1).shape == (12,)
    assert len(a) == 3 and a.ndim == 2 and a.size == 12


def test_repr_values_or_raw():
    assert repr(FixedArray([1, -3], Fixed(8, 1))) == "FixedArray([ 0.5, -1.5], fmt=s8.1)"
    assert repr(FixedArray([2**60], Fixed(62, 0))) == f"FixedArray(raw=[{2**60}], fmt=s62.0)"


@given(fixed_arrays(max_word=53))
def test_float_round_trip(a):
    back = FixedArray.from_float(a.to_float(), a.fmt)
    assert back.fmt == a.fmt and np.array_equal(back.raw, a.raw)


# --------------------------------------------------------------------------- exact arithmetic
def expected_add_format(fa: Fixed, fb: Fixed, subtract: bool) -> Fixed:
    """The rule, restated: unsigned operands count one more integer bit when mixed with signed."""
    frac = max(fa.frac, fb.frac)
    mixed = fa.signed != fb.signed
    ints = [f.word - f.frac + (mixed and not f.signed) for f in (fa, fb)]
    return Fixed(max(ints) + frac + 1, frac, fa.signed or fb.signed or subtract)


pairs = st.tuples(small_formats(), small_formats()).flatmap(
    lambda f: st.tuples(fixed_arrays(fmt=f[0], shape=(3,)), fixed_arrays(fmt=f[1], shape=(3,))))


@given(pairs, st.sampled_from(["add", "subtract", "multiply"]))
def test_elementwise_ops_exact(ab, op):
    a, b = ab
    c = {"add": a + b, "subtract": a - b, "multiply": a * b}[op]
    if op == "multiply":
        want_fmt = Fixed(a.fmt.word + b.fmt.word, a.fmt.frac + b.fmt.frac, a.fmt.signed or b.fmt.signed)
    else:
        want_fmt = expected_add_format(a.fmt, b.fmt, op == "subtract")
    assert c.fmt == want_fmt
    FixedArray(c.raw, c.fmt)  # every raw value inside the result format
    fn = {"add": lambda x, y: x + y, "subtract": lambda x, y: x - y, "multiply": lambda x, y: x * y}[op]
    assert values(c) == [fn(x, y) for x, y in zip(values(a), values(b))]


@given(st.tuples(small_formats(), small_formats()), st.sampled_from(["add", "subtract", "multiply"]))
def test_result_format_holds_every_corner(fmts, op):
    """The extreme operands (raw_min, raw_max of both) give results inside the result format."""
    fa, fb = fmts
    a = FixedArray([fa.raw_min, fa.raw_min, fa.raw_max, fa.raw_max], fa)
    b = FixedArray([fb.raw_min, fb.raw_max, fb.raw_min, fb.raw_max], fb)
    c = {"add": a + b, "subtract": a - b, "multiply": a * b}[op]
    FixedArray(c.raw, c.fmt)
    n = -a
    assert n.fmt == Fixed(fa.word + 1, fa.frac, True) and values(n) == [-v for v in values(a)]
    FixedArray(n.raw, n.fmt)


@pytest.mark.parametrize("fa, fb, op, want", [
    ("s8.0", "u8.0", "+", "s10.0"), ("u8.0", "u8.0", "-", "s9.0"), ("u8.0", "u8.0", "+", "u9.0"),
    ("s8.4", "s8.0", "+", "s13.4"), ("s16.8", "s16.8", "*", "s32.16"), ("u4.4", "s4.2", "*", "s8.6"),
])
def test_format_rule_examples(fa, fb, op, want):
    a, b = FixedArray(0, Fixed.parse(fa)), FixedArray(0, Fixed.parse(fb))
    c = {"+": a + b, "-": a - b, "*": a * b}[op]
    assert str(c.fmt) == want


@given(st.data())
def test_broadcasting(data):
    a = data.draw(fixed_arrays(fmt=Fixed(10, 3), shape=(2, 1, 3)))
    b = data.draw(fixed_arrays(fmt=Fixed(6, 5, False), shape=(4, 1)))
    c = a - b
    assert c.shape == (2, 4, 3)
    for i, j, k in np.ndindex(c.shape):
        assert value(c.raw[i, j, k], c.fmt) == value(a.raw[i, 0, k], a.fmt) - value(b.raw[j, 0], b.fmt)


def test_scalars_convert_exactly_or_raise():
    a = FixedArray([4, -6], Fixed(8, 2))  # 1.0, -1.5
    assert values(a + 0.75) == [Fraction(7, 4), Fraction(-3, 4)] and (a + 0.75).fmt == Fixed(9, 2)
    assert values(3 * a) == [3, Fraction(-9, 2)] and values(1 - a) == [0, Fraction(5, 2)]
    assert values(a * Fraction(1, 8)) == [Fraction(1, 8), Fraction(-3, 16)]
    assert values(a + np.float32(0.5)) == [Fraction(3, 2), -1]
    for bad in (1e-30, 2.0**80, math.inf, math.nan, Fraction(1, 3)):
        with pytest.raises(ValueError):
            a + bad
    with pytest.raises(TypeError, match="from_float"):
        a + np.ones(2)
    with pytest.raises(TypeError, match="from_float"):
        np.ones(2) * a


def test_62_bit_results_are_exact():
    f31, f61 = Fixed(31, 0), Fixed(61, 0)
    a = FixedArray([f31.raw_min, f31.raw_max, f31.raw_min], f31)
    b = FixedArray([f31.raw_min, f31.raw_min, f31.raw_max], f31)
    assert (a * b).fmt == Fixed(62, 0) and (a * b).raw.tolist() == [2**60, -(2**30 - 1) * 2**30,
                                                                     -(2**30 - 1) * 2**30]
    c = FixedArray([f61.raw_min, f61.raw_max], f61)
    assert (c + c).fmt == Fixed(62, 0) and (c + c).raw.tolist() == [-(2**61), 2**61 - 2]
    assert (c - c[::-1]).raw.tolist() == [-(2**61) + 1, 2**61 - 1]
    u = FixedArray([2**60 - 1, 2**60 - 1], Fixed(60, 0, False))
    dot = u @ FixedArray([[1], [1]], Fixed(1, 0, False))
    assert dot.fmt == Fixed(62, 0, False) and dot.raw.tolist() == [2**61 - 2]


def test_width_limit_raises():
    a, b = FixedArray(0, Fixed(40, 0)), FixedArray(0, Fixed(30, 0))
    with pytest.raises(ValueError, match="multiply.*70-bit"):
        a * b
    with pytest.raises(ValueError, match="add.*63-bit"):
        FixedArray(0, Fixed(62, 0)) + FixedArray(0, Fixed(62, 0))
    with pytest.raises(ValueError, match="negate.*63-bit"):
        -FixedArray(0, Fixed(62, 0))
    with pytest.raises(ValueError, match="sum.*63-bit"):
        FixedArray([0, 0], Fixed(62, 0)).sum()
    with pytest.raises(ValueError, match="frac=80"):
        FixedArray(0, Fixed(8, 40)) * FixedArray(0, Fixed(8, 40))


@given(fixed_arrays(max_word=40, max_dims=3), st.data())
def test_sum_exact(a, data):
    axis = data.draw(st.none() | st.integers(0, a.ndim - 1)) if a.ndim else None
    s = a.sum(axis)
    n = a.size if axis is None else a.shape[axis]
    grow = math.ceil(math.log2(n)) if n > 1 else 0
    assert s.fmt == Fixed(a.fmt.word + grow, a.fmt.frac, a.fmt.signed)
    want = np.sum(a.raw.astype(object), axis=axis)  # Python ints: exact
    assert s.raw.tolist() == np.asarray(want).tolist()
    FixedArray(s.raw, s.fmt)


@given(st.tuples(small_formats(28), small_formats(28)), st.integers(0, 5), st.integers(0, 3),
       st.integers(0, 3), st.data())
def test_matmul_operator_exact(fmts, K, M, N, data):
    a = data.draw(fixed_arrays(fmt=fmts[0], shape=(M, K)))
    b = data.draw(fixed_arrays(fmt=fmts[1], shape=(K, N)))
    c = a @ b
    grow = math.ceil(math.log2(K)) if K > 1 else 0
    assert c.fmt == Fixed(fmts[0].word + fmts[1].word + grow, fmts[0].frac + fmts[1].frac,
                          fmts[0].signed or fmts[1].signed)
    for m in range(M):
        for n in range(N):
            assert int(c.raw[m, n]) == sum(int(a.raw[m, k]) * int(b.raw[k, n]) for k in range(K))
    FixedArray(c.raw, c.fmt)


# --------------------------------------------------------------------------- cast
cast_cases = st.tuples(fixed_arrays(max_word=62, shape=(6,)), formats(),
                       st.sampled_from(DETERMINISTIC), st.sampled_from(["saturate", "wrap"]))


@given(cast_cases)
def test_cast_matches_fraction_oracle(case):
    a, fmt, rounding, overflow = case
    got = a.cast(fmt, rounding, overflow, backend="numpy")
    want = [fit_exact(round_exact(v * Fraction(2) ** fmt.frac, rounding), fmt, overflow)
            for v in values(a)]
    assert got.fmt == fmt and got.raw.tolist() == want
    assert np.array_equal(a.cast(fmt, rounding, overflow, backend="numba").raw, got.raw)


@settings(max_examples=40)
@given(fixed_arrays(max_word=62, shape=(5,)), formats(), st.integers(0, 2**64 - 1),
       st.integers(0, 1000), st.none() | st.integers(1, 53))
def test_cast_stochastic(a, fmt, seed, offset, sr_bits):
    got = a.cast(fmt, "stochastic", "wrap", seed, offset=offset, sr_bits=sr_bits, backend="numpy")
    k = 53 if sr_bits is None else sr_bits
    r = random_ints(seed, offset, a.size, k).tolist()
    want = [fit_exact(round_exact(v * Fraction(2) ** fmt.frac, "stochastic", ri, k), fmt, "wrap")
            for v, ri in zip(values(a), r)]
    assert got.raw.tolist() == want
    numba = a.cast(fmt, "stochastic", "wrap", seed, offset=offset, sr_bits=sr_bits, backend="numba")
    assert np.array_equal(numba.raw, got.raw)


def test_cast_edge_values_all_modes():
    """Ties, +-max, min, zero, and shifts of 0, 63, 64 and 128 bits, numpy and Numba alike."""
    src = Fixed(62, 60)
    raw = np.array([0, 1, -1, 2, -2, 3, -3, 6, -6, src.raw_max, src.raw_min, 1 << 59, -(1 << 59),
                    (1 << 59) + 1, 5 << 57, -(5 << 57)], dtype=np.int64)
    a = FixedArray(raw, src)
    for target in (Fixed(62, 60), Fixed(4, 58), Fixed(3, 1), Fixed(2, 0, False), Fixed(8, -3),
                   Fixed(8, -4), Fixed(62, -64), Fixed(10, 64)):
        for rounding in DETERMINISTIC:
            for overflow in ("saturate", "wrap"):
                got = a.cast(target, rounding, overflow, backend="numpy").raw
                want = [fit_exact(round_exact(v * Fraction(2) ** target.frac, rounding), target,
                                  overflow) for v in values(a)]
                assert got.tolist() == want, (target, rounding, overflow)
                numba = a.cast(target, rounding, overflow, backend="numba").raw
                assert np.array_equal(numba, got)


def test_cast_stochastic_statistics_and_replay():
    a = FixedArray(np.full(40000, 3), Fixed(8, 3))  # 0.375 between 0 and 1 (step 1)
    y = a.cast(Fixed(8, 0), "stochastic", seed=11)
    assert set(np.unique(y.raw)) <= {0, 1}
    p, n = 0.375, a.size
    assert abs(y.raw.mean() - p) < 4 * math.sqrt(p * (1 - p) / n)
    assert np.array_equal(a.cast(Fixed(8, 0), "stochastic", seed=11).raw, y.raw)
    assert not np.array_equal(a.cast(Fixed(8, 0), "stochastic", seed=12).raw, y.raw)
    chunks = [a[:1000].cast(Fixed(8, 0), "stochastic", seed=11),
              a[1000:].cast(Fixed(8, 0), "stochastic", seed=11, offset=1000)]
    assert np.array_equal(np.concatenate([c.raw for c in chunks]), y.raw)
    biased = a.cast(Fixed(8, 0), "stochastic", seed=11, sr_bits=2)  # top 2 bits of .011: 1/4
    assert abs(biased.raw.mean() - 0.25) < 4 * math.sqrt(0.25 * 0.75 / n)


@settings(max_examples=30)
@given(fixed_arrays(max_word=53, shape=(7,)), formats(max_word=53), st.integers(0, 2**64 - 1))
def test_cast_equals_quantize_of_the_values(a, fmt, seed):
    """cast on raw integers and quantize on the (exact) float values are the same rounding."""
    for rounding in DETERMINISTIC + ("stochastic",):
        got = a.cast(fmt, rounding, "saturate", seed)
        want = fxp.to_raw(a.to_float(), fmt, rounding, "saturate", seed=seed, backend="numpy")
        assert got.raw.tolist() == np.asarray(want).tolist(), rounding


@given(fixed_arrays(max_word=40, shape=(8,)), formats(max_word=40, min_frac=-8, max_frac=40),
       st.sampled_from(DETERMINISTIC), st.sampled_from(["saturate", "wrap"]))
def test_cast_stats(a, fmt, rounding, overflow):
    stats = fxp.QuantStats()
    got = a.cast(fmt, rounding, overflow, stats=stats)
    rounded = [round_exact(v * Fraction(2) ** fmt.frac, rounding) for v in values(a)]
    outside = [not fmt.raw_min <= r <= fmt.raw_max for r in rounded]
    errors = [abs(value(o, fmt) - v) for o, v in zip(got.raw.tolist(), values(a))]
    assert (stats.n, stats.nan) == (8, 0)
    assert (stats.saturated, stats.wrapped) == ((sum(outside), 0) if overflow == "saturate"
                                                else (0, sum(outside)))
    assert stats.flushed_to_zero == sum(r != 0 and o == 0 and not out for r, o, out
                                        in zip(a.raw.tolist(), got.raw.tolist(), outside))
    assert stats.max_abs_error == pytest.approx(float(max(errors)), rel=1e-12)
    assert stats.sum_abs_error == pytest.approx(float(sum(errors)), rel=1e-12)
    assert stats.seed is None


def test_cast_stats_records_drawn_seed():
    a = FixedArray(np.arange(-50, 50), Fixed(8, 3))
    stats = fxp.QuantStats()
    y = a.cast(Fixed(8, 0), "stochastic", stats=stats)
    assert stats.seed is not None and stats.n == 100
    assert np.array_equal(a.cast(Fixed(8, 0), "stochastic", seed=stats.seed).raw, y.raw)


def test_cast_auto_backend_large_array():
    rng = np.random.default_rng(4)
    a = FixedArray(rng.integers(-2**20, 2**20, 70_000), Fixed(24, 12))
    for rounding in DETERMINISTIC + ("stochastic",):
        auto = a.cast(Fixed(8, 2), rounding, "wrap", seed=1)  # above the Numba threshold
        assert np.array_equal(auto.raw, a.cast(Fixed(8, 2), rounding, "wrap", seed=1,
                                               backend="numpy").raw)


def test_cast_chooses_backend_as_quantize(monkeypatch):
    """cast asks quantize's `_choose_backend` (Numba from `NUMBA_THRESHOLD` elements with
    "auto"); with stats it runs numpy; "cuda" is refused (the raw integers live on the host)."""
    from fixedpoint import _backend, _fixed_array

    asked, numba_sizes = [], []
    choose, rescale_fast = _fixed_array._choose_backend, _fixed_array.rescale_numba
    monkeypatch.setattr(_fixed_array, "_choose_backend",
                        lambda *args: asked.append((args[0], args[2])) or choose(*args))
    monkeypatch.setattr(_fixed_array, "rescale_numba",
                        lambda raw, *args, **kw: numba_sizes.append(raw.size) or
                        rescale_fast(raw, *args, **kw))
    n = _backend.NUMBA_THRESHOLD
    a = FixedArray(np.arange(n) % 200 - 100, Fixed(9, 3))
    target = Fixed(8, 0)
    for part, backend in ((a, "auto"), (a[:-1], "auto"), (a[:5], "numba"), (a, "numpy")):
        assert np.array_equal(part.cast(target, backend=backend).raw,
                              rescale(part.raw, 3, target, "nearest_even", "saturate"))
    assert numba_sizes == [n, 5]
    assert asked == [("auto", n), ("auto", n), ("numba", n), ("numpy", n)]
    a.cast(target, stats=fxp.QuantStats())
    assert numba_sizes == [n, 5]
    with pytest.raises(ValueError, match="backend must be one of 'auto', 'numpy', 'numba'"):
        a.cast(target, backend="cuda")


def test_cast_bad_arguments():
    a = FixedArray([1], Fixed(8, 4))
    with pytest.raises(ValueError, match="rounding"):
        a.cast(Fixed(8, 0), "up")
    with pytest.raises(ValueError, match="overflow"):
        a.cast(Fixed(8, 0), overflow="clip")
    with pytest.raises(ValueError, match="sr_bits"):
        a.cast(Fixed(8, 0), "stochastic", seed=1, sr_bits=60)
    with pytest.raises(ValueError, match="backend"):
        a.cast(Fixed(8, 0), backend="gpu")
    with pytest.raises(TypeError, match="Fixed"):
        a.cast("s8.0")


@given(fixed_arrays(shape=(9,)), formats(), st.sampled_from(DETERMINISTIC + ("stochastic",)),
       st.sampled_from(["saturate", "wrap"]))
def test_rescale_numba_equals_numpy(a, fmt, rounding, overflow):
    shift = a.fmt.frac - fmt.frac
    want = rescale(a.raw, shift, fmt, rounding, overflow, seed=5, offset=2)
    assert np.array_equal(rescale_numba(a.raw, shift, fmt, rounding, overflow, seed=5, offset=2), want)
