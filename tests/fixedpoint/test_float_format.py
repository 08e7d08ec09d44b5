"""FloatFormat and quantization through it: exact casts, an independent grid oracle, backends."""
from __future__ import annotations

import dataclasses
import functools
import os
import subprocess
import sys
import textwrap
from fractions import Fraction

import ml_dtypes
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import fixedpoint as fxp
from fixedpoint._counter_rng import random_ints
from fixedpoint._float_quantize import quantize_float

# Building test data casts out-of-range values to narrow dtypes on purpose.
pytestmark = pytest.mark.filterwarnings("ignore:(overflow|invalid value) encountered:RuntimeWarning")

MODES = fxp.ROUNDING_MODES
DETERMINISTIC = tuple(m for m in MODES if m != "stochastic")

# (format, ml_dtypes/numpy dtype, the overflow policy that matches the library's cast)
LIBRARY_CASTS = [
    (fxp.FP16, np.float16, "inf"),
    (fxp.BF16, ml_dtypes.bfloat16, "inf"),
    (fxp.FP8_E4M3, ml_dtypes.float8_e4m3fn, "nan"),
    (fxp.FP8_E5M2, ml_dtypes.float8_e5m2, "inf"),
    (fxp.FloatFormat(4, 3, bias=8, specials="fnuz"), ml_dtypes.float8_e4m3fnuz, "nan"),
    (fxp.FloatFormat(5, 2, bias=16, specials="fnuz"), ml_dtypes.float8_e5m2fnuz, "nan"),
    (fxp.FloatFormat(4, 3, bias=11, specials="fnuz"), ml_dtypes.float8_e4m3b11fnuz, "nan"),
    (fxp.FloatFormat(4, 3), ml_dtypes.float8_e4m3, "inf"),
    (fxp.FloatFormat(3, 4), ml_dtypes.float8_e3m4, "inf"),
    (fxp.FP6_E3M2, ml_dtypes.float6_e3m2fn, "saturate"),
    (fxp.FP6_E2M3, ml_dtypes.float6_e2m3fn, "saturate"),
    (fxp.FP4_E2M1, ml_dtypes.float4_e2m1fn, "saturate"),
]
CAST_IDS = [str(f) for f, _, _ in LIBRARY_CASTS]


