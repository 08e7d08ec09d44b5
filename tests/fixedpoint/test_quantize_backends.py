"""Numba CPU and CUDA kernels equal the numpy oracle bit for bit, statistics included."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import fixedpoint as fxp
from fixedpoint import _backend
from fixedpoint._stats import BLOCK
from fixedpoint.testing import formats, values

ROOT = Path(__file__).resolve().parents[2]
SPECIALS = [np.nan, np.inf, -np.inf, 0.0, -0.0, 5e-324, -5e-324, 1e-310, 1e300, -1e300,
            1.7976931348623157e308]


def _run_both(x, fmt, rounding, overflow, seed, offset, other):
    """(result, stats) from the numpy oracle and from ``other`` for quantize and to_raw."""
    outs = []
    for backend in ("numpy", other):
        s1, s2 = fxp.QuantStats(), fxp.QuantStats()
        kw = dict(seed=seed, offset=offset, nan="zero", backend=backend)
        y = fxp.quantize(x, fmt, rounding, overflow, stats=s1, **kw)
        raw = fxp.to_raw(x, fmt, rounding, overflow, stats=s2, **kw)
        outs.append((y, raw, s1, s2))
    return outs


def _assert_same(a, b) -> None:
    (ya, ra, sa1, sa2), (yb, rb, sb1, sb2) = a, b
    assert ya.dtype == yb.dtype and ya.shape == yb.shape
    assert ya.tobytes() == yb.tobytes()
    assert np.array_equal(ra, rb)
    assert sa1 == sb1 and sa2 == sb2


def _sample(fmt: fxp.Fixed, n: int, dtype, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    scale = max(abs(fmt.min), fmt.max, fmt.step)
    x = rng.normal(size=n) * scale * 1.5
    x[::7] = np.round(x[::7] / fmt.step) * fmt.step + fmt.step / 2  # ties
    x[: len(SPECIALS)] = SPECIALS
    finite = [v for v in SPECIALS if np.isfinite(v)]
    x[BLOCK: BLOCK + len(finite)] = finite  # a block without NaN/inf takes the fast loop
    return x.astype(dtype)


@pytest.mark.parametrize("overflow", ["saturate", "wrap"])
@pytest.mark.parametrize("rounding", fxp.ROUNDING_MODES)
@given(fmt=formats(max_word=53), data=st.data(), seed=st.integers(0, 2**64 - 1),
       offset=st.integers(0, 2**64 - 1))
@settings(max_examples=25)
def test_numba_equals_numpy(rounding, overflow, fmt, data, seed, offset) -> None:
    fits32 = fmt.word <= 24 and -fmt.frac >= -149 and fmt.word - fmt.frac <= 127
    width = 32 if fits32 and data.draw(st.booleans()) else 64
    strategy = values(fmt, allow_nan=True, allow_infinity=overflow == "saturate", width=width)
    x = np.array(data.draw(st.lists(strategy, max_size=20)), dtype=f"float{width}")
    a, b = _run_both(x, fmt, rounding, overflow, seed, offset, "numba")
    _assert_same(a, b)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("fmt", [fxp.Fixed(16, 8), fxp.Fixed(7, -3, False), fxp.Fixed(20, 30)])
def test_numba_equals_numpy_over_many_blocks(fmt, dtype) -> None:
    x = _sample(fmt, 3 * BLOCK + 17, dtype, seed=fmt.word).reshape(-1, 1)
    for rounding in fxp.ROUNDING_MODES:
        for overflow in ("saturate", "wrap"):
            if overflow == "wrap":
                x[np.isinf(x)] = 0
            a, b = _run_both(x, fmt, rounding, overflow, 99, 5, "numba")
            _assert_same(a, b)


@pytest.mark.parametrize("fmt", [fxp.Fixed(62, 3), fxp.Fixed(53, 0, False), fxp.Fixed(52, -60)])
def test_numba_equals_numpy_for_wide_raw_output(fmt) -> None:
    x = _sample(fmt, 2 * BLOCK + 5, np.float64, seed=3) * 2.0**-fmt.frac
    x[np.isnan(x) | np.isinf(x)] = 0
    for rounding in fxp.ROUNDING_MODES:
        for overflow in ("saturate", "wrap"):
            raws = [fxp.to_raw(x, fmt, rounding, overflow, seed=4, backend=b) for b in ("numpy", "numba")]
            assert np.array_equal(*raws)


def _assert_same_without_stats(x, fmt, rounding, overflow, seed, offset) -> None:
    """Without ``stats`` the Numba backend takes its fused loops (float32 ones included)."""
    for f in (fxp.quantize, fxp.to_raw):
        a, b = (f(x, fmt, rounding, overflow, seed=seed, offset=offset, nan="zero", backend=bk)
                for bk in ("numpy", "numba"))
        assert a.dtype == b.dtype and a.tobytes() == b.tobytes(), (f.__name__, fmt, rounding)


@pytest.mark.parametrize("overflow", ["saturate", "wrap"])
@pytest.mark.parametrize("rounding", fxp.ROUNDING_MODES)
@given(fmt=formats(max_word=53), data=st.data(), seed=st.integers(0, 2**64 - 1),
       offset=st.integers(0, 2**64 - 1))
@settings(max_examples=25)
def test_numba_fused_loops_equal_numpy(rounding, overflow, fmt, data, seed, offset) -> None:
    fits32 = fmt.word <= 24 and -fmt.frac >= -149 and fmt.word - fmt.frac <= 127
    width = 32 if fits32 and data.draw(st.booleans()) else 64
    # NaN is drawn rarely: a block holding one leaves the fused loop for the general one
    strategy = values(fmt, allow_nan=data.draw(st.integers(0, 4)) == 0,
                      allow_infinity=overflow == "saturate", width=width)
    x = np.array(data.draw(st.lists(strategy, max_size=40)), dtype=f"float{width}")
    _assert_same_without_stats(x, fmt, rounding, overflow, seed, offset)


_EDGES32 = [0.0, -0.0, 1e-45, -1e-45, 1.1754942e-38, -1.1754942e-38, 1e-30, -1e-30,
            np.finfo(np.float32).max, -np.finfo(np.float32).max, np.inf, -np.inf, 1e30, -1e30]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("fmt", [fxp.Fixed(16, 8), fxp.Fixed(8, 7), fxp.Fixed(24, 0),
                                 fxp.Fixed(24, 30, False), fxp.Fixed(1, 0), fxp.Fixed(12, -3)])
def test_numba_fused_loops_edge_cases(fmt, dtype) -> None:
    """Ties (every half step, at 0 and next to +-max), +-max, +-min, -0.0, subnormals, huge
    values and +-inf, in a NaN-free block (fused loops) and in one with a NaN (general loop)."""
    raws = np.arange(fmt.raw_min - 3, fmt.raw_max + 4)
    raws = raws if raws.size < 5000 else np.concatenate([raws[:2000], raws[-2000:],
                                                         np.arange(-1000, 1000)])
    grid = raws * fmt.step
    x = np.concatenate([grid, grid + fmt.step / 2, grid - fmt.step / 4, grid + fmt.step / 4,
                        np.nextafter(grid + fmt.step / 2, np.inf),
                        np.nextafter(grid + fmt.step / 2, -np.inf), _EDGES32]).astype(dtype)
    with_nan = np.concatenate([x, [np.nan]]).astype(dtype)
    for rounding in fxp.ROUNDING_MODES:
        for overflow in ("saturate", "wrap"):
            for arr in (x, with_nan):
                arr = arr[~np.isinf(arr)] if overflow == "wrap" else arr
                _assert_same_without_stats(arr, fmt, rounding, overflow, 7, 3)


def test_numba_fused_loops_serial_and_parallel() -> None:
    """Both sides of ``SERIAL_MAX`` (one thread, and ``prange`` over blocks) give the oracle's bits."""
    from fixedpoint._fixed_numba import SERIAL_MAX

    fmt = fxp.Fixed(16, 8)
    x = _sample(fmt, SERIAL_MAX + BLOCK + 3, np.float32, seed=2)
    x[np.isnan(x)] = 0
    for n in (SERIAL_MAX, x.size):
        for rounding in ("nearest_even", "stochastic"):
            _assert_same_without_stats(x[:n], fmt, rounding, "saturate", 5, 1)


