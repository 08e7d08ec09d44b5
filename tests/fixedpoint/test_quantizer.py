"""``fixedpoint.Quantizer``: the short per-call path gives the oracle's bits, statistics and errors,
and every call it does not take falls back to ``quantize``'s own checks."""
from __future__ import annotations

import re

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import fixedpoint as fxp
from fixedpoint.testing import formats, values


def _oracle(x, fmt, rounding, overflow, **kw):
    stats = fxp.QuantStats()
    y = fxp.quantize(x, fmt, rounding, overflow, backend="numpy", stats=stats, nan="zero", **kw)
    return y, stats


def _bound(x, fmt, rounding, overflow, **kw):
    stats = fxp.QuantStats()
    y = fxp.Quantizer(fmt, rounding, overflow, nan="zero")(x, stats=stats, **kw)
    return y, stats


def _assert_same(a, b) -> None:
    (ya, sa), (yb, sb) = a, b
    assert type(ya) is type(yb) and np.shape(ya) == np.shape(yb)
    assert np.asarray(ya).dtype == np.asarray(yb).dtype
    assert np.asarray(ya).tobytes() == np.asarray(yb).tobytes()
    assert sa == sb


@pytest.mark.parametrize("overflow", ["saturate", "wrap"])
@pytest.mark.parametrize("rounding", fxp.ROUNDING_MODES)
@given(fmt=formats(max_word=53), data=st.data(), seed=st.integers(0, 2**64 - 1),
       offset=st.integers(0, 2**64 - 1))
@settings(max_examples=15)
def test_short_path_equals_the_oracle(rounding, overflow, fmt, data, seed, offset) -> None:
    fits32 = fmt.word <= 24 and -fmt.frac >= -149 and fmt.word - fmt.frac <= 127
    width = 32 if fits32 and data.draw(st.booleans()) else 64
    strategy = values(fmt, allow_nan=True, allow_infinity=overflow == "saturate", width=width)
    x = np.array(data.draw(st.lists(strategy, min_size=1, max_size=24)), dtype=f"float{width}")
    shape = data.draw(st.sampled_from([(-1,), (-1, 1), (1, -1)]))
    x = x.reshape(shape)
    view = data.draw(st.booleans())
    if view:  # not C-contiguous (every other row/column): the general path
        x = x[::2] if shape == (-1, 1) else x[..., ::2]
    kw = dict(seed=seed, offset=offset)
    _assert_same(_oracle(x, fmt, rounding, overflow, **kw), _bound(x, fmt, rounding, overflow, **kw))


@pytest.mark.parametrize("case", [
    "scalar", "0-d array", "empty", "empty numba", "float16", "list", "int input", "numpy seed",
    "numpy offset", "numpy backend",
])
def test_every_fallback_equals_the_oracle(case) -> None:
    fmt = fxp.Fixed(8, 4)
    x = np.linspace(-9, 9, 37)
    kw = dict(seed=7, offset=3)
    if case == "scalar":
        x = np.float64(1.03)
    elif case == "0-d array":  # the short path, reshaped to ()
        x = np.array(1.03)
    elif case in ("empty", "empty numba"):  # numba: one empty block
        x = np.zeros((0, 3))
    elif case == "float16":
        x = x.astype(np.float16)
    elif case == "list":
        x = x.tolist()
    elif case == "int input":
        x = np.arange(-20, 20)
    elif case == "numpy seed":
        kw["seed"] = np.uint64(7)
    elif case == "numpy offset":
        kw["offset"] = np.int32(3)
    a = _oracle(x, fmt, "stochastic", "saturate", **kw)
    backend = {"numpy backend": "numpy", "empty numba": "numba"}.get(case, "auto")
    b = _bound(x, fmt, "stochastic", "saturate", **kw, backend=backend)
    _assert_same(a, b)


def test_drawn_seed_is_recorded_and_replays() -> None:
    x = np.linspace(-1, 1, 101, dtype=np.float32)
    q = fxp.Quantizer(fxp.Fixed(8, 3), "stochastic")
    stats = fxp.QuantStats()
    y = q(x, stats=stats)
    assert stats.seed is not None
    assert y.tobytes() == q(x, seed=stats.seed).tobytes()