def same_bits(a, b) -> bool:
    """Equal values and zero signs; any NaN equals any NaN."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    nan = np.isnan(a) & np.isnan(b)
    return bool(np.all(nan | ((a == b) & (np.signbit(a) == np.signbit(b)))))


# --------------------------------------------------------------------------- the format itself
def test_properties_match_library_finfo():
    for fmt, dtype, _ in LIBRARY_CASTS:
        info = ml_dtypes.finfo(dtype)
        assert fmt.max == float(info.max), fmt
        assert fmt.tiny == float(info.smallest_normal), fmt
        assert fmt.smallest == float(info.smallest_subnormal), fmt
        assert fmt.eps == float(info.eps), fmt
        assert fmt.bits == info.bits, fmt


@given(st.integers(2, 11), st.integers(0, 52), st.integers(-20, 20), st.booleans(),
       st.sampled_from(("ieee", "fn", "fnuz", "finite")))
def test_parse_str_round_trip(exp, man, dbias, subnormals, specials):
    bias = 2 ** (exp - 1) - 1 + dbias
    try:
        fmt = fxp.FloatFormat(exp, man, bias, subnormals, specials)
    except ValueError as err:
        assert "bias" in str(err)
        return
    assert fxp.FloatFormat.parse(str(fmt)) == fmt


def test_parse_aliases():
    assert fxp.FloatFormat.parse("fp16") == fxp.FP16 == fxp.FloatFormat.parse("e5m10")
    assert fxp.FloatFormat.parse("BF16") == fxp.BF16
    assert fxp.FloatFormat.parse("e4m3fn") == fxp.FP8_E4M3 and str(fxp.FP8_E4M3) == "e4m3fn"
    assert fxp.FloatFormat.parse("fp4") == fxp.FP4_E2M1 and str(fxp.FP4_E2M1) == "e2m1fin"
    assert str(fxp.FloatFormat(4, 3, bias=8, specials="fnuz", subnormals=False)) == "e4m3fnuz_ftz"
    assert str(fxp.FloatFormat(4, 3, bias=7, specials="fnuz")) == "e4m3b7fnuz"


@pytest.mark.parametrize("kwargs, match", [
    (dict(exp=1, man=3), "exp must be in 2..11"),
    (dict(exp=12, man=3), "exp must be in 2..11"),
    (dict(exp=5, man=53), "man must be in 0..52"),
    (dict(exp=5, man=-1), "man must be in 0..52"),
    (dict(exp=11, man=52, bias=1000), "bias must be in 1023..1023"),
    (dict(exp=11, man=3, specials="fn"), "bias must be in 1024..1072"),
    (dict(exp=4, man=3, specials="weird"), "specials must be one of"),
])
def test_bad_format_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        fxp.FloatFormat(**kwargs)


def test_bad_format_types_and_names():
    with pytest.raises(TypeError, match="exp"):
        fxp.FloatFormat(4.0, 3)
    with pytest.raises(TypeError, match="subnormals"):
        fxp.FloatFormat(4, 3, subnormals=None)
    with pytest.raises(ValueError, match="text"):
        fxp.FloatFormat.parse("e4m3x")


# --------------------------------------------------------------------------- an independent oracle
@functools.lru_cache(maxsize=None)
def decoded(fmt: fxp.FloatFormat):
    """(sorted finite magnitudes as Fractions incl. 0, the grid point after max), from the bit layout."""
    values = set()
    for e_code in range(2**fmt.exp):
        for m_code in range(2**fmt.man):
            top = e_code == 2**fmt.exp - 1
            if fmt.specials == "ieee" and top:
                continue  # inf / NaN
            if fmt.specials == "fn" and top and m_code == 2**fmt.man - 1:
                continue  # the NaN pattern
            if e_code == 0:
                if m_code and not fmt.subnormals:
                    continue
                v = Fraction(m_code, 2**fmt.man) * Fraction(2) ** (1 - fmt.bias)
            else:
                v = (1 + Fraction(m_code, 2**fmt.man)) * Fraction(2) ** (e_code - fmt.bias)
            values.add(v)
    grid = sorted(values)
    top_step = Fraction(2) ** (fmt.emax - fmt.man)
    return grid, grid[-1] + top_step


def grid_oracle(x: float, fmt, rounding: str, overflow: str, r: int = 0, k: int = 53) -> float:
    """Round ``x`` by searching the decoded values (exact rationals); ``r`` is the k-bit draw."""
    grid, nxt = decoded(dataclasses.replace(fmt, subnormals=True))  # ftz flushes after rounding
    fmax = grid[-1]
    neg = np.signbit(x)
    sign = -1.0 if neg else 1.0

    def overflowed():
        if overflow == "saturate":
            return sign * float(fmax)
        if overflow == "nan":
            return np.nan
        toward_zero = rounding == "toward_zero" or (rounding == "floor" and not neg) or (
            rounding == "ceil" and neg)
        return sign * (float(fmax) if toward_zero and np.isfinite(x) else np.inf)

    if np.isinf(x):
        return overflowed()
    a = abs(Fraction(x))
    if a >= nxt:
        return overflowed()
    if a > fmax:
        lo, hi = fmax, nxt
    else:
        i = int(np.searchsorted(np.array(grid, dtype=object), a, side="right")) - 1
        lo = grid[i]
        hi = lo if lo == a else grid[i + 1]
    if lo == a:
        mag = a
    else:
        f = (a - lo) / (hi - lo)
        step = Fraction(2) ** (max(_floor_log2(lo) if lo else fmt.emin, fmt.emin) - fmt.man)
        lo_even = (lo / step) % 2 == 0
        up = {
            "nearest_even": f > Fraction(1, 2) or (f == Fraction(1, 2) and not lo_even),
            "nearest_away": f >= Fraction(1, 2),
            "toward_zero": False,
            "floor": bool(neg),
            "ceil": not neg,
            "stochastic": r < int(f * 2**k),
        }[rounding]
        mag = hi if up else lo
    if mag > fmax:
        return overflowed()
    if not fmt.subnormals and mag < fmt.tiny:
        mag = Fraction(0)
    if mag == 0 and not fmt.has_neg_zero:
        return 0.0
    return sign * float(mag)


def _floor_log2(v: Fraction) -> int:
    e = v.numerator.bit_length() - v.denominator.bit_length()
    return e - 1 if Fraction(2) ** e > v else e


@st.composite
def small_formats(draw):
    exp, man = draw(st.integers(2, 5)), draw(st.integers(0, 4))
    specials = draw(st.sampled_from(("ieee", "fn", "fnuz", "finite")))
    bias = 2 ** (exp - 1) - 1 + draw(st.integers(-3, 3))
    return fxp.FloatFormat(exp, man, bias, draw(st.booleans()), specials)


@st.composite
def values_near(draw, fmt, n=40):
    """Grid points, midpoints (ties), neighbours of those, and scaled random values."""
    grid, nxt = decoded(fmt)
    pts = grid + [nxt, nxt + (nxt - grid[-1]) / 2]
    out = []
    for _ in range(n):
        kind = draw(st.integers(0, 3))
        i = draw(st.integers(0, len(pts) - 2))
        if kind == 0:
            v = float(pts[i])
        elif kind == 1:
            v = float((pts[i] + pts[i + 1]) / 2)
        elif kind == 2:
            v = float(np.nextafter(float((pts[i] + pts[i + 1]) / 2), draw(st.sampled_from((-1, 1))) * np.inf))
        else:
            v = draw(st.floats(0, float(nxt) * 4, allow_subnormal=True))
        out.append(-v if draw(st.booleans()) else v)
    out += [0.0, -0.0, np.inf, -np.inf, 5e-324, -1e300]
    return np.array(out)


@settings(max_examples=40)
@given(st.data(), small_formats(), st.sampled_from(MODES), st.sampled_from(("saturate", "inf", "nan")),
       st.integers(1, 53), st.integers(0, 2**64 - 1))
def test_matches_grid_oracle(data, fmt, rounding, overflow, k, seed):
    if (overflow == "inf" and not fmt.has_inf) or (overflow == "nan" and not fmt.has_nan):
        overflow = "saturate"
    x = data.draw(values_near(fmt))
    sr = dict(seed=seed, sr_bits=k) if rounding == "stochastic" else {}
    r = random_ints(seed, 0, x.size, k)
    got = fxp.quantize(x, fmt, rounding, overflow, backend="numpy", **sr)
    want = [grid_oracle(v, fmt, rounding, overflow, int(ri), k) for v, ri in zip(x, r)]
    assert same_bits(got, want), (fmt, rounding, overflow, x, got, want)


# --------------------------------------------------------------------------- library casts
def _all_float16():
    return np.arange(2**16, dtype=np.uint32).astype(np.uint16).view(np.float16)


def _ties_and_neighbours(dtype):
    """Every value of ``dtype`` (<= 16 bits), midpoints of adjacent values, and their float32
    neighbours."""
    bits = 8 * np.dtype(dtype).itemsize
    vals = np.arange(2**bits, dtype=np.uint32).astype(f"u{bits // 8}").view(dtype).astype(np.float64)
    vals = np.unique(vals[np.isfinite(vals)])
    mids = ((vals[:-1] + vals[1:]) / 2).astype(np.float32)
    big = np.float32(vals[-1] * 2)
    pts = np.concatenate([vals.astype(np.float32), mids, [big, np.float32(np.inf)]])
    return np.concatenate([pts, np.nextafter(pts, np.float32(np.inf)), np.nextafter(pts, -np.inf)])


@pytest.mark.parametrize("fmt, dtype, overflow", LIBRARY_CASTS, ids=CAST_IDS)
def test_nearest_even_equals_library_cast_exhaustively(fmt, dtype, overflow):
    """Every float16 bit pattern, every tie between adjacent values (and its neighbours), and a
    float32/float64 random sample, rounded by us and by numpy/ml_dtypes. numpy rounds float64
    to float16 directly; ml_dtypes rounds float64 to float32 first, so for its types the float64
    sample goes through our e8m23 first (the same double rounding)."""
    rng = np.random.default_rng(1)
    sample = rng.integers(0, 2**32, 50_000, dtype=np.uint64).astype(np.uint32).view(np.float32)
    parts = [_all_float16().astype(np.float32), sample]
    if np.dtype(dtype).itemsize <= 2 or dtype is np.float16:
        parts.append(_ties_and_neighbours(dtype))
    x32 = np.concatenate(parts)
    x32 = x32[~np.isnan(x32)]
    got = fxp.quantize(x32, fmt, "nearest_even", overflow, backend="numba")
    assert got.dtype == np.float32
    assert same_bits(got, x32.astype(dtype).astype(np.float32))
    x64 = np.concatenate([x32, x32.astype(np.float64) * (1 + 2.0**-40),
                          rng.integers(0, 2**64, 50_000, dtype=np.uint64).view(np.float64)])
    x64 = x64[~np.isnan(x64)]
    if dtype is not np.float16:  # ml_dtypes casts float64 through float32: a double rounding
        x64 = fxp.quantize(x64, fxp.FloatFormat(8, 23), overflow="inf").astype(np.float32)
    got = fxp.quantize(x64, fmt, "nearest_even", overflow, backend="numba")
    assert same_bits(got, x64.astype(dtype).astype(np.float64))


def test_float16_directed_modes_equal_float16_neighbours():
    """Directed and away modes of e5m10 against float16 neighbours found with np.nextafter."""
    rng = np.random.default_rng(2)
    x = rng.integers(0, 2**32, 100_000, dtype=np.uint64).astype(np.uint32).view(np.float32)
    x = np.concatenate([x, _ties_and_neighbours(np.float16)])
    x = x[np.isfinite(x) & (np.abs(x) <= 65504)]
    x64 = x.astype(np.float64)
    near = x.astype(np.float16)
    lo = np.where(near.astype(np.float64) > x64, np.nextafter(near, np.float16(-np.inf)), near)
    hi = np.where(lo.astype(np.float64) < x64, np.nextafter(lo, np.float16(np.inf)), lo)
    lo, hi = lo.astype(np.float64), hi.astype(np.float64)
    lo = np.where((lo == 0) & np.signbit(x), -0.0, lo)
    hi = np.where(hi == 0, np.copysign(0.0, x64), hi)
    down_mag = np.where(x64 < 0, hi, lo)
    up_mag = np.where(x64 < 0, lo, hi)
    tie = (x64 - lo) == (hi - x64)
    away = np.where(tie, up_mag, near.astype(np.float64))
    expect = {"floor": lo, "ceil": hi, "toward_zero": down_mag, "nearest_away": away}
    for mode, want in expect.items():
        assert same_bits(fxp.quantize(x, fxp.FP16, mode, "saturate", backend="numpy"), want), mode


# --------------------------------------------------------------------------- properties
@st.composite
def format_and_values(draw):
    specials = draw(st.sampled_from(("ieee", "fn", "fnuz", "finite")))
    exp = draw(st.integers(2, 11 if specials == "ieee" else 10))  # e11 fn: 2^1024 is no float64
    fmt = fxp.FloatFormat(exp, draw(st.integers(0, 52)), subnormals=draw(st.booleans()),
                          specials=specials)
    scale = draw(st.integers(fmt.emin - fmt.man - 2, min(fmt.emax + 2, 1020)))
    x = draw(st.lists(st.floats(-4, 4, allow_subnormal=True), min_size=1, max_size=30))
    return fmt, np.ldexp(np.array(x), scale)


@given(format_and_values(), st.sampled_from(DETERMINISTIC))
def test_monotone_bounded_idempotent(fv, rounding):
    fmt, x = fv
    x = np.sort(x)
    y = fxp.quantize(x, fmt, rounding, "saturate")
    assert np.all(np.diff(y) >= 0)
    assert np.all(np.abs(y) <= fmt.max)
    assert same_bits(fxp.quantize(y, fmt, rounding, "saturate"), y)
    inside = (np.abs(x) <= fmt.max) & (np.abs(x) >= fmt.tiny)  # no overflow, no flush
    ulp = np.ldexp(1.0, np.maximum(np.frexp(np.abs(x))[1] - 1, fmt.emin) - fmt.man)
    err = (y - x)[inside]
    if rounding.startswith("nearest"):
        assert np.all(np.abs(err) <= ulp[inside] / 2)
    else:
        assert np.all(np.abs(err) < ulp[inside])
    if rounding == "floor":
        assert np.all(err <= 0)
    if rounding == "ceil":
        assert np.all(err >= 0)
    if rounding == "toward_zero":
        assert np.all(np.abs(y) <= np.abs(x))


@settings(max_examples=30)
@given(format_and_values(), st.integers(0, 2**64 - 1))
def test_stochastic_gives_a_neighbour(fv, seed):
    fmt, x = fv
    y = fxp.quantize(x, fmt, "stochastic", "saturate", seed=seed)
    lo = fxp.quantize(x, fmt, "floor", "saturate")
    hi = fxp.quantize(x, fmt, "ceil", "saturate")
    assert np.all((y == lo) | (y == hi))


@pytest.mark.parametrize("value", [1.0 + 2.0**-12, -3.3, 0.1, 1e-6, 447.0])
def test_stochastic_is_unbiased(value):
    n = 40_000
    fmt = fxp.FP8_E4M3
    y = fxp.quantize(np.full(n, value), fmt, "stochastic", seed=11)
    lo = float(fxp.quantize(np.array([value]), fmt, "floor")[0])
    hi = float(fxp.quantize(np.array([value]), fmt, "ceil")[0])
    p = (value - lo) / (hi - lo)
    sigma = (hi - lo) * np.sqrt(p * (1 - p) / n)
    assert abs(y.mean() - value) <= 4 * sigma + 1e-300


def test_stochastic_seed_offset_and_chunks():
    x = np.linspace(-3, 3, 1001)
    fmt = fxp.FloatFormat(3, 2)
    a = fxp.quantize(x, fmt, "stochastic", seed=5)
    assert same_bits(a, fxp.quantize(x, fmt, "stochastic", seed=5, backend="numba"))
    assert not same_bits(a, fxp.quantize(x, fmt, "stochastic", seed=6))
    assert not same_bits(a, fxp.quantize(x, fmt, "stochastic", seed=5, offset=1))
    chunks = [fxp.quantize(x[s:s + 300], fmt, "stochastic", seed=5, offset=s) for s in range(0, 1001, 300)]
    assert same_bits(np.concatenate(chunks), a)
    stats = fxp.QuantStats()
    fxp.quantize(x, fmt, "stochastic", stats=stats)
    assert same_bits(fxp.quantize(x, fmt, "stochastic", seed=stats.seed), fxp.quantize(
        x, fmt, "stochastic", seed=stats.seed, backend="numba"))


def test_sr_bits_truncates_the_fraction():
    # f = 0.25 of a step: with 1 random bit floor(0.25 * 2) = 0, so it never rounds up;
    # with 2 bits it rounds up iff r < 1 (probability 1/4).
    fmt = fxp.FloatFormat(5, 3)  # step 1/8 in [1, 2)
    x = np.full(4000, 1.0 + 2.0**-5)  # f = (1/32) / (1/8) = 1/4
    assert np.all(fxp.quantize(x, fmt, "stochastic", seed=1, sr_bits=1) == 1.0)
    up = fxp.quantize(x, fmt, "stochastic", seed=1, sr_bits=2) > 1.0
    assert np.array_equal(up, random_ints(1, 0, x.size, 2) < 1)


# --------------------------------------------------------------------------- special values
def test_overflow_policies():
    fmt = fxp.FP8_E5M2  # max 57344, next grid point 65536
    x = np.array([60000.0, 61440.0, 1e6, np.inf, -60000.0, -1e6, -np.inf])
    assert same_bits(fxp.quantize(x, fmt, "nearest_even", "inf"),
                     [57344, np.inf, np.inf, np.inf, -57344, -np.inf, -np.inf])
    assert same_bits(fxp.quantize(x, fmt, "toward_zero", "inf"),
                     [57344, 57344, 57344, np.inf, -57344, -57344, -np.inf])
    assert same_bits(fxp.quantize(x, fmt, "floor", "inf"),
                     [57344, 57344, 57344, np.inf, -np.inf, -np.inf, -np.inf])
    assert same_bits(fxp.quantize(x, fmt, "ceil", "inf"),
                     [np.inf, np.inf, np.inf, np.inf, -57344, -57344, -np.inf])
    assert same_bits(fxp.quantize(x, fmt, "ceil", "saturate"), [57344, 57344, 57344, 57344] + [-57344] * 3)
    assert same_bits(fxp.quantize(x, fmt, "nearest_even", "nan"),
                     [57344, np.nan, np.nan, np.nan, -57344, np.nan, np.nan])
    with pytest.raises(ValueError, match="overflow='inf'.*no infinity"):
        fxp.quantize(x, fxp.FP8_E4M3, overflow="inf")
    with pytest.raises(ValueError, match="overflow='nan'.*no NaN"):
        fxp.quantize(x, fxp.FP4_E2M1, overflow="nan")
    with pytest.raises(ValueError, match="overflow must be one of"):
        fxp.quantize(x, fmt, overflow="wrap")


def test_signed_zero_and_flush_to_zero():
    fmt = fxp.FloatFormat(4, 3, subnormals=False)  # tiny = 2^-6, subnormal step 2^-9
    x = np.array([-0.0, 0.0, -1e-30, 1e-30, 2.0**-7, -(2.0**-6) * 0.97, 2.0**-6])
    stats = fxp.QuantStats()
    y = fxp.quantize(x, fmt, stats=stats)
    assert same_bits(y, [-0.0, 0.0, -0.0, 0.0, 0.0, -(2.0**-6), 2.0**-6])
    assert stats.flushed_to_zero == 3
    assert same_bits(fxp.quantize(x[:1], fxp.FloatFormat(4, 3, specials="fnuz")), [0.0])
    ceil = fxp.quantize(np.array([1e-30]), fmt, "ceil")  # output flush beats the direction
    assert same_bits(ceil, [0.0])
    assert same_bits(fxp.quantize(np.array([1e-30]), fxp.FloatFormat(4, 3), "ceil"), [2.0**-9])


def test_nan_rules():
    x = np.array([[1.0, np.nan], [np.nan, 2.0]])
    with pytest.raises(ValueError, match=r"2 NaN.*\(0, 1\)"):
        fxp.quantize(x, fxp.FP16)
    assert same_bits(fxp.quantize(x, fxp.FP16, nan="zero"), [[1, 0], [0, 2]])
    assert same_bits(fxp.quantize(x, fxp.FP16, nan="propagate", backend="numba"), x)
    with pytest.raises(ValueError, match="has no NaN"):
        fxp.quantize(x, fxp.FP4_E2M1, nan="propagate")
    with pytest.raises(ValueError, match="nan must be one of"):
        fxp.quantize(x, fxp.FP16, nan="keep")


def test_dtypes_and_conversion():
    x16 = np.array([1.0, 3.3, -70000], dtype=np.float16)
    assert fxp.quantize(x16, fxp.FP8_E4M3, backend="numba").dtype == np.float16
    assert same_bits(fxp.quantize(x16, fxp.FP16, overflow="inf"), x16)
    assert fxp.quantize(np.arange(5), fxp.BF16).dtype == np.float64
    assert fxp.quantize(2.5, fxp.FP4_E2M1) == 2.0 and np.ndim(fxp.quantize(2.5, fxp.FP4_E2M1)) == 0
    with pytest.raises(ValueError, match="float32 result cannot hold.*float64"):
        fxp.quantize(np.ones(3, np.float32), fxp.FloatFormat(8, 24))
    with pytest.raises(ValueError, match="float16 result cannot hold"):
        fxp.quantize(np.ones(3, np.float16), fxp.BF16)
    with pytest.raises(TypeError, match="fmt must be"):
        quantize_float(np.ones(3), fxp.Fixed(8, 4))
    with pytest.raises(ValueError, match="sr_bits"):
        fxp.quantize(np.ones(3), fxp.FP16, "stochastic", sr_bits=54)


# --------------------------------------------------------------------------- backends
EDGES = [0.0, -0.0, np.inf, -np.inf, 5e-324, -5e-324, 2.2250738585072014e-308, 1.7976931348623157e308,
         65504.0, 65520.0, -65519.99, 448.0, 464.0, -480.0, 2.0**-24, 2.0**-25, 3 * 2.0**-26, 1.5, 2.5]


@settings(max_examples=40)
@given(st.lists(st.floats(allow_nan=True, allow_subnormal=True), min_size=1, max_size=60),
       st.sampled_from([f for f, _, _ in LIBRARY_CASTS] + [fxp.FloatFormat(11, 52), fxp.FloatFormat(
           3, 1, subnormals=False), fxp.FloatFormat(3, 2, bias=1070), fxp.FloatFormat(6, 0, bias=-900)]),
       st.sampled_from(MODES), st.sampled_from(("saturate", "inf", "nan")), st.integers(1, 53),
       st.integers(0, 2**64 - 1), st.integers(0, 2**40), st.sampled_from((np.float32, np.float64)))
def test_numba_equals_numpy(values, fmt, rounding, overflow, k, seed, offset, dtype):
    if (overflow == "inf" and not fmt.has_inf) or (overflow == "nan" and not fmt.has_nan):
        overflow = "saturate"
    if not fmt.fits(np.dtype(dtype)):
        dtype = np.float64
    x = np.array(values + EDGES, dtype=dtype)
    nan = "propagate" if fmt.has_nan else "zero"
    kw = dict(seed=seed, offset=offset, sr_bits=k) if rounding == "stochastic" else {}
    s1, s2 = fxp.QuantStats(), fxp.QuantStats()
    a = fxp.quantize(x, fmt, rounding, overflow, backend="numpy", nan=nan, stats=s1, **kw)
    b = fxp.quantize(x, fmt, rounding, overflow, backend="numba", nan=nan, stats=s2, **kw)
    assert a.dtype == b.dtype == dtype
    assert same_bits(a, b)
    assert s1 == s2


CUDASIM_SCRIPT = textwrap.dedent("""
    import numpy as np
    from numba import cuda
    import fixedpoint as fxp
    from fixedpoint import _float_kernels
    from fixedpoint._float_quantize import kernel_args
    rng = np.random.default_rng(3)
    inf = np.inf
    x = np.concatenate([np.array({edges}), rng.standard_normal(24) * 300, [np.nan]])
    for fmt, overflow in [(fxp.FP8_E4M3, "nan"), (fxp.FloatFormat(5, 2, subnormals=False), "inf"),
                          (fxp.FloatFormat(4, 3, bias=8, specials="fnuz"), "saturate")]:
        for rounding in fxp.ROUNDING_MODES:
            kw = dict(seed=9, offset=7, sr_bits=30) if rounding == "stochastic" else {{}}
            stats = fxp.QuantStats()
            want = fxp.quantize(x, fmt, rounding, overflow, nan="propagate", backend="numpy",
                                stats=stats, **kw)
            out, flags = cuda.device_array(x.size), cuda.device_array(x.size, dtype=np.int8)
            args = kernel_args(fmt, rounding, overflow, "propagate", 9 if kw else None, 7, 30)
            _float_kernels.launch_cuda(cuda.to_device(x), out, flags, True, *args)
            got, fl = out.copy_to_host(), flags.copy_to_host()
            same = (got == want) & (np.signbit(got) == np.signbit(want)) | np.isnan(got) & np.isnan(want)
            assert same.all(), (fmt, rounding, x[~same], got[~same], want[~same])
            assert (fl == 1).sum() == stats.saturated and (fl == 2).sum() == stats.flushed_to_zero