def test_numba_float16_and_nan_error() -> None:
    x = np.linspace(-9, 9, 301).astype(np.float16)
    fmt = fxp.Fixed(8, 3)
    assert fxp.quantize(x, fmt, backend="numba").tobytes() == fxp.quantize(x, fmt, backend="numpy").tobytes()
    x[[5, 9]] = np.nan
    for backend in ("numpy", "numba"):
        with pytest.raises(ValueError, match=r"2 NaN value\(s\), the first at index \(5,\)"):
            fxp.quantize(x, fmt, backend=backend)
        with pytest.raises(ValueError, match="infinite"):
            fxp.quantize(np.array([1.0, np.inf]), fmt, overflow="wrap", backend=backend)


def test_auto_backend_choice() -> None:
    small, large = np.zeros(10), np.zeros(_backend.NUMBA_THRESHOLD)
    assert _backend._choose_backend("auto", small) == "numpy"
    assert _backend._choose_backend("auto", large) == "numba"
    assert _backend._choose_backend("numpy", large) == "numpy"
    fixed = _backend.FIXED_NUMBA_THRESHOLD
    assert _backend._choose_backend("auto", np.zeros(fixed), fixed) == "numba"
    assert _backend._choose_backend("auto", np.zeros(fixed - 1), fixed) == "numpy"


