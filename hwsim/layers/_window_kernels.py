"""Numba kernels for the window operations of convolution and pooling (numpy arrays on the CPU).

Each kernel does what the numpy code of `hwsim.layers._conv` / `_pool` does, element for element
and in the same order, so the bits are the same (tests/hwsim/test_window_kernels.py checks them
against that code, infinities and signed zeros included; a NaN is NaN in both, though its sign and
payload may differ, since the compiler may swap an addition's operands); numpy's strided copies and its
k*k slice additions are the slow part of a small convolution network's step. The batch axis runs
in parallel: every output element is written by one thread, in the numpy code's order.
"""
from __future__ import annotations

import numpy as np
from numba import njit, prange


def takes(*arrays) -> bool:
    """True when the kernels take these arrays: numpy float32/float64 of one dtype."""
    return all(type(a) is np.ndarray and a.dtype.char in "fd" for a in arrays) and len(
        {a.dtype for a in arrays}) == 1


@njit(parallel=True, cache=True)
def windows_to_cols(x, kh, kw, stride, ho, wo):  # pragma: no cover - compiled
    """(N*Ho*Wo, C*kh*kw) rows of the windows of ``x`` (N, C, H, W): row (n, oh, ow), column
    (c, i, j) = ``x[n, c, oh*stride + i, ow*stride + j]`` (the im2col copy)."""
    n, c = x.shape[0], x.shape[1]
    cols = np.empty((n * ho * wo, c * kh * kw), x.dtype)
    for b in prange(n):
        for oh in range(ho):
            for ow in range(wo):
                row = (b * ho + oh) * wo + ow
                for ci in range(c):
                    for i in range(kh):
                        for j in range(kw):
                            cols[row, (ci * kh + i) * kw + j] = x[b, ci, oh * stride + i, ow * stride + j]
    return cols


@njit(parallel=True, cache=True)
def scatter_windows_into(dx, dwin, stride):  # pragma: no cover - compiled
    """``dx[n, c, oh*stride + i, ow*stride + j] += dwin[n, c, oh, ow, i, j]``, window offset (i, j)
    by offset in row-major order as `hwsim.layers._conv.scatter_windows` adds its slices."""
    n, c, ho, wo, kh, kw = dwin.shape
    for b in prange(n):
        for i in range(kh):
            for j in range(kw):
                for ci in range(c):
                    for oh in range(ho):
                        for ow in range(wo):
                            dx[b, ci, oh * stride + i, ow * stride + j] += dwin[b, ci, oh, ow, i, j]


@njit(parallel=True, cache=True)
def max_windows(x, k, stride, ho, wo):  # pragma: no cover - compiled
    """(maxima (N, C, Ho, Wo), their positions i*k + j in the window) as numpy's ``argmax`` over the
    row-major window picks them: the first maximum, or the first NaN."""
    n, c = x.shape[0], x.shape[1]
    y = np.empty((n, c, ho, wo), x.dtype)
    arg = np.empty((n, c, ho, wo), np.int64)
    for b in prange(n):
        for ci in range(c):
            for oh in range(ho):
                for ow in range(wo):
                    best, at = x[b, ci, oh * stride, ow * stride], 0
                    for i in range(k):
                        for j in range(k):
                            v = x[b, ci, oh * stride + i, ow * stride + j]
                            if best == best and not v <= best:  # larger, or the first NaN
                                best, at = v, i * k + j
                    y[b, ci, oh, ow], arg[b, ci, oh, ow] = best, at
    return y, arg


@njit(parallel=True, cache=True)
def scatter_max_windows(dx, dy, arg, k, stride):  # pragma: no cover - compiled
    """The max-pool backward of `hwsim.layers.MaxPool2d`: ``dx += (p == arg) * dy`` at every window
    position p, in the order of `scatter_windows_into` (``0.0 * dy`` elsewhere, as numpy's one-hot
    product adds: a signed zero, or NaN where dy is infinite or NaN)."""
    n, c, ho, wo = dy.shape
    for b in prange(n):
        for i in range(k):
            for j in range(k):
                p = i * k + j
                for ci in range(c):
                    for oh in range(ho):
                        for ow in range(wo):
                            hit = 1.0 if arg[b, ci, oh, ow] == p else 0.0  # exact products
                            dx[b, ci, oh * stride + i, ow * stride + j] += hit * dy[b, ci, oh, ow]