""")


# Runs after CUDASIM_SCRIPT in the same process: binarize (kind 0), ternarize (1), pow2 (2).
QUANTIZER_CUDASIM_SCRIPT = textwrap.dedent("""
    from fixedpoint import _extreme as q
    x = np.concatenate([np.array({edges}), [2.0**0.5, 1e300, 2.0**-8.5],
                        np.random.default_rng(5).standard_normal(20) * 4])
    for kind, p1, p2 in [(0, 0.0, 0.0), (1, 0.6, 0.0), (2, -3.0, 3.0), (2, -1074.0, 1023.0)]:
        for stochastic in (False, True):
            want = (fxp.binarize(x, stochastic, 5, offset=2, backend="numpy") if kind == 0 else
                    fxp.ternarize(x, None if stochastic else p1, stochastic, 5, offset=2,
                                  backend="numpy") if kind == 1 else
                    fxp.pow2(x, int(p1), int(p2), "stochastic" if stochastic else "nearest", 5,
                             offset=2, backend="numpy"))
            out = cuda.device_array(x.size)
            key = np.uint64(q.seed_key(5))
            q.quantizer_cuda_kernel()[1, 64](kind, cuda.to_device(x), out, p1, p2, stochastic, key,
                                             np.uint64(2))
            got = out.copy_to_host()
            assert np.array_equal(got.view(np.uint64), want.view(np.uint64)), (kind, stochastic, got, want)
    print("cudasim ok")
