"""Bad input gets a clear ValueError/TypeError naming the argument and its allowed range."""
from __future__ import annotations

import numpy as np
import pytest

import fixedpoint as fxp

FMT = fxp.Fixed(16, 8)
X = np.array([0.5, -1.25])


@pytest.mark.parametrize("kwargs, error, match", [
    (dict(rounding="round"), ValueError, "rounding must be one of 'nearest_even'"),
    (dict(rounding=None), ValueError, "rounding must be one of"),
    (dict(overflow="clip"), ValueError, "overflow must be one of 'saturate', 'wrap'"),
    (dict(backend="gpu"), ValueError, "backend must be one of 'auto', 'numpy', 'numba', 'cuda'"),
    (dict(nan="ignore"), ValueError, "nan must be one of 'raise', 'zero'"),
    (dict(rounding="stochastic", seed=-1), ValueError, r"seed must be in \[0, 18446744073709551615\]"),
    (dict(rounding="stochastic", seed=2**64), ValueError, "seed must be in"),
    (dict(rounding="stochastic", seed=1.5), TypeError, "seed must be an integer"),
    (dict(offset=-3), ValueError, r"offset must be in \[0, "),
    (dict(rounding="stochastic", sr_bits=0), ValueError, r"sr_bits must be in \[1, 53\]"),
    (dict(rounding="stochastic", sr_bits=54), ValueError, r"sr_bits must be in \[1, 53\]"),
    (dict(sr_bits=8), ValueError, "sr_bits applies only to rounding='stochastic'"),
    (dict(stats={}), TypeError, "stats must be a QuantStats"),
])
def test_bad_arguments(kwargs, error, match) -> None:
    for f in (fxp.quantize, fxp.to_raw):
        with pytest.raises(error, match=match):
            f(X, FMT, **kwargs)


def test_cached_argument_checks_still_reject_lookalikes() -> None:
    """The per-call checks are cached for valid plain arguments: values equal to a cached valid one
    (``True``/``1.0`` == ``1``), str subclasses and unhashable values still get the checks' errors,
    the same on a second call, and a valid call still works after them."""
    sto = dict(rounding="stochastic", seed=3)
    fxp.quantize(X, FMT, sr_bits=1, **sto)  # caches the valid combination with sr_bits=1
    for f in (fxp.quantize, fxp.to_raw):
        for _ in range(2):
            with pytest.raises(TypeError, match="sr_bits must be an integer"):
                f(X, FMT, sr_bits=True, **sto)
            with pytest.raises(TypeError, match="sr_bits must be an integer"):
                f(X, FMT, sr_bits=1.0, **sto)
            with pytest.raises(ValueError, match="rounding must be one of"):
                f(X, FMT, rounding=["nearest_even"])
            with pytest.raises(ValueError, match="overflow must be one of"):
                f(X, FMT, overflow={"saturate": 1})
            with pytest.raises(ValueError, match="nan must be one of"):
                f(X, FMT, nan="ignore")
            with pytest.raises(ValueError, match="NaN"):
                f(np.array([np.nan]), FMT)
    class Mode(str):
        pass
    np.testing.assert_array_equal(fxp.quantize(X, FMT, Mode("floor"), sr_bits=None),
                                  fxp.quantize(X, FMT, "floor"))
    assert np.array_equal(fxp.quantize(np.array([np.nan]), FMT, nan="zero"), [0.0])
    np.testing.assert_array_equal(fxp.quantize(X, FMT, sr_bits=np.int64(1), **sto),
                                  fxp.quantize(X, FMT, sr_bits=1, **sto))


def test_bad_format_argument() -> None:
    with pytest.raises(TypeError, match="fmt must be a Fixed or FloatFormat"):
        fxp.quantize(X, "s16.8")
    with pytest.raises(TypeError, match="fmt must be a Fixed format"):
        fxp.to_raw(X, (16, 8))


@pytest.mark.parametrize("x", [np.array([1 + 2j]), np.array(["a"]), np.array([object()]),
                               np.array([2**53 + 1], dtype=np.int64),
                               np.array([2**64 - 1], dtype=np.uint64), [2**70]])
def test_inputs_that_are_not_exact_floats(x) -> None:
    with pytest.raises(TypeError, match="x "):
        fxp.quantize(x, FMT)


def test_exact_integers_are_accepted() -> None:
    x = np.array([2**53, -(2**62), 7], dtype=np.int64)
    assert fxp.to_raw(x, fxp.Fixed(62, 0)).tolist() == [2**53, -(2**61), 7]
    assert fxp.quantize(np.array([True, False]), FMT).tolist() == [1.0, 0.0]


def test_nan_reports_count_and_first_index() -> None:
    x = np.zeros((3, 4))
    x[1, 2] = x[2, 0] = np.nan
    with pytest.raises(ValueError, match=r"2 NaN value\(s\), the first at index \(1, 2\); pass nan='zero'"):
        fxp.quantize(x, FMT)
    y = fxp.quantize(x, FMT, nan="zero")
    assert not np.isnan(y).any() and y[1, 2] == 0.0


def test_wrap_of_infinity_raises() -> None:
    with pytest.raises(ValueError, match=r"1 infinite value\(s\) \(first at flat index 1\).*saturate"):
        fxp.to_raw(np.array([0.0, -np.inf]), FMT, overflow="wrap")


@pytest.mark.parametrize("dtype, fmt", [
    (np.float32, fxp.Fixed(25, 8)), (np.float16, fxp.Fixed(4, 30)), (np.float16, fxp.Fixed(12, 0)),
    (np.float64, fxp.Fixed(54, 0)),
])
def test_result_dtype_must_hold_the_format(dtype, fmt) -> None:
    with pytest.raises(ValueError, match="cannot hold every value of .* exactly.*(float64|to_raw)"):
        fxp.quantize(np.zeros(3, dtype=dtype), fmt)
    fxp.to_raw(np.zeros(3, dtype=dtype), fmt)  # raw integers are always fine


def test_from_raw_checks() -> None:
    with pytest.raises(ValueError, match=r"raw must lie in \[-32768, 32767\]"):
        fxp.from_raw(np.array([40000]), FMT)
    with pytest.raises(TypeError, match="raw must be an integer array"):
        fxp.from_raw(np.array([1.0]), FMT)
    with pytest.raises(ValueError, match="float32 result cannot hold"):
        fxp.from_raw(np.array([1]), fxp.Fixed(30, 0), np.float32)


def test_cupy_input_refuses_cpu_backends() -> None:
    cupy = pytest.importorskip("cupy")
    try:
        x = cupy.zeros(3)
    except Exception:  # cupy installed but no usable device
        pytest.skip("no CUDA device")
    with pytest.raises(ValueError, match="needs a numpy array"):
        fxp.quantize(x, FMT, backend="numba")
