"""The CuPy branches of fixedpoint and hwsim without a GPU: a stand-in ``cupy`` package
(tests/_fake_cupy: numpy arrays of a subclass whose module is ``cupy``) under the CUDA simulator.

It checks the Python side of every GPU path (dispatch, allocation, the kernels' arguments, the
results staying "on the device", checkpoints in numpy) against the numpy/Numba paths, bit for
bit: quantize with and without statistics, FixedArray and matmul (GEMM, limbs, MAC loop, cast),
and hwsim training with ``xp="cupy"`` in exact mode. It cannot check CuPy's own API or the
compiled kernels (test_kernel_parts.py compiles them to PTX; the gpu-marked tests run them).
"""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

_SCRIPT = textwrap.dedent("""
    import tempfile
    import numpy as np
    from numba import cuda
    cuda.as_cuda_array = lambda a, sync=True: a  # the simulator has neither; CuPy arrays need them
    import cupy
    import fixedpoint as fxp
    import hwsim
    from hwsim._checkpoint import load
    from tests.hwsim._synthetic import synthetic_dataset

    checked = 0
    rng = np.random.default_rng(0)
    for fmt in (fxp.Fixed(8, 3), fxp.Fixed(6, -1, False)):
        x = (rng.standard_normal(40) * fmt.max).astype(np.float32)
        x[:3] = [np.nan, 0.0, fmt.step / 2]
        for rounding in fxp.ROUNDING_MODES:
            for overflow in ("saturate", "wrap"):
                for stats in (None, fxp.QuantStats()):
                    kw = dict(seed=3, offset=5, nan="zero")
                    s1 = None if stats is None else fxp.QuantStats()
                    want = fxp.quantize(x, fmt, rounding, overflow, backend="numpy", stats=s1, **kw)
                    got = fxp.quantize(cupy.asarray(x), fmt, rounding, overflow, stats=stats, **kw)
                    assert isinstance(got, cupy.ndarray) and got.tobytes() == want.tobytes()
                    assert s1 == stats
                    checked += 1
    try:
        fxp.quantize(cupy.asarray(np.array([1.0, np.nan])), fxp.Fixed(8, 3))
        raise AssertionError("NaN did not raise")
    except ValueError:
        checked += 1

    def pair(shape, fmt, seed):
        v = np.random.default_rng(seed).standard_normal(shape) * fmt.max / 3
        host, dev = fxp.FixedArray.from_float(v, fmt), fxp.FixedArray.from_float(cupy.asarray(v), fmt)
        assert isinstance(dev.raw, cupy.ndarray)
        return host, dev

    def same(dev, host):
        assert isinstance(dev.raw, cupy.ndarray) and dev.fmt == host.fmt
        assert np.array_equal(np.asarray(dev.raw), host.raw)

    a, ga = pair((3, 6), fxp.Fixed(12, 4), 1)
    b, gb = pair((6, 2), fxp.Fixed(30, 6), 2)
    same(ga @ gb, a @ b)
    same(ga + 0.5, a + 0.5)
    same(ga.cast(fxp.Fixed(6, 1), "stochastic", seed=2), a.cast(fxp.Fixed(6, 1), "stochastic", seed=2))
    for acc, acc_overflow, rounding in ((fxp.Fixed(40, 10), "wrap", "nearest_even"),  # GEMM
                                        (fxp.Fixed(60, 10), "wrap", "floor"),  # limbs (42-bit terms)
                                        (fxp.Fixed(20, 6), "wrap", "stochastic"),  # MAC, rounding
                                        (fxp.Fixed(16, 10), "saturate", "ceil")):  # MAC, saturate
        kw = dict(acc=acc, out=fxp.Fixed(16, 4), rounding=rounding, acc_overflow=acc_overflow, seed=1)
        same(fxp.matmul(ga, gb, **kw), fxp.matmul(a, b, **kw))
        s1, s2 = fxp.QuantStats(), fxp.QuantStats()
        same(fxp.matmul(ga, gb, stats=s2, **kw), fxp.matmul(a, b, stats=s1, **kw))
        assert s1 == s2
        checked += 1

    data = synthetic_dataset(4, 24, 16, seed=3)
    p = hwsim.Precision.from_flags("fixed16", seed=4, mode="exact")
    runs = {}
    for xp in ("numpy", "cupy"):
        model = hwsim.build_model("mlp:4-3-3", input_shape=(4,), num_classes=3, seed=1)
        out = tempfile.mkdtemp()
        m = hwsim.train(model, data, p, epochs=1, batch=8, lr=3e-2, seed=2, progress=False, out=out, xp=xp)
        assert (type(model.parameters()[0][2]).__module__.split(".")[0] == "cupy") == (xp == "cupy")
        runs[xp] = (model.state_dict(), load(out), m)
    (w1, ck1, m1), (w2, ck2, m2) = runs["numpy"], runs["cupy"]
    for k in w1:
        assert type(w2[k]) is np.ndarray and w1[k].tobytes() == w2[k].tobytes(), k
    for d1, d2 in zip(ck1[:2], ck2[:2]):
        assert d1.keys() == d2.keys()
        for k in d1:
            assert (type(d2[k]) is np.ndarray and d1[k].dtype == d2[k].dtype
                    and d1[k].tobytes() == d2[k].tobytes())
    assert m1["train_loss"] == m2["train_loss"]
    checked += 1
    print("checked", checked)
""")


def test_cupy_branches_under_simulator_equal_numpy() -> None:
    env = dict(os.environ, NUMBA_ENABLE_CUDASIM="1", PYTHONWARNINGS="ignore",
               PYTHONPATH=os.pathsep.join([str(ROOT / "tests" / "_fake_cupy"), str(ROOT)]))
    done = subprocess.run([sys.executable, "-c", _SCRIPT], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stderr[-4000:]
    assert "checked 54" in done.stdout, done.stdout
