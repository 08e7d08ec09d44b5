"""The CUDA kernels of ``_matmul_cuda`` (cast, MAC loop, matmul epilogue) against the Numba CPU
kernels, under the CUDA simulator (``NUMBA_ENABLE_CUDASIM=1``, no GPU needed; numpy arrays are
copied to the simulated device). The real-GPU check is test_gpu_cupy.py."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

_SCRIPT = textwrap.dedent("""
    import numpy as np
    import fixedpoint as fxp
    from fixedpoint import _matmul, _matmul_cuda
    from fixedpoint._shift_round import kernel_args, rescale_numba
    rng = np.random.default_rng(0)
    checked = 0
    raw = rng.integers(-(1 << 20), 1 << 20, 40)
    raw[:4] = [0, -1, (1 << 20) - 1, -(1 << 20)]
    for rounding in fxp.ROUNDING_MODES:
        for overflow in ("saturate", "wrap"):
            for shift, fmt in ((5, fxp.Fixed(12, 3)), (0, fxp.Fixed(18, 0)), (-3, fxp.Fixed(22, 6)),
                               (70, fxp.Fixed(4, 0)), (63, fxp.Fixed(8, 1))):
                args = kernel_args(rounding, overflow, 7, 3, 6 if rounding == "stochastic" else None, fmt)
                want = rescale_numba(raw, shift, fmt, rounding, overflow, seed=7, offset=3,
                                     sr_bits=6 if rounding == "stochastic" else None)
                got = _matmul_cuda.rescale_cuda(raw, shift, *args)
                assert np.array_equal(got, want), (rounding, overflow, shift)
                checked += 1
    a = rng.integers(-300, 300, (5, 9))
    b = rng.integers(-300, 300, (9, 4))
    for rounding in fxp.ROUNDING_MODES:
        for acc_overflow in ("saturate", "wrap"):
            for shift, acc in ((0, fxp.Fixed(16, 4)), (3, fxp.Fixed(20, 1)), (7, fxp.Fixed(12, 0))):
                args = kernel_args(rounding, acc_overflow, 5, 11, None, acc)
                want = _matmul._mac(a, b, shift, acc, rounding, acc_overflow, 5, 11, None)
                got = _matmul_cuda.mac_cuda(a, b, shift, *args)
                assert np.array_equal(got, want), (rounding, acc_overflow, shift)
                checked += 1
    sums = rng.integers(-(1 << 30), 1 << 30, (3, 7))
    acc, out = fxp.Fixed(28, 12), fxp.Fixed(10, 4)
    for rounding in fxp.ROUNDING_MODES:
        for overflow in ("saturate", "wrap"):
            for left, s in ((0, sums), (2, sums), (0, sums.astype(np.float64))):
                want = _matmul._finish(s, left, acc, out, rounding, overflow, 9, 100, None)
                args = kernel_args(rounding, overflow, 9, 100, None, out)
                got = _matmul_cuda.finish_cuda(s, left, acc.raw_min, acc.raw_max, acc.frac - out.frac, *args)
                assert np.array_equal(got, want), (rounding, overflow, left)
                checked += 1
    print("checked", checked)
""")


def test_matmul_cuda_kernels_under_simulator_equal_numba() -> None:
    env = dict(os.environ, NUMBA_ENABLE_CUDASIM="1", PYTHONWARNINGS="ignore")
    done = subprocess.run([sys.executable, "-c", _SCRIPT], cwd=ROOT, env=env, capture_output=True,
                          check=False, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "checked 132" in done.stdout, done.stdout
