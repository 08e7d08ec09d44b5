"""binarize, ternarize, pow2: value sets, exact rules, unbiasedness, reproducibility, backends.

(The CUDA-simulator check of the quantizer kernel runs with the float-format one, in one
subprocess, in test_float_format.py.)"""
from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

import fixedpoint as fxp
from fixedpoint._counter_rng import uniforms

# Building test data casts out-of-range values to narrow dtypes on purpose.
pytestmark = pytest.mark.filterwarnings("ignore:(overflow|invalid value) encountered:RuntimeWarning")

EDGES = [0.0, -0.0, np.inf, -np.inf, 5e-324, -5e-324, 1.0, -1.0, 0.5, 2.0**0.5, 1.4142135623730950,
         -3.0, 1e300, -1e-300, 0.7, 2.0**-8, 2.0**-8.5, 2.0**4.5]


def finite_arrays(dtype=np.float64, **kw):
    elements = st.floats(allow_nan=False, allow_infinity=False, allow_subnormal=True,
                         width=np.dtype(dtype).itemsize * 8, **kw)
    return arrays(dtype, st.integers(1, 40), elements=elements)


def same_bits(a, b) -> bool:
    a, b = np.asarray(a), np.asarray(b)
    return a.dtype == b.dtype and np.array_equal(a.view(np.uint8), b.view(np.uint8))


# --------------------------------------------------------------------------- deterministic rules
@given(finite_arrays())
def test_binarize_sign(x):
    y = fxp.binarize(x)
    assert same_bits(y, np.where(x >= 0, 1.0, -1.0))  # sign(+-0) = +1
    assert set(np.unique(y)) <= {-1.0, 1.0}


@given(finite_arrays(min_value=-1e6, max_value=1e6), st.floats(0, 10))
def test_ternarize_threshold_rule(x, threshold):
    y = fxp.ternarize(x, threshold)
    want = np.where(x > threshold, 1.0, np.where(x < -threshold, -1.0, 0.0))
    assert same_bits(y, want)
    default = fxp.ternarize(x)
    assert same_bits(default, fxp.ternarize(x, 0.7 * float(np.mean(np.abs(x)))))


def pow2_nearest_oracle(v: float, min_exp: int, max_exp: int) -> float:
    """Exact log-domain rounding: 2^k with |v| in [2^k, 2^(k+1)) goes up iff |v|^2 >= 2^(2k+1)."""
    if v == 0:
        return 0.0
    a = abs(Fraction(v)) if np.isfinite(v) else Fraction(2) ** (max_exp + 1)
    k = a.numerator.bit_length() - a.denominator.bit_length()
    if Fraction(2) ** k > a:
        k -= 1
    if a * a >= Fraction(2) ** (2 * k + 1):
        k += 1
    if k < min_exp:
        return 0.0
    return float(np.copysign(2.0 ** min(k, max_exp), v))


@given(finite_arrays(), st.integers(-1074, 1023), st.integers(0, 60))
def test_pow2_nearest_exact(x, min_exp, span):
    max_exp = min(min_exp + span, 1023)
    x = np.concatenate([x, EDGES])
    y = fxp.pow2(x, min_exp, max_exp)
    assert same_bits(y, np.array([pow2_nearest_oracle(v, min_exp, max_exp) for v in x]))


# --------------------------------------------------------------------------- stochastic rules
@given(finite_arrays(), st.integers(0, 2**64 - 1), st.integers(0, 2**40))
def test_stochastic_rules_use_the_counter_uniforms(x, seed, offset):
    u = uniforms(seed, offset, x.size)
    p_plus = np.clip((x + 1.0) * 0.5, 0.0, 1.0)
    assert same_bits(fxp.binarize(x, True, seed, offset=offset), np.where(u < p_plus, 1.0, -1.0))
    keep = u < np.minimum(np.abs(x), 1.0)
    assert same_bits(fxp.ternarize(x, None, True, seed, offset=offset),
                     np.where(keep, np.sign(x), 0.0) + 0.0)


