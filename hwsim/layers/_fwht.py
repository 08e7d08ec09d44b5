"""The fast Walsh–Hadamard transform (unnormalised, natural/Sylvester order), a Numba kernel.

``fwht(a)`` computes ``a H`` along the last axis, ``H`` the ``d × d`` Sylvester Hadamard matrix
(``H₁ = [1]``, ``H₂ₖ = [[Hₖ, Hₖ], [Hₖ, −Hₖ]]``; symmetric, ``H H = d I``) with ``d`` a power of
two: ``log2 d`` butterfly stages of additions and subtractions only, in place, rows in parallel
(Numba threads; one row, or ``numba.set_num_threads(1)``, runs the serial kernel).
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
def _fwht_row(row):  # pragma: no cover - compiled
    """One row in place: 8-point butterflies (stages 1, 2, 4) unrolled, then radix-4 passes (two
    stages per pass over the row), a last radix-2 stage when log2 d is odd."""
    d = row.shape[0]
    h = 1
    if d >= 8:
        for i in range(0, d, 8):
            a0, a1, a2, a3 = row[i], row[i + 1], row[i + 2], row[i + 3]
            a4, a5, a6, a7 = row[i + 4], row[i + 5], row[i + 6], row[i + 7]
            b0, b1, b2, b3 = a0 + a1, a0 - a1, a2 + a3, a2 - a3
            b4, b5, b6, b7 = a4 + a5, a4 - a5, a6 + a7, a6 - a7
            c0, c1, c2, c3 = b0 + b2, b1 + b3, b0 - b2, b1 - b3
            c4, c5, c6, c7 = b4 + b6, b5 + b7, b4 - b6, b5 - b7
            row[i], row[i + 1], row[i + 2], row[i + 3] = c0 + c4, c1 + c5, c2 + c6, c3 + c7
            row[i + 4], row[i + 5], row[i + 6], row[i + 7] = c0 - c4, c1 - c5, c2 - c6, c3 - c7
        h = 8
    while h < d:
        if 2 * h < d:
            for i in range(0, d, 4 * h):
                for j in range(i, i + h):
                    x0, x1, x2, x3 = row[j], row[j + h], row[j + 2 * h], row[j + 3 * h]
                    y0, y1, y2, y3 = x0 + x1, x0 - x1, x2 + x3, x2 - x3
                    row[j], row[j + h], row[j + 2 * h], row[j + 3 * h] = y0 + y2, y1 + y3, y0 - y2, y1 - y3
            h *= 4
        else:
            for i in range(0, d, 2 * h):
                for j in range(i, i + h):
                    x, y = row[j], row[j + h]
                    row[j], row[j + h] = x + y, x - y
            h *= 2


@njit(parallel=True, cache=True)
def _fwht_rows_parallel(a):  # pragma: no cover - compiled
    for r in prange(a.shape[0]):
        _fwht_row(a[r])


@njit(cache=True)
def _fwht_rows_serial(a):  # pragma: no cover - compiled
    for r in range(a.shape[0]):
        _fwht_row(a[r])


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
            _fwht_rows_parallel(rows)
        else:
            _fwht_rows_serial(rows)
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
