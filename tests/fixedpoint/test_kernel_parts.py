"""Parts the kernels are built from: the shared launch configuration, the per-element function
of ``_fixed_scalar`` compiled for the CPU, and every CUDA kernel compiled to PTX (no GPU needed)."""
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
from numba import njit

import fixedpoint as fxp
from fixedpoint import _fixed_scalar as fs
from fixedpoint._counter_rng import seed_key
from fixedpoint._cuda_launch import THREADS_PER_BLOCK, launch_config
from fixedpoint.testing import formats, values

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("n", [0, 1, 31, 32, 33, 255, 256, 257, 1000, 4096, 10**7 + 3])
def test_launch_config_covers_every_item_without_empty_blocks(n) -> None:
    blocks, threads = launch_config(n)
    assert threads % 32 == 0 and 32 <= threads <= THREADS_PER_BLOCK
    assert blocks >= 1 and blocks * threads >= n
    assert (blocks - 1) * threads < max(n, 1)  # the last block holds at least one item
    assert threads == THREADS_PER_BLOCK or blocks == 1


# The per-element function inlined into a cached loop: the form ``_fixed_numba`` can use.
_element = fs.element_function(njit(inline="always"))


@njit(cache=True)
def _element_loop(x, mode, wrap, scale, modulus, inv_modulus, lo, hi, raw_min, raw_max, mask,
                  step, key, counter0, k, kpow):
    raw = np.empty(x.size, np.int64)
    counts = np.zeros(fs.N_COUNTS, np.int64)
    for i in range(x.size):
        raw[i], status = _element(np.float64(x[i]), counter0 + np.uint64(i), mode, wrap, scale,
                                  modulus, inv_modulus, lo, hi, raw_min, raw_max, mask, key,
                                  np.uint64(64 - k), kpow)
        for slot in range(fs.N_COUNTS):
            counts[slot] += (status >> slot) & 1
    return raw, counts


@pytest.mark.parametrize("overflow", ["saturate", "wrap"])
@pytest.mark.parametrize("rounding", fxp.ROUNDING_MODES)
@given(fmt=formats(max_word=62), data=st.data(), seed=st.integers(0, 2**64 - 1),
       offset=st.integers(0, 2**64 - 1), sr_bits=st.sampled_from([None, 1, 7]))
@settings(max_examples=15)
def test_element_function_equals_numpy(rounding, overflow, fmt, data, seed, offset,
                                       sr_bits) -> None:
    sr_bits = sr_bits if rounding == "stochastic" else None
    x = np.array(data.draw(st.lists(values(fmt, allow_nan=True, allow_infinity=overflow == "saturate"),
                                    max_size=20)))
    stats = fxp.QuantStats()
    want = fxp.to_raw(x, fmt, rounding, overflow, seed=seed, offset=offset, sr_bits=sr_bits,
                      nan="zero", backend="numpy", stats=stats)
    k = 53 if sr_bits is None else sr_bits
    p = fs.Params(fxp.ROUNDING_MODES.index(rounding), overflow == "wrap", *fs.format_scalars(fmt),
                  np.uint64(seed_key(seed)), np.uint64((offset + 1) % 2**64), k, 1 << k)
    raw, counts = _element_loop(x, *p)
    assert np.array_equal(raw, want)
    assert counts[:4].tolist() == [stats.saturated, stats.wrapped, stats.flushed_to_zero, stats.nan]
    assert counts[4] == 0  # no infinity with wrap


# Compiles with a stand-in for the current device (compute capability 8.0): NVVM makes the PTX,
# no driver or GPU is involved. The CUDA simulator runs the kernels as Python, so only this
# catches code that Numba's CUDA target refuses (e.g. min/max since Numba 0.66).
_PTX_SCRIPT = textwrap.dedent("""
    import types
    import numba.cuda.dispatcher as dispatcher
    from numba import cuda, types as nt
    dispatcher.get_current_device = lambda: types.SimpleNamespace(compute_capability=(8, 0))
    from fixedpoint import _float_kernels, _extreme, _fixed_cuda, _matmul_cuda
    f64, f32, i64, u64, b1 = nt.float64, nt.float32, nt.int64, nt.uint64, nt.boolean
    def ptx(kernel, *sig):
        assert ".entry" in cuda.compile_ptx(kernel.py_func, sig, cc=(8, 0))[0]
    for xt, ot in [(f64, f64), (f32, f32), (f64, i64), (f32, i64)]:
        head = (xt[::1], ot[::1], b1, i64, b1, f64, f64, f64, f64, f64, i64, i64, i64, f64, u64, u64,
                i64, i64, i64[::1])
        ptx(_fixed_cuda._quantize_kernel, *head)
        ptx(_fixed_cuda._quantize_stats_kernel, *head, f64[::1], f64[::1])
    rescale, mac, finish = _matmul_cuda._kernels()
    tail = (i64, u64, u64, i64, i64, i64, b1)  # mode, key, offset, k, lo, hi, wrap
    ptx(rescale, i64[::1], i64, *tail, i64[::1])
    ptx(mac, i64[:, ::1], i64[:, ::1], i64, *tail, i64[:, ::1])
    for st in (i64, f64):
        ptx(finish, st[::1], i64, i64, i64, i64, *tail, i64[::1])
    for xt in (f64, f32):
        ptx(_float_kernels.float_quantize_cuda_kernel(), xt[::1], xt[::1], nt.int8[::1], b1, i64,
            i64, f64, f64, b1, i64, f64, f64, f64, f64, u64, u64, i64)
        ptx(_extreme.quantizer_cuda_kernel(), i64, xt[::1], xt[::1], f64, f64, b1, u64, u64)
    print("ptx ok")
""")


def test_cuda_kernels_compile_to_ptx() -> None:
    nvvm = pytest.importorskip("numba.cuda.cudadrv.nvvm")
    if not nvvm.is_available():
        pytest.skip("libNVVM not found (no CUDA toolkit)")
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_ENABLE_CUDASIM"}
    done = subprocess.run([sys.executable, "-W", "ignore", "-c", _PTX_SCRIPT], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "ptx ok" in done.stdout