def test_deterministic_modes_accept_and_check_a_seed() -> None:
    q = fxp.Quantizer(fxp.Fixed(8, 3))
    x = np.linspace(-1, 1, 11)
    assert q(x, seed=5).tobytes() == q(x).tobytes()
    with pytest.raises(ValueError, match="seed"):
        q(x, seed=-1)
    with pytest.raises(TypeError, match="seed"):
        q(x, seed=1.5)


def test_errors_are_those_of_quantize() -> None:
    q = fxp.Quantizer(fxp.Fixed(8, 3), "stochastic", "wrap")
    with pytest.raises(ValueError, match=r"NaN value\(s\), the first at index \(2,\)"):
        q(np.array([0.0, 1.0, np.nan], np.float32), seed=1)
    with pytest.raises(ValueError, match="first at flat index 1"):
        q(np.array([0.0, np.inf]), seed=1)
    with pytest.raises(ValueError, match="offset"):
        q(np.zeros(3), seed=1, offset=-1)
    with pytest.raises(TypeError, match="stats"):
        q(np.zeros(3), seed=1, stats={})
    with pytest.raises(ValueError, match="backend"):
        q(np.zeros(3), seed=1, backend="gpu")
    with pytest.raises(ValueError, match="float32 result cannot hold"):
        fxp.Quantizer(fxp.Fixed(30, 4))(np.zeros(3, np.float32))


def test_construction_checks_the_modes() -> None:
    fmt = fxp.Fixed(8, 3)
    with pytest.raises(ValueError, match="rounding must be one of"):
        fxp.Quantizer(fmt, "nearest")
    with pytest.raises(ValueError, match="overflow must be one of"):
        fxp.Quantizer(fmt, "floor", "clip")
    with pytest.raises(ValueError, match="sr_bits applies only"):
        fxp.Quantizer(fmt, "floor", sr_bits=4)
    with pytest.raises(TypeError, match="fmt must be a Fixed or FloatFormat, got str"):
        fxp.Quantizer("s8.3")  # a float format binds too: test_float_formats_bind_as_quantize
    q = fxp.Quantizer(fmt, "stochastic", sr_bits=4)
    with pytest.raises(AttributeError, match="immutable"):
        q.rounding = "floor"
    assert repr(q) == "Quantizer(s8.3, 'stochastic', 'saturate', sr_bits=4, nan='raise')"
    x = np.linspace(-3, 3, 50)
    assert q(x, seed=2).tobytes() == fxp.quantize(x, fmt, "stochastic", seed=2, sr_bits=4,
                                                  backend="numpy").tobytes()


@pytest.mark.parametrize("rounding", fxp.ROUNDING_MODES)
@given(fmt=formats(max_word=53), data=st.data(), seed=st.integers(0, 2**64 - 1))
@settings(max_examples=10)
def test_transposed_views_equal_their_contiguous_copies(rounding, fmt, data, seed) -> None:
    """A Fortran-ordered view (a transposed weight) gives the bits of its C-ordered copy: deterministic
    modes run on x.T without a copy, stochastic rounding keeps the C element order of its stream."""
    rows, cols = data.draw(st.integers(2, 40)), data.draw(st.integers(2, 40))
    n = rows * cols
    x = np.asarray(data.draw(st.lists(values(fmt), min_size=n, max_size=n)),
                   dtype=np.float64).reshape(cols, rows).T
    assert x.flags.f_contiguous and not x.flags.c_contiguous
    q = fxp.Quantizer(fmt, rounding, "saturate", nan="zero")
    y = q(x, seed=seed)
    ref, _ = _oracle(np.ascontiguousarray(x), fmt, rounding, "saturate", seed=seed)
    assert y.shape == x.shape and y.dtype == ref.dtype
    assert np.array_equal(y, ref, equal_nan=True) and np.signbit(y).tolist() == np.signbit(ref).tolist()


