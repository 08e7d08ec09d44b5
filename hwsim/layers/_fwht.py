"""The fast Walsh–Hadamard transform (unnormalised, natural/Sylvester order), a Numba kernel.

``fwht(a)`` computes ``a H`` along the last axis, ``H`` the ``d × d`` Sylvester Hadamard matrix
(``H₁ = [1]``, ``H₂ₖ = [[Hₖ, Hₖ], [Hₖ, −Hₖ]]``; symmetric, ``H H = d I``) with ``d`` a power of
two: ``log2 d`` stages of additions and subtractions only (the constant-geometry form, through one
row-sized scratch buffer per thread), the result in place, rows in parallel (Numba threads; one row,
or ``numba.set_num_threads(1)``, runs the serial kernel).
For integer arrays (fixed-point raw values) it is exact as long as the values fit their dtype: the
magnitude grows by at most a factor ``d`` (``log2 d`` bits).
"""
from __future__ import annotations

import numba
import numpy as np
from numba import njit, prange

__all__ = ["fwht", "fwht_inplace", "hadamard"]

_DTYPES = (np.float32, np.float64, np.int64)


@njit(cache=True)
def _fwht_rows(a, r0, r1):  # pragma: no cover - compiled
    """Rows ``r0 .. r1-1`` of ``a`` in place, in the constant-geometry form of the transform: log2 d
    identical stages ``y[k] = x[2k] + x[2k+1]``, ``y[k + d/2] = x[2k] - x[2k+1]`` ping-ponging between
    the row and a scratch row (the same sums and differences as the in-place butterflies, so the same
    values, in one loop shape that LLVM vectorises — the scratch row is allocated here, so it provably
    does not alias ``a``); the result is copied back when log2 d is odd."""
    d = a.shape[1]
    half = d // 2
    buf = np.empty(d, a.dtype)
    for r in range(r0, r1):
        src, dst = a[r], buf
        h, odd = 1, False
        while h < d:
            for k in range(half):
                x = src[2 * k]
                y = src[2 * k + 1]
                dst[k] = x + y
                dst[k + half] = x - y
            src, dst = dst, src
            h *= 2
            odd = not odd
        if odd:
            a[r, :] = buf


@njit(parallel=True, cache=True)
def _fwht_rows_parallel(a, chunks):  # pragma: no cover - compiled
    n = a.shape[0]
    for c in prange(chunks):
        _fwht_rows(a, c * n // chunks, (c + 1) * n // chunks)


def _check(a: np.ndarray) -> int:
    if not isinstance(a, np.ndarray):
        raise TypeError(f"fwht needs a numpy array, got {type(a).__name__}")
    d = a.shape[-1] if a.ndim else 0
    if d < 1 or d & (d - 1):
        raise ValueError(f"fwht: the last axis must have a power-of-two length >= 1, got shape {a.shape}")
    if a.dtype not in _DTYPES:
        raise ValueError(f"fwht: dtype must be float32, float64 or int64, got {a.dtype}")
    return d


def fwht_inplace(a: np.ndarray) -> np.ndarray:
    """Transform C-contiguous ``a`` in place along its last axis (returns ``a``)."""
    d = _check(a)
    if not a.flags.c_contiguous:
        raise ValueError("fwht_inplace needs a C-contiguous array (use fwht for a copy)")
    if a.size:
        rows = a.reshape(-1, d)
        if rows.shape[0] > 1 and numba.get_num_threads() > 1:
            _fwht_rows_parallel(rows, min(rows.shape[0], 4 * numba.get_num_threads()))
        else:
            _fwht_rows(rows, 0, rows.shape[0])
    return a


def fwht(a: np.ndarray) -> np.ndarray:
    """``a H`` along the last axis, as a new array (same dtype)."""
    _check(a)
    return fwht_inplace(np.array(a, order="C", copy=True))


def hadamard(d: int) -> np.ndarray:
    """The ``d × d`` Sylvester Hadamard matrix (float64) by its recursive definition (the
    reference for tests and `dense_matrix`; the layers never multiply by it)."""
    if d < 1 or d & (d - 1):
        raise ValueError(f"hadamard: d must be a power of two >= 1, got {d}")
    h = np.ones((1, 1))
    while h.shape[0] < d:
        h = np.block([[h, h], [h, -h]])
    return h
