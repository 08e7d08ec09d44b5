"""``out=`` of `quantize`, `Quantizer` and `to_raw`: the bits and statistics of the call without it,
written into ``out`` (any allowed dtype, any strides, ``out is x`` included) on every backend, and
one-line errors for a bad ``out`` raised before anything is written."""
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
from fixedpoint.testing import formats, values

ROOT = Path(__file__).resolve().parents[2]
FLOATS = (np.dtype(np.float16), np.dtype(np.float32), np.dtype(np.float64))
#: How ``out`` is made: a new C-contiguous array, x itself, another dtype, a strided view, F order.
OUT_KINDS = ("fresh", "alias", "other dtype", "strided", "fortran")


def _fixed_holds(fmt: fxp.Fixed, dtype: np.dtype) -> bool:
    try:
        fxp.from_raw(np.zeros(1, np.int64), fmt, dtype)  # quantize's own check of a result dtype
    except ValueError:
        return False
    return True


def _make_out(kind: str, x: np.ndarray, dtypes: list, data) -> np.ndarray:
    """An ``out`` for ``x`` (filled with a sentinel, so that unwritten elements show)."""
    if kind == "alias":
        return x
    dtype = x.dtype
    if kind == "other dtype":
        dtype = data.draw(st.sampled_from([d for d in dtypes if d != x.dtype] or [x.dtype]))
    if kind == "strided":
        out = np.full((2 * x.size,), 7.0, dtype)[::2].reshape(x.shape) if x.ndim == 1 else \
            np.full(x.shape + (2,), 7.0, dtype)[..., 0]
    elif kind == "fortran":
        out = np.full(x.shape, 7.0, dtype, order="F")
    else:
        out = np.full(x.shape, 7.0, dtype)
    return out


def _assert_written(got, out, want) -> None:
    assert got is out
    assert out.tobytes() == np.asarray(want).astype(out.dtype).tobytes()


@pytest.mark.parametrize("backend", ["numpy", "numba", "auto"])
@pytest.mark.parametrize("overflow", ["saturate", "wrap"])
@pytest.mark.parametrize("rounding", fxp.ROUNDING_MODES)
@given(fmt=formats(max_word=53), data=st.data(), seed=st.integers(0, 2**64 - 1),
       offset=st.integers(0, 2**64 - 1), kind=st.sampled_from(OUT_KINDS),
       bound=st.booleans(), with_stats=st.booleans())
@settings(max_examples=12, deadline=None)
def test_fixed_out_equals_the_call_without_it(rounding, overflow, backend, fmt, data, seed, offset,
                                              kind, bound, with_stats) -> None:
    dtypes = [d for d in FLOATS if _fixed_holds(fmt, d)]
    if not dtypes:
        return
    dtype = data.draw(st.sampled_from(dtypes))
    width = {2: 16, 4: 32, 8: 64}[dtype.itemsize]
    strategy = values(fmt, allow_nan=True, allow_infinity=overflow == "saturate",
                      width=max(width, 32))
    x = np.array(data.draw(st.lists(strategy, min_size=1, max_size=30)), dtype=np.float64)
    with np.errstate(over="ignore"):
        x = x.astype(dtype)  # float16: values rounded to float16 (still a valid input) ...
    if overflow == "wrap":
        x[np.isinf(x)] = 0.0  # ... or overflowing to inf, which wrap refuses
    x = x.reshape(data.draw(st.sampled_from([(-1,), (-1, 1), (1, -1)])))
    if x.size == 1 and data.draw(st.booleans()):
        x = x.reshape(())
    if kind == "fortran" and x.ndim == 2:
        x = np.asfortranarray(np.repeat(x, 2, axis=1))
    kw = dict(seed=seed, offset=offset, backend=backend, nan="zero")
    s1 = fxp.QuantStats() if with_stats else None
    s2 = fxp.QuantStats() if with_stats else None
    want = fxp.quantize(x.copy(), fmt, rounding, overflow, stats=s1, **kw)
    out = _make_out(kind, x, dtypes, data)
    if bound:
        q = fxp.Quantizer(fmt, rounding, overflow, nan="zero")
        got = q(x, out=out, stats=s2, **{k: v for k, v in kw.items() if k != "nan"})
    else:
        got = fxp.quantize(x, fmt, rounding, overflow, out=out, stats=s2, **kw)
    _assert_written(got, out, want)
    assert s1 == s2


@pytest.mark.parametrize("rounding", fxp.ROUNDING_MODES)
@given(fmt=formats(max_word=62), data=st.data(), seed=st.integers(0, 2**64 - 1),
       kind=st.sampled_from(["fresh", "strided"]), backend=st.sampled_from(["numpy", "numba"]))
@settings(max_examples=15, deadline=None)
def test_to_raw_out(rounding, fmt, data, seed, kind, backend) -> None:
    x = np.array(data.draw(st.lists(values(fmt, allow_nan=True), min_size=1, max_size=20)))
    want = fxp.to_raw(x, fmt, rounding, seed=seed, offset=3, nan="zero", backend=backend)
    out = np.full(2 * x.size, -1, np.int64)[::2] if kind == "strided" else np.empty(x.size, np.int64)
    got = fxp.to_raw(x, fmt, rounding, seed=seed, offset=3, nan="zero", backend=backend, out=out)
    _assert_written(got, out, want)