@settings(max_examples=30)
@given(finite_arrays(), st.integers(-30, 0), st.integers(0, 30), st.integers(0, 2**64 - 1))
def test_pow2_stochastic_gives_a_neighbour(x, min_exp, span, seed):
    max_exp = min_exp + span
    y = fxp.pow2(x, min_exp, max_exp, "stochastic", seed)
    a = np.abs(x)
    low = a < 2.0**min_exp
    k = np.minimum(np.frexp(a)[1] - 1, max_exp)          # |x| in [2^k, 2^(k+1)), capped
    lo = np.where(low, 0.0, np.ldexp(1.0, k))
    hi = np.where(low, 2.0**min_exp, np.ldexp(1.0, np.minimum(k + 1, max_exp)))
    assert np.all((np.abs(y) == lo) | ((np.abs(y) == hi) & (a != lo)))
    assert np.all((y == 0) | (np.sign(y) == np.sign(x)))


@pytest.mark.parametrize("value", [0.3, -0.9, 1.7, -5.5, 0.01, 2.0**-12 * 0.3, 100.0])
def test_stochastic_quantizers_are_unbiased(value):
    n = 40_000
    x = np.full(n, value)
    cases = [  # (result, expected mean, per-draw variance)
        (fxp.binarize(x, True, 1), np.clip(value, -1, 1), 1 - np.clip(value, -1, 1) ** 2),
        (fxp.ternarize(x, None, True, 2), np.sign(value) * min(abs(value), 1),
         min(abs(value), 1) * (1 - min(abs(value), 1))),
    ]
    a = abs(value)
    lo = 0.0 if a < 2.0**-10 else 2.0 ** np.floor(np.log2(a))
    hi = 2.0**-10 if a < 2.0**-10 else 2 * lo
    if a <= 2.0**10:
        cases.append((fxp.pow2(x, -10, 10, "stochastic", 3), value, (hi - a) * (a - lo)))
    for y, mean, var in cases:
        assert abs(y.mean() - mean) <= 4 * np.sqrt(var / n) + 1e-12, (value, mean, y.mean())


def test_reproducible_by_seed_and_chunkable():
    x = np.linspace(-1.5, 1.5, 999)
    for f, args in [(fxp.binarize, (True,)), (fxp.ternarize, (None, True)),
                    (fxp.pow2, (-4, 2, "stochastic"))]:
        a = f(x, *args, 7)
        assert same_bits(a, f(x, *args, 7, backend="numba"))
        assert not same_bits(a, f(x, *args, 8))
        chunks = [f(x[s:s + 250], *args, 7, offset=s) for s in range(0, x.size, 250)]
        assert same_bits(np.concatenate(chunks), a)
        stats = fxp.QuantStats()
        f(x, *args, None, stats=stats)
        assert stats.seed is not None
        assert same_bits(f(x, *args, None, stats=stats), f(x, *args, stats.seed))


def test_pow2_saturation_and_flush_counts():
    x = np.array([0.0, 1e-9, -0.08, 0.3, 22.0, 23.0, -1e9, np.inf])
    stats = fxp.QuantStats()
    y = fxp.pow2(x, -3, 4, stats=stats)  # 2^-3.5 = 0.088, 2^4.5 = 22.63
    assert same_bits(y, np.array([0.0, 0.0, 0.0, 0.25, 16.0, 16.0, -16.0, 16.0]))
    assert stats.saturated == 3 and stats.flushed_to_zero == 2


# --------------------------------------------------------------------------- dtypes and errors
def test_dtypes():
    for dtype in (np.float16, np.float32, np.float64):
        x = np.array([-2.0, 0.1, 3.0], dtype=dtype)
        for y in (fxp.binarize(x), fxp.ternarize(x), fxp.pow2(x, -5, 5, "stochastic", 1),
                  fxp.pow2(x, -5, 5, backend="numba")):
            assert y.dtype == dtype and y.shape == x.shape
    assert fxp.binarize(np.arange(-2, 2)).dtype == np.float64
    assert fxp.pow2(3.0, 0, 4) == 4.0


