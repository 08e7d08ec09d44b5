"""Bit-packed binary arithmetic: XNOR-popcount dot products of {-1, +1} vectors.

Encoding: the value +1 is bit 1, -1 is bit 0; a value ``x`` packs as ``x >= 0`` (so
sign(0) = +1, as ``fixedpoint.binarize``). Element ``k`` of a row goes to bit ``k % 64``
of word ``k // 64`` (little-endian bit order); the padding bits of the last word are 0 in
every operand, so they cancel in the XOR.

For two packed rows of true length ``K`` the dot product of the ±1 vectors is

    dot = K - 2 * popcount(a XOR b)

(XNOR counts agreements: ``agree - disagree = K - 2 * disagree``), computed with integer
arithmetic only. It equals the float32 matmul of the ±1 values exactly when ``K < 2**24``
(every partial sum is an integer a float32 holds exactly, in any summation order).

Backends of `xnor_popcount_matmul`: ``"numpy"`` (the oracle: ``np.bitwise_xor`` and
``np.bitwise_count`` on chunks) and ``"numba"`` (a parallel loop over rows calling LLVM's
``ctpop`` on each 64-bit word, compiled once and cached); ``"auto"`` is numba. Both return
the same integers (tested).
"""
from __future__ import annotations

import numpy as np
from numba import njit, prange, types
from numba.extending import intrinsic

_WORD = 64
BACKENDS = ("auto", "numpy", "numba")
_CHUNK_ELEMS = 1 << 22   # bound on the (rows x cols x words) temporary of one chunk


def pack_signs(x: np.ndarray) -> np.ndarray:
    """Pack the signs of ``x`` along its last axis into uint64 words, shape (..., ceil(K/64))."""
    x = np.asarray(x)
    if x.ndim == 0:
        raise ValueError("pack_signs needs at least one axis")
    if np.issubdtype(x.dtype, np.floating) and np.isnan(x).any():
        raise ValueError("pack_signs: NaN has no sign to pack")
    k = x.shape[-1]
    n_words = -(-k // _WORD) if k else 0
    bits = np.zeros(x.shape[:-1] + (n_words * _WORD,), dtype=bool)
    bits[..., :k] = x >= 0
    packed = np.packbits(bits, axis=-1, bitorder="little")
    return np.ascontiguousarray(packed).view("<u8").reshape(x.shape[:-1] + (n_words,))


@intrinsic
def _popcount64(typingctx, x):
    """LLVM ``ctpop`` on a uint64 (one POPCNT instruction on x86-64)."""
    def codegen(context, builder, signature, args):
        return builder.ctpop(args[0])
    return types.uint64(types.uint64), codegen


@njit(parallel=True, cache=True)
def _xnor_popcount_numba(a, b, k, out):
    for i in prange(a.shape[0]):
        for j in range(b.shape[0]):
            c = 0
            for w in range(a.shape[1]):
                c += _popcount64(a[i, w] ^ b[j, w])
            out[i, j] = k - 2 * np.int64(c)


def xnor_popcount_matmul(a: np.ndarray, b: np.ndarray, k: int, backend: str = "auto") -> np.ndarray:
    """Integer dot products of packed ±1 rows: ``a`` (M, words) x ``b`` (N, words) -> int64 (M, N).

    ``k`` is the true vector length (the number of meaningful bits per row); ``backend`` one of
    `BACKENDS`.
    """
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
    a = np.asarray(a)
    b = np.asarray(b)
    if a.dtype != np.uint64 or b.dtype != np.uint64 or a.ndim != 2 or b.ndim != 2:
        raise TypeError("a and b must be 2-D uint64 arrays from pack_signs")
    if a.shape[1] != b.shape[1] or not (a.shape[1] - 1) * _WORD < k <= a.shape[1] * _WORD:
        raise ValueError(f"k={k} does not match {a.shape[1]} packed words per row in a and {b.shape[1]} in b")
    out = np.empty((a.shape[0], b.shape[0]), dtype=np.int64)
    if backend != "numpy":
        _xnor_popcount_numba(np.ascontiguousarray(a), np.ascontiguousarray(b), np.int64(k), out)
        return out
    rows = max(1, _CHUNK_ELEMS // max(1, b.shape[0] * b.shape[1]))
    for s in range(0, a.shape[0], rows):
        x = np.bitwise_xor(a[s:s + rows, None, :], b[None, :, :])
        out[s:s + rows] = k - 2 * np.bitwise_count(x).sum(axis=-1, dtype=np.int64)
    return out