_FLOAT_FORMATS = [fxp.FP8_E4M3, fxp.FP8_E5M2, fxp.BF16, fxp.FP16, fxp.FP6_E3M2, fxp.FP4_E2M1]


@pytest.mark.parametrize("backend", ["numpy", "numba"])
@pytest.mark.parametrize("rounding", fxp.ROUNDING_MODES)
@given(fmt=st.sampled_from(_FLOAT_FORMATS), data=st.data(), seed=st.integers(0, 2**64 - 1),
       offset=st.integers(0, 2**64 - 1), kind=st.sampled_from(OUT_KINDS), bound=st.booleans(),
       with_stats=st.booleans())
@settings(max_examples=12, deadline=None)
def test_float_format_out_equals_the_call_without_it(rounding, backend, fmt, data, seed, offset, kind,
                                                     bound, with_stats) -> None:
    dtypes = [d for d in FLOATS if fmt.fits(d)]
    dtype = data.draw(st.sampled_from(dtypes))
    overflow = data.draw(st.sampled_from(
        ["saturate"] + ["inf"] * fmt.has_inf + ["nan"] * fmt.has_nan))
    nan = data.draw(st.sampled_from(["zero"] + ["propagate"] * fmt.has_nan))
    x = np.array(data.draw(st.lists(st.floats(width=32), min_size=1, max_size=30)))
    x = (x * data.draw(st.sampled_from([1.0, 1e-3, 1e-40]))).astype(dtype)
    x = x.reshape(data.draw(st.sampled_from([(-1,), (-1, 1), (1, -1)])))
    kw = dict(seed=seed, offset=offset, backend=backend)
    s1 = fxp.QuantStats() if with_stats else None
    s2 = fxp.QuantStats() if with_stats else None
    want = fxp.quantize(x.copy(), fmt, rounding, overflow, stats=s1, nan=nan, **kw)
    out = _make_out(kind, x, dtypes, data)
    if bound:
        got = fxp.Quantizer(fmt, rounding, overflow, nan=nan)(x, out=out, stats=s2, **kw)
    else:
        got = fxp.quantize(x, fmt, rounding, overflow, out=out, stats=s2, nan=nan, **kw)
    _assert_written(got, out, want)
    assert s1 == s2


def test_large_arrays_and_in_place_rounding() -> None:
    """Many blocks (the parallel kernels, a NaN block redone element by element): ``out`` given
    directly to the kernel, and ``out is x``, give the bits of the call without ``out``."""
    x = np.random.default_rng(3).normal(0.0, 64.0, 200_003).astype(np.float32)
    x[70_000] = np.nan
    for fmt in (fxp.Fixed(16, 8), fxp.FP8_E5M2):
        for stats in (None, fxp.QuantStats()):
            s = None if stats is None else fxp.QuantStats()
            want = fxp.quantize(x, fmt, nan="zero", stats=s)
            out = np.empty_like(x)
            _assert_written(fxp.quantize(x, fmt, nan="zero", out=out, stats=stats), out, want)
            assert s == stats
            inplace = x.copy()
            _assert_written(fxp.quantize(inplace, fmt, nan="zero", out=inplace), inplace, want)


def test_zero_d_input_returns_out() -> None:
    out = np.zeros(())
    assert fxp.quantize(1.03, fxp.Fixed(8, 4), out=out) is out and out[()] == 1.0
    assert fxp.quantize(np.float64(1.03), fxp.FP8_E4M3, out=out) is out and out[()] == 1.0


@pytest.mark.parametrize("call", ["quantize", "Quantizer", "to_raw", "float", "float Quantizer"])
@pytest.mark.parametrize("bad, error, message", [
    ("shape (5,)", ValueError, r"^out must have x's shape \(2, 3\), got shape \(5,\)$"),
    ("shape (3, 2)", ValueError, r"^out must have x's shape \(2, 3\), got shape \(3, 2\)$"),
    ("list", TypeError, r"^out must be a numpy array as x is, got list$"),
    ("int32", TypeError, r"^out must have a dtype that holds every (value|raw integer) of \S+ exactly \("
                         r"(float16, float32, float64|int64)\), got int32$"),
    ("read-only", ValueError, r"^out must be writeable, got a read-only array$"),
])
def test_bad_out_raises_before_writing(call, bad, error, message) -> None:
    x = np.linspace(-3, 3, 6).reshape(2, 3)
    dtype = np.int64 if call == "to_raw" else np.float64
    if bad == "list":
        bad = [[7] * 3] * 2
    elif bad.startswith("shape"):
        bad = np.full((5,) if bad == "shape (5,)" else (3, 2), 7, dtype)
    else:
        bad = np.full((2, 3), 7, np.int32 if bad == "int32" else dtype)
        bad.flags.writeable = bad.dtype == np.int32
    before = np.array(bad, copy=True)
    fns = {"quantize": lambda: fxp.quantize(x, fxp.Fixed(8, 4), out=bad),
           "Quantizer": lambda: fxp.Quantizer(fxp.Fixed(8, 4))(x, out=bad),
           "to_raw": lambda: fxp.to_raw(x, fxp.Fixed(8, 4), out=bad),
           "float": lambda: fxp.quantize(x, fxp.FP8_E4M3, out=bad),
           "float Quantizer": lambda: fxp.Quantizer(fxp.FP8_E4M3)(x, out=bad)}
    with pytest.raises(error, match=message):
        fns[call]()
    assert np.array_equal(np.asarray(bad), before)


