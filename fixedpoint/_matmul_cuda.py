"""CUDA kernels of the integer paths: `rescale` (``FixedArray.cast``), the saturating / rounding
MAC loop of ``matmul`` and its epilogue, on CuPy int64 arrays.

The kernels run the scalar functions of ``_shift_round`` (``rescale_scalar``,
``fit_word_scalar``), which the Numba CPU kernels run too, so the bits are the same. Those are
CPU ``njit`` functions; `_device_functions` compiles their Python source for the GPU with every
name they call rebound to its GPU version (written without ``min``/``max``, which fail to
compile for CUDA since Numba 0.66). Built on first use (``lru_cache``): importing fixedpoint
compiles nothing. Numpy input is copied to the GPU and back (the CUDA simulator tests use that).
"""
from __future__ import annotations

import functools
import types

import numpy as np
from numba import cuda

from . import _shift_round as sr
from ._counter_rng import scalar_bits
from ._cuda_launch import launch_config
from ._modes import Rounding
from ._validate import is_cupy_array

#: Products are kept in this window inside the MAC loop (as ``_matmul._P_LO``/``_P_HI``).
_P_LO, _P_HI = np.int64(-(1 << 62)), np.int64((1 << 62) - 1)


def _on_gpu(dispatcher, **calls):
    """A CUDA device function from the Python source of the Numba CPU function ``dispatcher``,
    the global names ``calls`` bound to device functions."""
    f = dispatcher.py_func
    source = types.FunctionType(f.__code__, {**f.__globals__, **calls}, f.__name__,
                                f.__defaults__, f.__closure__)
    return cuda.jit(device=True)(source)


@functools.cache
def _device_functions():
    """``(rescale_scalar, fit_word_scalar)`` compiled for the GPU."""
    bias = _on_gpu(sr.bias_terms)
    biased = _on_gpu(sr.round_biased)
    shift = _on_gpu(sr.round_shift_scalar, _scalar_bits=cuda.jit(device=True)(scalar_bits),
                    bias_terms=bias, round_biased=biased)
    fit = _on_gpu(sr.fit_word_scalar)
    return _on_gpu(sr.rescale_scalar, round_shift_scalar=shift, fit_word_scalar=fit), fit


@functools.cache
def _kernels():
    """``(rescale, mac, finish)`` CUDA kernels, one thread per output element."""
    rescale_scalar, fit_word_scalar = _device_functions()

    @cuda.jit
    def rescale(raw, shift, mode, key, offset, k, lo, hi, wrap, out):
        i = cuda.grid(1)
        if i < raw.size:
            out[i] = rescale_scalar(raw[i], shift, mode, key, offset + np.uint64(i + 1), k, lo, hi,
                                    wrap)

    @cuda.jit
    def mac(a, b, shift, mode, key, offset, k, lo, hi, wrap, out):
        """``out[m, n]``: the products ``a[m, k] * b[k, n]`` aligned (rounded) one by one and
        added in order k = 0..K-1, modulo 2**64 (wrap) or clamped after every addition."""
        t = cuda.grid(1)
        M, K = a.shape
        N = b.shape[1]
        if t >= M * N:
            return
        m = t // N
        n = t - m * N
        total = np.int64(0)
        base = offset + np.uint64((m * N + n) * K + 1)
        for kk in range(K):
            p = rescale_scalar(a[m, kk] * b[kk, n], shift, mode, key, base + np.uint64(kk), k,
                               _P_LO, _P_HI, wrap)
            if wrap:
                total = np.int64(np.uint64(total) + np.uint64(p))
            else:
                total = total + p
                total = lo if total < lo else (hi if total > hi else total)  # noqa: FURB136 (min() fails for CUDA)
        out[m, n] = fit_word_scalar(total, lo, hi, wrap)

    @cuda.jit
    def finish(sums, left, acc_lo, acc_hi, shift, mode, key, offset, k, lo, hi, wrap, out):
        """``out = rescale(wrap_acc(sums << left), shift)`` (the matmul epilogue)."""
        i = cuda.grid(1)
        if i < sums.size:
            acc = rescale_scalar(np.int64(sums[i]), -left, mode, key, offset, k, acc_lo, acc_hi,
                                 True)
            out[i] = rescale_scalar(acc, shift, mode, key, offset + np.uint64(i + 1), k, lo, hi,
                                    wrap)

    return rescale, mac, finish


def _run(which: int, n: int, out_shape: tuple, arrays: tuple, scalars: tuple):
    """Run kernel ``which`` of `_kernels` over ``n`` outputs; returns the int64 result (CuPy for
    CuPy input, else numpy through device copies)."""
    kernel = _kernels()[which]
    if is_cupy_array(arrays[0]):
        import cupy

        out = cupy.empty(out_shape, dtype=cupy.int64)
        if n:
            kernel[launch_config(n)](*(cupy.ascontiguousarray(a) for a in arrays), *scalars, out)
        return out
    out = cuda.device_array(out_shape, dtype=np.int64)
    if n:
        kernel[launch_config(n)](*(cuda.to_device(np.ascontiguousarray(a)) for a in arrays),
                                 *scalars, out)
    return out.copy_to_host()


def rescale_cuda(raw, shift: int, mode, key, offset, k, lo, hi, wrap):
    """`_shift_round.rescale_numba` on the GPU (``kernel_args`` scalars after ``shift``)."""
    Rounding(mode)  # ValueError for an unknown code, which a kernel cannot report
    flat = raw.reshape(-1)
    out = _run(0, flat.size, flat.shape, (flat,), (np.int64(shift), mode, key, offset, k, lo, hi,
                                                   wrap))
    return out.reshape(raw.shape)


def mac_cuda(a, b, shift: int, mode, key, offset, k, lo, hi, wrap):
    """The MAC loop of `_matmul._mac_kernel` on the GPU: int64 ``(M, K) @ (K, N)``."""
    Rounding(mode)
    shape = (a.shape[0], b.shape[1])
    return _run(1, shape[0] * shape[1], shape, (a, b), (np.int64(shift), mode, key, offset, k, lo,
                                                        hi, wrap))


def finish_cuda(sums, left: int, acc_lo: int, acc_hi: int, shift: int, mode, key, offset, k, lo,
                hi, wrap):
    """`_matmul._finish_kernel` on the GPU (``sums`` int64, or float64 exact integers)."""
    Rounding(mode)
    flat = sums.reshape(-1)
    out = _run(2, flat.size, flat.shape, (flat,), (np.int64(left), np.int64(acc_lo),
                                                   np.int64(acc_hi), np.int64(shift), mode, key,
                                                   offset, k, lo, hi, wrap))
    return out.reshape(sums.shape)