def test_bad_arguments():
    x = np.array([1.0, np.nan, np.nan])
    for call in (lambda: fxp.binarize(x), lambda: fxp.ternarize(x), lambda: fxp.pow2(x, 0, 3)):
        with pytest.raises(ValueError, match=r"2 NaN.*\(1,\)"):
            call()
    with pytest.raises(ValueError, match=r"max_exp must be in \[3, 1023\]"):
        fxp.pow2(np.ones(2), 3, 2)
    with pytest.raises(ValueError, match=r"min_exp must be in \[-149, 127\]"):
        fxp.pow2(np.ones(2, np.float32), -200, 2)
    with pytest.raises(ValueError, match="rounding must be one of"):
        fxp.pow2(np.ones(2), 0, 2, "nearest_even")
    with pytest.raises(ValueError, match="threshold: must be None"):
        fxp.ternarize(np.ones(2), 0.5, stochastic=True)
    with pytest.raises(ValueError, match="threshold must be a finite number"):
        fxp.ternarize(np.ones(2), -1.0)
    with pytest.raises(ValueError, match="default threshold"):
        fxp.ternarize(np.array([1.0, np.inf]))
    with pytest.raises(TypeError, match="stochastic must be a bool"):
        fxp.binarize(np.ones(2), "yes")
    with pytest.raises(ValueError, match="seed"):
        fxp.binarize(np.ones(2), True, -1)


# --------------------------------------------------------------------------- backends
@settings(max_examples=40)
@given(st.sampled_from((np.float32, np.float64)), st.data(), st.sampled_from(("b", "t", "p")),
       st.booleans(), st.integers(0, 2**64 - 1), st.integers(-149, 100), st.integers(0, 27))
def test_numba_equals_numpy(dtype, data, which, stochastic, seed, min_exp, span):
    x = np.concatenate([data.draw(finite_arrays(dtype)), np.array(EDGES, dtype=dtype)])
    if which == "b":
        call = lambda **kw: fxp.binarize(x, stochastic, seed, **kw)  # noqa: E731
    elif which == "t":
        threshold = None if stochastic else data.draw(st.floats(0, 2))
        call = lambda **kw: fxp.ternarize(x, threshold, stochastic, seed, **kw)  # noqa: E731
    else:
        rounding = "stochastic" if stochastic else "nearest"
        call = lambda **kw: fxp.pow2(x, min_exp, min_exp + span, rounding, seed, **kw)  # noqa: E731
    s1, s2 = fxp.QuantStats(), fxp.QuantStats()
    assert same_bits(call(backend="numpy", stats=s1, offset=3), call(backend="numba", stats=s2, offset=3))
    assert s1 == s2


@pytest.mark.gpu
def test_cuda_equals_numpy():
    cupy = pytest.importorskip("cupy")
    if not cupy.cuda.is_available():
        pytest.skip("no CUDA device")
    x = np.concatenate([np.array(EDGES), np.random.default_rng(6).standard_normal(100_000) * 4])
    for call in (lambda v, **kw: fxp.binarize(v, True, 3, **kw),
                 lambda v, **kw: fxp.ternarize(v, 0.5, **kw),
                 lambda v, **kw: fxp.ternarize(v, None, True, 4, **kw),
                 lambda v, **kw: fxp.pow2(v, -6, 6, **kw),
                 lambda v, **kw: fxp.pow2(v, -6, 6, "stochastic", 5, **kw)):
        got = call(cupy.asarray(x))
        assert isinstance(got, cupy.ndarray)
        assert same_bits(cupy.asnumpy(got), call(x, backend="numpy"))