def test_dtype_messages_name_what_is_allowed() -> None:
    x = np.zeros(3, np.float32)
    with pytest.raises(TypeError, match=r"^out must have a dtype that holds every value of s16.8 "
                                        r"exactly \(float32, float64\), got float16$"):
        fxp.quantize(x, fxp.Fixed(16, 8), out=np.zeros(3, np.float16))
    with pytest.raises(TypeError, match=r"^out must have a dtype that holds every value of e8m7 "
                                        r"exactly \(float32, float64\), got float16$"):
        fxp.quantize(x, fxp.BF16, out=np.zeros(3, np.float16))
    out = np.zeros(3, np.dtype(np.float64).newbyteorder(">"))  # the other byte order is allowed
    assert fxp.quantize(x + 0.3, fxp.Fixed(16, 8), out=out) is out
    assert out.tolist() == [77 / 256] * 3


def test_an_error_while_rounding_keeps_an_aliased_x() -> None:
    cases = ((fxp.Fixed(8, 4), "saturate"), (fxp.Fixed(8, 4), "wrap"), (fxp.FP8_E4M3, "saturate"))
    for fmt, overflow in cases:
        x = np.array([0.3, np.nan, 1.7] * 50_000, np.float32)
        before = x.copy()
        with pytest.raises(ValueError, match="NaN"):
            fxp.quantize(x, fmt, overflow=overflow, out=x)
        assert x.tobytes() == before.tobytes()


_CUDASIM_SCRIPT = textwrap.dedent("""
    import numpy as np
    from numba import cuda
    cuda.as_cuda_array = lambda a, sync=True: a  # the simulator has neither; CuPy arrays need them
    import cupy  # tests/_fake_cupy: numpy arrays whose module is "cupy"
    import fixedpoint as fxp

    rng = np.random.default_rng(0)
    checked = 0
    for fmt in (fxp.Fixed(8, 3), fxp.FP8_E4M3):
        x = (rng.standard_normal(40) * 9).astype(np.float32).reshape(4, 10)
        x[0, :3] = [np.nan, 0.0, 2.0**-5]
        for rounding in fxp.ROUNDING_MODES:
            for stats in (False, True):
                kw = dict(seed=3, offset=5, nan="zero")
                s1, s2 = (fxp.QuantStats(), fxp.QuantStats()) if stats else (None, None)
                want = fxp.quantize(x, fmt, rounding, backend="numpy", stats=s1, **kw)
                for host in (True, False):  # numpy x and out (copied to the GPU), CuPy x and out
                    xp = np if host else cupy
                    for kind in ("fresh", "alias", "strided float64"):
                        xs = xp.asarray(x.copy())
                        out = {"fresh": lambda: xp.empty(x.shape, np.float32), "alias": lambda: xs,
                               "strided float64": lambda: xp.empty((4, 20), np.float64)[:, ::2]}[kind]()
                        s = fxp.QuantStats() if stats else None
                        got = fxp.quantize(xs, fmt, rounding, backend="cuda", stats=s, out=out, **kw)
                        assert got is out and type(got) is type(out)
                        assert np.asarray(out).astype(np.float64).tobytes() == \\
                            want.astype(np.float64).tobytes(), (fmt, rounding, host, kind)
                        assert s == s1
                        checked += 1
    for xs, out in ((np.zeros(3), cupy.zeros(3)), (cupy.zeros(3), np.zeros(3))):
        for fmt in (fxp.Fixed(8, 3), fxp.FP8_E4M3):
            try:
                fxp.quantize(xs, fmt, backend="cuda", out=out)
                raise AssertionError("no error")
            except TypeError as e:
                assert str(e).startswith("out must be a "), e
                checked += 1
    print("checked", checked)
""")


def test_cuda_backend_out_under_simulator() -> None:
    """backend="cuda" (simulated) with numpy arrays, and with CuPy arrays (tests/_fake_cupy)."""
    env = dict(os.environ, NUMBA_ENABLE_CUDASIM="1", PYTHONWARNINGS="ignore",
               PYTHONPATH=os.pathsep.join([str(ROOT / "tests" / "_fake_cupy"), str(ROOT)]))
    done = subprocess.run([sys.executable, "-c", _CUDASIM_SCRIPT], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stderr[-4000:]
    assert "checked 148" in done.stdout, done.stdout
