"""The CUDA backend: Numba CUDA kernels over CuPy arrays (``__cuda_array_interface__``).

One thread per element runs ``_fixed_scalar.element_function`` (the scalar functions that the
CPU kernels run), so the bits are identical. Status counts use atomic adds (order-free);
per-element errors are summed by a second kernel, one thread per ``_stats.BLOCK`` block, in the
lane order of ``_stats.block_sums``, as on the CPU.
numpy input is copied to the GPU and the result back (this also runs under the CUDA simulator,
``NUMBA_ENABLE_CUDASIM=1``, which the tests use).
"""
from __future__ import annotations

import numpy as np
from numba import cuda

from . import _fixed_scalar as fs
from ._cuda_launch import launch_config
from ._stats import BLOCK, LANES
from ._validate import is_cupy_array

_quantize_element = fs.element_function(cuda.jit(device=True))


@cuda.jit
def _quantize_kernel(x, out, to_float, want_errors, mode, wrap, scale, modulus, inv_modulus, lo, hi, raw_min,
                     raw_max, mask, step, key, counter0, k, kpow, counts, errors):
    i = cuda.grid(1)
    if i >= x.size:
        return
    xv = np.float64(x[i])
    raw, status = _quantize_element(xv, counter0 + np.uint64(i), mode, wrap, scale, modulus,
                                    inv_modulus, lo, hi, raw_min, raw_max, mask, key,
                                    np.uint64(64 - k), kpow)
    value = np.float64(raw) * step
    if to_float:
        out[i] = value
    else:
        out[i] = raw
    if want_errors:
        errors[i] = 0.0 if status == fs.ST_NAN else abs(value - xv)
    if status != 0:
        slot = 0
        while status > 1:
            status >>= 1
            slot += 1
        cuda.atomic.add(counts, slot, 1)


@cuda.jit
def _block_errors(errors, err_max, err_sum):
    b = cuda.grid(1)
    if b >= err_sum.size:
        return
    e_max = 0.0
    e_sum = 0.0
    end = (b + 1) * BLOCK
    if end > errors.size:  # min(): see _fixed_scalar's module doc
        end = errors.size
    for lane in range(LANES):
        lane_sum = 0.0
        for i in range(b * BLOCK + lane, end, LANES):
            e = errors[i]
            lane_sum += e
            if e > e_max:
                e_max = e
        e_sum += lane_sum
    err_max[b] = e_max
    err_sum[b] = e_sum


def quantize_flat(x, p: fs.Params, seed: int, offset: int, out_dtype, want_errors: bool):
    """Backend entry point, as ``_oracle.quantize_flat``; CuPy in, CuPy out (numpy: copied)."""
    if not cuda.is_available():
        raise RuntimeError("backend='cuda' needs a CUDA GPU (numba.cuda.is_available() is False)")
    out_dtype = np.dtype(out_dtype)
    kernel_dtype = np.float32 if out_dtype == np.float16 else out_dtype
    on_device = is_cupy_array(x)
    if on_device:
        import cupy

        xd = x.astype(cupy.float32) if x.dtype == np.float16 else x
        out = cupy.empty(x.size, dtype=kernel_dtype)
        counts = cupy.zeros(fs.N_COUNTS, dtype=cupy.int64)
        errors = cupy.zeros(x.size if want_errors else 1, dtype=cupy.float64)
    else:
        xd = cuda.to_device(x.astype(np.float32) if x.dtype == np.float16 else x)
        out = cuda.device_array(x.size, dtype=kernel_dtype)
        counts = cuda.to_device(np.zeros(fs.N_COUNTS, dtype=np.int64))
        errors = cuda.to_device(np.zeros(x.size if want_errors else 1))
    if x.size:
        _quantize_kernel[launch_config(x.size)](
            xd, out, out.dtype.kind == "f", want_errors, p.mode, p.wrap, p.scale, p.modulus, p.inv_modulus, p.lo,
            p.hi, p.raw_min, p.raw_max, p.mask, p.step, p.key, p.counter0, p.k, p.kpow, counts,
            errors)
    host_counts = counts.get() if on_device else counts.copy_to_host()
    if on_device:
        out = out.astype(out_dtype, copy=False)
    else:
        out = out.copy_to_host().astype(out_dtype, copy=False)
    if not want_errors:
        return out, host_counts, 0.0, None
    nblocks = -(-x.size // BLOCK)
    err_max = cuda.device_array(nblocks)
    err_sum = cuda.device_array(nblocks)
    if nblocks:
        _block_errors[launch_config(nblocks)](errors, err_max, err_sum)
    return out, host_counts, float(err_max.copy_to_host().max(initial=0.0)), err_sum.copy_to_host()
