"""The CUDA backend: Numba CUDA kernels over CuPy arrays (``__cuda_array_interface__``).

One thread runs ``_fixed_scalar.element_function`` (the scalar functions that the CPU kernels
run) per element, so the bits are identical. Two kernels:

- ``_quantize_kernel`` (no statistics): one element per thread; it counts only NaN and
  infinity-with-wrap (which raise), with an atomic add that runs only for such elements.
  Counting saturated or flushed elements here would cost one atomic add on one address per such
  element (0.2 % of a normal sample flushes at s16.8: 200 000 serialised adds per 100M).
- ``_quantize_stats_kernel``: one thread per lane of each ``_stats.BLOCK`` block; it quantizes
  the lane's elements in order, keeps its counts, maximum error and lane sum in registers (no
  per-element error array), and the block's first lane adds the lane sums in lane order: the
  order of ``_stats.block_sums``, so the statistics equal the CPU's bit for bit. Counts are
  added in shared memory, then once per CUDA block to global memory (integers: any order).

CuPy input runs on CuPy's current stream; the arrays are passed without Numba's per-array
stream synchronisation (same stream: the order is kept). numpy input is copied to the GPU and
the result back (this also runs under the CUDA simulator, ``NUMBA_ENABLE_CUDASIM=1``).
"""
from __future__ import annotations

import numpy as np
from numba import cuda, float64, int64

from . import _fixed_scalar as fs
from ._cuda_launch import THREADS_PER_BLOCK, launch_config
from ._modes import Rounding
from ._stats import BLOCK, LANES
from ._validate import is_cupy_array

_quantize_element = fs.element_function(cuda.jit(device=True))
_LANE_ITEMS = BLOCK // LANES  # elements per lane of a block
_N_COUNTS = fs.N_COUNTS  # a global: a compile-time constant (shared-array shape)
_THREADS = THREADS_PER_BLOCK  # shared-memory rows of the statistics kernel (>= its threads)


@cuda.jit
def _quantize_kernel(x, out, to_float, mode, wrap, scale, modulus, inv_modulus, lo, hi, raw_min,
                     raw_max, mask, step, key, counter0, k, kpow, counts):
    i = cuda.grid(1)
    if i >= x.size:
        return
    xv = np.float64(x[i])
    raw, status = _quantize_element(xv, counter0 + np.uint64(i), mode, wrap, scale, modulus,
                                    inv_modulus, lo, hi, raw_min, raw_max, mask, key,
                                    np.uint64(64 - k), kpow)
    if to_float:
        out[i] = np.float64(raw) * step
    else:
        out[i] = raw
    if status >= fs.ST_NAN:  # NaN (slot 3) or infinity with wrap (slot 4): rare, raises
        cuda.atomic.add(counts, 3 if status == fs.ST_NAN else 4, 1)


@cuda.jit
def _quantize_stats_kernel(x, out, to_float, mode, wrap, scale, modulus, inv_modulus, lo, hi,
                           raw_min, raw_max, mask, step, key, counter0, k, kpow, counts, err_max,
                           err_sum):
    tid = cuda.threadIdx.x
    t = cuda.grid(1)
    b = t // LANES  # the stats block of this thread
    lane = t % LANES
    block_counts = cuda.shared.array(_N_COUNTS, int64)
    lane_sum = cuda.shared.array(_THREADS, float64)
    lane_max = cuda.shared.array(_THREADS, float64)
    if tid < _N_COUNTS:
        block_counts[tid] = 0
    cuda.syncthreads()
    c0 = c1 = c2 = c3 = c4 = np.int64(0)
    e_sum = 0.0
    e_max = 0.0
    start = b * BLOCK + lane
    items = (x.size - start + LANES - 1) // LANES  # this lane's elements
    if items > _LANE_ITEMS:  # noqa: PLR1730 (min()/max() fail for CUDA: see fs)
        items = _LANE_ITEMS
    for j in range(items):
        i = start + j * LANES
        xv = np.float64(x[i])
        raw, status = _quantize_element(xv, counter0 + np.uint64(i), mode, wrap, scale,
                                        modulus, inv_modulus, lo, hi, raw_min, raw_max, mask,
                                        key, np.uint64(64 - k), kpow)
        value = np.float64(raw) * step
        if to_float:
            out[i] = value
        else:
            out[i] = raw
        e = 0.0 if status == fs.ST_NAN else abs(value - xv)
        e_sum += e
        if e > e_max:  # noqa: PLR1730
            e_max = e
        c0 += status == fs.ST_SATURATED
        c1 += status == fs.ST_WRAPPED
        c2 += status == fs.ST_FLUSHED
        c3 += status == fs.ST_NAN
        c4 += status == fs.ST_INF_WRAP
    lane_sum[tid] = e_sum
    lane_max[tid] = e_max
    if c0 | c1 | c2 | c3 | c4:
        cuda.atomic.add(block_counts, 0, c0)
        cuda.atomic.add(block_counts, 1, c1)
        cuda.atomic.add(block_counts, 2, c2)
        cuda.atomic.add(block_counts, 3, c3)
        cuda.atomic.add(block_counts, 4, c4)
    cuda.syncthreads()
    if tid < _N_COUNTS and block_counts[tid]:
        cuda.atomic.add(counts, tid, block_counts[tid])
    if lane == 0 and b < err_sum.size:
        s = 0.0
        m = 0.0
        for q in range(tid, tid + LANES):  # lane order, as _stats.block_sums
            s += lane_sum[q]
            if lane_max[q] > m:  # noqa: PLR1730
                m = lane_max[q]
        err_sum[b] = s
        err_max[b] = m