""")


def test_cuda_simulator_equals_numpy():
    """The float-format and quantizer CUDA kernels, run by the CUDA simulator, equal numpy."""
    env = dict(os.environ, NUMBA_ENABLE_CUDASIM="1")
    edges = [float(v) for v in EDGES]
    script = CUDASIM_SCRIPT.format(edges=edges) + QUANTIZER_CUDASIM_SCRIPT.format(edges=edges)
    done = subprocess.run([sys.executable, "-W", "ignore", "-c", script], env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "cudasim ok" in done.stdout


@pytest.mark.gpu
@pytest.mark.parametrize("rounding", MODES)
def test_cuda_equals_numpy(rounding):
    cupy = pytest.importorskip("cupy")
    if not cupy.cuda.is_available():
        pytest.skip("no CUDA device")
    rng = np.random.default_rng(4)
    x = np.concatenate([np.array(EDGES), rng.standard_normal(100_000) * 500]).astype(np.float32)
    for fmt, _, overflow in LIBRARY_CASTS:
        kw = dict(seed=3, offset=5) if rounding == "stochastic" else {}
        s1, s2 = fxp.QuantStats(), fxp.QuantStats()
        want = fxp.quantize(x, fmt, rounding, overflow, backend="numpy", stats=s1, **kw)
        got = fxp.quantize(cupy.asarray(x), fmt, rounding, overflow, stats=s2, **kw)
        assert isinstance(got, cupy.ndarray)
        assert same_bits(cupy.asnumpy(got), want) and s1 == s2