_CUDASIM_SCRIPT = textwrap.dedent("""
    import numpy as np
    import fixedpoint as fxp
    from fixedpoint._stats import BLOCK
    rng = np.random.default_rng(0)
    specials = [np.nan, np.inf, -np.inf, 0.0, -0.0, 5e-324, -5e-324, 1e300, -1e300]
    checked = 0
    for fmt, dtype in [(fxp.Fixed(12, 4), np.float64), (fxp.Fixed(8, 2, False), np.float32),
                       (fxp.Fixed(40, -5), np.float64)]:
        x = (rng.normal(size=64) * max(fmt.max, 1.0) * 1.5).astype(dtype)
        x[::5] = (np.round(x[::5] / fmt.step) + 0.5) * fmt.step
        x[:len(specials)] = specials
        for rounding in fxp.ROUNDING_MODES:
            for overflow in ("saturate", "wrap"):
                if overflow == "wrap":
                    x[np.isinf(x)] = 0
                for as_raw in (False, True):
                    f = fxp.to_raw if as_raw else fxp.quantize
                    if not as_raw and fmt.word > np.finfo(dtype).nmant + 1:
                        continue
                    s1, s2 = fxp.QuantStats(), fxp.QuantStats()
                    kw = dict(seed=11, offset=3, nan="zero")
                    a = f(x, fmt, rounding, overflow, backend="numpy", stats=s1, **kw)
                    b = f(x, fmt, rounding, overflow, backend="cuda", stats=s2, **kw)
                    assert a.dtype == b.dtype and a.tobytes() == b.tobytes(), (fmt, rounding, overflow)
                    assert s1 == s2, (s1, s2)
                    checked += 1
    x = rng.normal(size=BLOCK + 40) * 100  # two error-sum blocks
    s1, s2 = fxp.QuantStats(), fxp.QuantStats()
    a = fxp.quantize(x, fxp.Fixed(10, 2), "stochastic", seed=1, stats=s1, backend="numpy")
    b = fxp.quantize(x, fxp.Fixed(10, 2), "stochastic", seed=1, stats=s2, backend="cuda")
    assert a.tobytes() == b.tobytes() and s1 == s2
    print("checked", checked + 1)
""")


def test_cuda_kernels_under_simulator_equal_numpy() -> None:
    env = dict(os.environ, NUMBA_ENABLE_CUDASIM="1", PYTHONWARNINGS="ignore")
    done = subprocess.run([sys.executable, "-c", _CUDASIM_SCRIPT], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "checked 73" in done.stdout


def _cupy():
    cupy = pytest.importorskip("cupy")
    try:
        if cupy.cuda.runtime.getDeviceCount() < 1:
            pytest.skip("no CUDA device")
    except cupy.cuda.runtime.CUDARuntimeError:
        pytest.skip("no CUDA device")
    return cupy


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_cuda_on_gpu_equals_numpy(dtype) -> None:
    cupy = _cupy()
    fmt = fxp.Fixed(16, 8)
    x = _sample(fmt, 5 * BLOCK + 3, dtype, seed=4)
    for rounding in fxp.ROUNDING_MODES:
        for overflow in ("saturate", "wrap"):
            if overflow == "wrap":
                x[np.isinf(x)] = 0
            s1, s2 = fxp.QuantStats(), fxp.QuantStats()
            kw = dict(seed=21, offset=8, nan="zero", stats=None)
            a = fxp.quantize(x, fmt, rounding, overflow, backend="numpy", **{**kw, "stats": s1})
            b = fxp.quantize(cupy.asarray(x), fmt, rounding, overflow, **{**kw, "stats": s2})
            assert isinstance(b, cupy.ndarray)
            assert a.tobytes() == cupy.asnumpy(b).tobytes() and s1 == s2
            raw = fxp.to_raw(cupy.asarray(x), fmt, rounding, overflow, backend="cuda", **kw)
            assert np.array_equal(cupy.asnumpy(raw), fxp.to_raw(x, fmt, rounding, overflow, **kw))