def _launch(kernel, config, args, on_device: bool) -> None:
    """Launch ``kernel[config](*args)``; for CuPy arrays on CuPy's current stream, wrapping them
    without Numba's stream synchronisation (``cuda.as_cuda_array(a, sync=False)``)."""
    if not on_device:
        kernel[config](*args)
        return
    import cupy

    args = tuple(cuda.as_cuda_array(a, sync=False) if is_cupy_array(a) else a for a in args)
    ptr = cupy.cuda.get_current_stream().ptr
    if ptr == 0:  # the legacy default stream, Numba's default too
        kernel[config](*args)
    else:
        kernel[config + (cuda.external_stream(ptr),)](*args)


def quantize_flat(x, p: fs.Params, seed: int, offset: int, out_dtype, want_errors: bool):
    """Backend entry point, as ``_fixed_oracle.quantize_flat``; CuPy in, CuPy out (numpy: copied).

    The one host synchronisation is the read of the five counts (NaN must raise). An unknown
    rounding code raises ValueError here (a kernel cannot report it)."""
    Rounding(p.mode)
    if not cuda.is_available():
        raise RuntimeError("backend='cuda' needs a CUDA GPU (numba.cuda.is_available() is False)")
    out_dtype = np.dtype(out_dtype)
    kernel_dtype = np.float32 if out_dtype == np.float16 else out_dtype
    on_device = is_cupy_array(x)
    nblocks = -(-x.size // BLOCK) if want_errors else 0
    if on_device:
        import cupy as xp

        xd = x.astype(xp.float32) if x.dtype == np.float16 else x
        out = xp.empty(x.size, dtype=kernel_dtype)
        counts = xp.zeros(fs.N_COUNTS, dtype=xp.int64)
        err_max, err_sum = xp.zeros(nblocks), xp.zeros(nblocks)
    else:
        xd = cuda.to_device(x.astype(np.float32) if x.dtype == np.float16 else x)
        out = cuda.device_array(x.size, dtype=kernel_dtype)
        counts = cuda.to_device(np.zeros(fs.N_COUNTS, dtype=np.int64))
        err_max, err_sum = (cuda.to_device(np.zeros(nblocks)) for _ in range(2))
    args = (xd, out, out.dtype.kind == "f", p.mode, p.wrap, p.scale, p.modulus, p.inv_modulus, p.lo,
            p.hi, p.raw_min, p.raw_max, p.mask, p.step, p.key, p.counter0, p.k, p.kpow, counts)
    if x.size and want_errors:
        blocks, threads = launch_config(nblocks * LANES)  # threads: whole warps, <= _THREADS
        _launch(_quantize_stats_kernel, (blocks, threads), args + (err_max, err_sum), on_device)
    elif x.size:
        _launch(_quantize_kernel, launch_config(x.size), args, on_device)
    host_counts = counts.get() if on_device else counts.copy_to_host()
    if on_device:
        out = out.astype(out_dtype, copy=False)
    else:
        out = out.copy_to_host().astype(out_dtype, copy=False)
    if not want_errors:
        return out, host_counts, 0.0, None
    if on_device:
        max_error, sums = float(err_max.max()) if nblocks else 0.0, err_sum.get()
    else:
        max_error, sums = float(err_max.copy_to_host().max(initial=0.0)), err_sum.copy_to_host()
    return out, host_counts, max_error, sums
