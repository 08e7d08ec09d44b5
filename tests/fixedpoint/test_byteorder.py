"""Big-endian (non-native byte order) input: every entry point converts it to native order and gives
the numpy backend's result on the native array, bit for bit (issue 15, item 8)."""
from __future__ import annotations

import copy
import sys

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

import fixedpoint as fxp

OTHER = ">" if sys.byteorder == "little" else "<"
F = fxp.Fixed(8, 4)
BIG_N = 1 << 16  # float formats switch to the Numba kernel at 65,536 elements


def swapped(x: np.ndarray) -> np.ndarray:
    out = x.astype(x.dtype.newbyteorder(OTHER))
    assert not out.dtype.isnative and np.array_equal(out, x)
    return out


def same(a, b) -> bool:
    a, b = np.asarray(a), np.asarray(b)
    return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()


def values(n: int, dtype) -> np.ndarray:
    return np.random.default_rng(n).uniform(-10, 10, n).astype(dtype)


@pytest.mark.parametrize("n", [3, 1000, BIG_N + 5])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("backend", ["auto", "numba", "numpy"])
def test_quantize_and_to_raw(n, dtype, backend):
    x = values(n, dtype)
    for fmt in (F, fxp.FP8_E4M3, fxp.BF16):
        ref = fxp.quantize(x, fmt, backend="numpy")
        got = fxp.quantize(swapped(x), fmt, backend=backend)
        assert got.dtype.isnative and same(got, ref), fmt
    assert same(fxp.to_raw(swapped(x), F, backend=backend), fxp.to_raw(x, F, backend="numpy"))
    sr = fxp.quantize(swapped(x), F, "stochastic", seed=5, backend=backend)
    assert same(sr, fxp.quantize(x, F, "stochastic", seed=5, backend="numpy"))


def test_quantizer_from_float_and_matmul():
    x = values(BIG_N + 1, np.float32)
    q = fxp.Quantizer(F)
    assert same(q(swapped(x)), fxp.quantize(x, F, backend="numpy"))
    assert same(q(swapped(x)), q(x))  # the cached native kernel is not handed the swapped array
    assert same(fxp.FixedArray.from_float(swapped(x), F).raw, fxp.FixedArray.from_float(x, F).raw)
    a, b = values(48, np.float64).reshape(6, 8), values(40, np.float64).reshape(8, 5)
    ref = fxp.matmul(a, b, a_fmt=F, b_fmt=F)
    got = fxp.matmul(swapped(a), swapped(b), a_fmt=F, b_fmt=F)
    assert same(got.raw, ref.raw) and got.fmt == ref.fmt


def test_other_quantizers():
    x = values(2000, np.float32)
    assert same(fxp.binarize(swapped(x)), fxp.binarize(x))
    assert same(fxp.ternarize(swapped(x)), fxp.ternarize(x))
    assert same(fxp.pow2(swapped(x), -4, 4), fxp.pow2(x, -4, 4))


@given(arrays(np.float32, st.integers(1, 300), elements=st.floats(-300, 300, width=32)))
def test_any_values_big_endian_equal_native(x):
    for fmt in (F, fxp.FP8_E5M2):
        assert same(fxp.quantize(swapped(x), fmt), fxp.quantize(x, fmt, backend="numpy"))


def test_quantizer_is_shared_by_deepcopy():
    q = fxp.Quantizer(F, "stochastic")
    assert copy.deepcopy(q) is q and copy.copy(q) is q
    holder = copy.deepcopy({"q": q, "x": [1]})
    assert holder["q"] is q