_FLOAT_CASES = [
    (fxp.FP8_E4M3, "nearest_even", "saturate", "raise"),
    (fxp.FP8_E4M3, "stochastic", "nan", "propagate"),
    (fxp.FP8_E5M2, "floor", "inf", "zero"),
    (fxp.BF16, "ceil", "inf", "raise"),
    (fxp.FP4_E2M1, "toward_zero", "saturate", "zero"),
    (fxp.FP16, "nearest_away", "inf", "raise"),
]


@pytest.mark.parametrize("fmt, rounding, overflow, nan", _FLOAT_CASES)
@pytest.mark.parametrize("backend", ["numpy", "numba", "auto"])
def test_float_formats_bind_as_quantize(fmt, rounding, overflow, nan, backend) -> None:
    """``Quantizer(FloatFormat, ...)`` gives quantize's bits and statistics on every CPU backend."""
    x = np.random.default_rng(5).standard_normal(301) * fmt.max / 4
    x[:4] = [0.0, -0.0, fmt.max * 3, -np.inf]
    if nan != "raise":
        x[5] = np.nan
    q = fxp.Quantizer(fmt, rounding, overflow, nan=nan)
    assert repr(q) == f"Quantizer({fmt}, {rounding!r}, {overflow!r}, nan={nan!r})"
    for dtype in (np.float64, np.float32):
        xd = x.astype(dtype)
        s1, s2 = fxp.QuantStats(), fxp.QuantStats()
        want = fxp.quantize(xd, fmt, rounding, overflow, seed=4, offset=9, nan=nan, backend="numpy",
                            stats=s1)
        got = q(xd, seed=4, offset=9, backend=backend, stats=s2)
        assert got.dtype == want.dtype and got.tobytes() == want.tobytes()
        assert s1 == s2


@pytest.mark.parametrize("kwargs", [
    dict(overflow="wrap"), dict(overflow="inf"), dict(overflow="nan"), dict(rounding="nearest"),
    dict(nan="propagate"),
    dict(sr_bits=4), dict(rounding="stochastic", sr_bits=0), dict(nan="zero", overflow="clip"),
])
def test_float_format_errors_are_those_of_quantize(kwargs) -> None:
    """Construction raises what ``quantize`` raises for the same float-format arguments."""
    fmt = fxp.FP4_E2M1  # no infinity, no NaN: overflow="inf"/"nan", nan="propagate" are invalid
    with pytest.raises((TypeError, ValueError)) as expected:
        fxp.quantize(np.zeros(2), fmt, **kwargs)
    with pytest.raises(expected.type, match=f"^{re.escape(str(expected.value))}$"):
        fxp.Quantizer(fmt, **kwargs)


def test_float_call_errors_are_those_of_quantize() -> None:
    q = fxp.Quantizer(fxp.FP8_E4M3, "stochastic")
    with pytest.raises(ValueError, match=r"NaN value\(s\), the first at index \(1,\)"):
        q(np.array([0.0, np.nan]), seed=1)
    with pytest.raises(ValueError, match="offset"):
        q(np.zeros(3), seed=1, offset=-1)
    with pytest.raises(ValueError, match="backend"):
        q(np.zeros(3), seed=1, backend="gpu")
    with pytest.raises(ValueError, match=f"float16 result cannot hold every value of {fxp.BF16}"):
        fxp.Quantizer(fxp.BF16)(np.zeros(3, np.float16))


@pytest.mark.parametrize("backend", ["numpy", "numba"])
@pytest.mark.parametrize("shape", [(3, 1), (1, 3), (1, 1)])
def test_arrays_both_c_and_f_contiguous(shape, backend) -> None:
    """A (n, 1) or (1, n) array is C- and F-contiguous: it takes no transposed route (which
    recursed without end when the short path declined it, e.g. for backend="numpy")."""
    x = np.linspace(-1, 1, 3)[: shape[0] * shape[1]].reshape(shape)
    for dtype in (np.float64, np.float16):
        y = fxp.Quantizer(fxp.Fixed(8, 3))(x.astype(dtype), backend=backend)
        assert y.shape == shape and y.tobytes() == fxp.quantize(x.astype(dtype), fxp.Fixed(8, 3),
                                                                backend="numpy").tobytes()
