"""fixedpoint on CuPy arrays against the numpy oracle, bit for bit (real GPU; skipped without one).

Every rounding mode and overflow mode, stochastic streams at several offsets and ``sr_bits``,
with and without statistics (two different CUDA kernels), FixedArray arithmetic and casts,
``matmul`` on each of its paths (one GEMM, limb GEMMs, the MAC loop with product rounding or
saturation, stochastic), FloatFormat without statistics. The CUDA kernels' logic is also checked
without a GPU under the simulator (test_quantize_backends.py, test_matmul_cuda_sim.py).
"""
from __future__ import annotations

import numpy as np
import pytest

import fixedpoint as fxp
from fixedpoint._stats import BLOCK

pytestmark = pytest.mark.gpu


def _sample(fmt: fxp.Fixed, n: int, dtype, seed: int) -> np.ndarray:
    """Normal values spanning the format's range x 1.5, every 5th one a tie, plus specials."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(n) * max(fmt.max, 1.0) * 1.5
    x[::5] = (np.round(x[::5] / fmt.step) + 0.5) * fmt.step
    x[:7] = [np.nan, 0.0, -0.0, 5e-324, fmt.max, fmt.min, fmt.step / 2]
    return x.astype(dtype)


FORMATS = [fxp.Fixed(16, 8), fxp.Fixed(8, 2, False), fxp.Fixed(12, -3), fxp.Fixed(40, 20)]


@pytest.mark.parametrize("with_stats", [False, True])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_quantize_every_mode_equals_numpy(cupy_device, dtype, with_stats) -> None:
    cp = cupy_device
    for fmt in FORMATS:
        x = _sample(fmt, 2 * BLOCK + 37, dtype, seed=fmt.word)
        xd = cp.asarray(x)
        for rounding in fxp.ROUNDING_MODES:
            for overflow in ("saturate", "wrap"):
                for sr_bits, offset in ((None, 0), (8, 12345)) if rounding == "stochastic" else ((None, 3),):
                    kw = {"seed": 77, "offset": offset, "sr_bits": sr_bits, "nan": "zero"}
                    s1, s2 = (fxp.QuantStats(), fxp.QuantStats()) if with_stats else (None, None)
                    want = fxp.to_raw(x, fmt, rounding, overflow, backend="numpy", stats=s1, **kw)
                    got = fxp.to_raw(xd, fmt, rounding, overflow, stats=s2, **kw)
                    assert isinstance(got, cp.ndarray)
                    assert np.array_equal(cp.asnumpy(got), want), (fmt, rounding, overflow, sr_bits)
                    assert s1 == s2, (fmt, rounding, overflow, s1, s2)
                    if fmt.word <= np.finfo(dtype).nmant + 1:
                        want = fxp.quantize(x, fmt, rounding, overflow, backend="numpy", **kw)
                        got = fxp.quantize(xd, fmt, rounding, overflow, **kw)
                        assert got.dtype == want.dtype
                        assert cp.asnumpy(got).tobytes() == want.tobytes(), (fmt, rounding, overflow)


def test_quantize_nan_and_wrapped_inf_raise_on_gpu(cupy_device) -> None:
    cp = cupy_device
    fmt = fxp.Fixed(16, 8)
    with pytest.raises(ValueError, match="NaN"):
        fxp.quantize(cp.asarray([1.0, np.nan]), fmt)
    with pytest.raises(ValueError, match="infinite"):
        fxp.quantize(cp.asarray([1.0, np.inf]), fmt, overflow="wrap")


def test_stochastic_stream_of_a_large_array_equals_numba(cupy_device) -> None:
    cp = cupy_device
    x = np.random.default_rng(1).standard_normal(3_000_001).astype(np.float32) * 40
    for offset in (0, 2**40 + 5):
        want = fxp.quantize(x, fxp.Fixed(16, 8), "stochastic", seed=9, offset=offset, backend="numba")
        got = fxp.quantize(cp.asarray(x), fxp.Fixed(16, 8), "stochastic", seed=9, offset=offset)
        assert cp.asnumpy(got).tobytes() == want.tobytes()


def _pair(cp, shape, fmt, seed):
    x = np.random.default_rng(seed).standard_normal(shape) * fmt.max / 3
    host = fxp.FixedArray.from_float(x, fmt)
    dev = fxp.FixedArray.from_float(cp.asarray(x), fmt)
    assert isinstance(dev.raw, cp.ndarray) and np.array_equal(cp.asnumpy(dev.raw), host.raw)
    return host, dev


def _same(cp, dev: fxp.FixedArray, host: fxp.FixedArray) -> None:
    assert isinstance(dev.raw, cp.ndarray), type(dev.raw)
    assert dev.fmt == host.fmt and dev.shape == host.shape
    assert np.array_equal(cp.asnumpy(dev.raw), host.raw)


def test_fixed_array_arithmetic_and_cast(cupy_device) -> None:
    cp = cupy_device
    a, ga = _pair(cp, (5, 7), fxp.Fixed(12, 4), 1)
    b, gb = _pair(cp, (5, 7), fxp.Fixed(10, 6, True), 2)
    for op in (lambda p, q: p + q, lambda p, q: p - q, lambda p, q: p * q, lambda p, q: -p,
               lambda p, q: p + 0.75, lambda p, q: 3 * q, lambda p, q: p.sum(0), lambda p, q: q.sum(),
               lambda p, q: p[1:3].T, lambda p, q: p.reshape(7, 5) @ q):
        _same(cp, op(ga, gb), op(a, b))
    np.testing.assert_array_equal(cp.asnumpy(ga.to_float()), a.to_float())
    assert repr(ga) == repr(a)
    for rounding in fxp.ROUNDING_MODES:
        for overflow in ("saturate", "wrap"):
            for target in (fxp.Fixed(6, 1), fxp.Fixed(16, 9)):  # drop bits / append bits
                kw = {"seed": 4, "offset": 11} if rounding == "stochastic" else {}
                _same(cp, ga.cast(target, rounding, overflow, **kw), a.cast(target, rounding, overflow, **kw))
    s1, s2 = fxp.QuantStats(), fxp.QuantStats()
    _same(cp, ga.cast(fxp.Fixed(6, 1), "stochastic", seed=3, stats=s2),
          a.cast(fxp.Fixed(6, 1), "stochastic", seed=3, stats=s1))
    assert s1 == s2


MATMUL_CASES = [  # (a format, b format, acc, out, rounding, acc_overflow): the path taken
    (fxp.Fixed(12, 4), fxp.Fixed(12, 4), fxp.Fixed(40, 16), fxp.Fixed(16, 8), "nearest_even", "wrap"),  # GEMM
    (fxp.Fixed(32, 8), fxp.Fixed(30, 8), fxp.Fixed(62, 16), fxp.Fixed(40, 8), "floor", "wrap"),  # limbs
    (fxp.Fixed(16, 8), fxp.Fixed(16, 8), fxp.Fixed(24, 10), fxp.Fixed(16, 8), "nearest_even", "wrap"),  # MAC
    (fxp.Fixed(16, 8), fxp.Fixed(16, 8), fxp.Fixed(24, 10), fxp.Fixed(16, 8), "stochastic", "wrap"),
    (fxp.Fixed(16, 8), fxp.Fixed(16, 8), fxp.Fixed(20, 16), fxp.Fixed(12, 6), "toward_zero", "saturate"),
    (fxp.Fixed(8, 4), fxp.Fixed(8, 4), fxp.Fixed(14, 3), fxp.Fixed(8, 2), "stochastic", "saturate"),
]


@pytest.mark.parametrize("case", range(len(MATMUL_CASES)))
def test_matmul_paths_equal_numpy(cupy_device, case) -> None:
    cp = cupy_device
    fa, fb, acc, out, rounding, acc_overflow = MATMUL_CASES[case]
    for m, k, n in ((33, 70, 17), (1, 5000, 3)):
        a, ga = _pair(cp, (m, k), fa, 10 + case)
        b, gb = _pair(cp, (k, n), fb, 20 + case)
        kw = {"acc": acc, "out": out, "rounding": rounding, "acc_overflow": acc_overflow,
              "seed": 5, "offset": 9}
        _same(cp, fxp.matmul(ga, gb, **kw), fxp.matmul(a, b, **kw))
        _same(cp, fxp.matmul(ga[0], gb, **kw), fxp.matmul(a[0], b, **kw))  # 1-D operand
        s1, s2 = fxp.QuantStats(), fxp.QuantStats()
        _same(cp, fxp.matmul(ga, gb, stats=s2, **kw), fxp.matmul(a, b, stats=s1, **kw))
        assert s1 == s2
        if fa.word + fb.word + 13 <= 62:
            _same(cp, ga @ gb, a @ b)


def test_matmul_of_float_cupy_operands(cupy_device) -> None:
    cp = cupy_device
    x = np.random.default_rng(3).standard_normal((20, 30)).astype(np.float32)
    w = np.random.default_rng(4).standard_normal((30, 8)).astype(np.float32)
    kw = {"a_fmt": fxp.Fixed(8, 4), "b_fmt": fxp.Fixed(8, 6), "acc": fxp.Fixed(32, 10)}
    _same(cp, fxp.matmul(cp.asarray(x), cp.asarray(w), **kw), fxp.matmul(x, w, **kw))


@pytest.mark.parametrize("fmt", [fxp.FP16, fxp.BF16, fxp.FP8_E4M3, fxp.FP8_E5M2, fxp.FP4_E2M1])
def test_float_formats_without_stats_equal_numpy(cupy_device, fmt) -> None:
    cp = cupy_device
    x = np.random.default_rng(5).standard_normal(50_001) * 30
    for dtype in (np.float32, np.float64):
        xd = cp.asarray(x.astype(dtype))
        for rounding in fxp.ROUNDING_MODES:
            kw = {"seed": 3, "offset": 5} if rounding == "stochastic" else {}
            want = fxp.quantize(x.astype(dtype), fmt, rounding, backend="numpy", **kw)
            got = fxp.quantize(xd, fmt, rounding, **kw)
            assert cp.asnumpy(got).tobytes() == want.tobytes(), (fmt, rounding, dtype)
