"""Relative-index sparse storage with filler zeros (Han et al. 2015, Figure 2).

A flat array of integer codes (code 0 = the value zero) is stored as two parallel streams:
the nonzero codes and, for each, the distance to the previous stored entry minus one, in
``index_bits`` bits (so a stored diff ``d`` in ``[0, 2**index_bits - 1]`` means a gap of
``d + 1`` positions; the first entry is measured from position -1). When a gap exceeds
``2**index_bits`` a *filler zero* (code 0) is stored ``2**index_bits`` positions on, as
often as needed. Decoding: ``positions = cumsum(diffs + 1) - 1``; fillers write a zero.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class SparseCodes:
    """Relative-index encoding of a flat code array of ``length`` elements."""

    diffs: np.ndarray   # int64, each in [0, 2**index_bits - 1]
    codes: np.ndarray   # int64, code of each stored entry (0 for a filler)
    length: int
    index_bits: int

    @property
    def fillers(self) -> int:
        """Number of filler zeros that were needed."""
        return int(np.count_nonzero(self.codes == 0))


def _check_index_bits(index_bits: int) -> int:
    if not isinstance(index_bits, (int, np.integer)) or not 1 <= index_bits <= 32:
        raise ValueError(f"index_bits must be an integer in [1, 32], got {index_bits!r}")
    return int(index_bits)


def sparse_encode(codes: np.ndarray, index_bits: int) -> SparseCodes:
    """Encode the nonzero entries of a 1-D non-negative integer array by relative index."""
    bits = _check_index_bits(index_bits)
    c = np.asarray(codes)
    if c.ndim != 1 or (c.size and not np.issubdtype(c.dtype, np.integer)):
        raise ValueError(f"codes must be a 1-D integer array, got shape {c.shape} dtype {c.dtype}")
    if c.size and c.min() < 0:
        raise ValueError("codes must be non-negative (0 means zero)")
    pos = np.flatnonzero(c)
    span = 1 << bits
    gaps = np.diff(pos, prepend=-1)                 # >= 1
    extra = (gaps - 1) // span                      # fillers needed before each entry
    n_out = pos.size + int(extra.sum())
    diffs = np.full(n_out, span - 1, dtype=np.int64)
    out_codes = np.zeros(n_out, dtype=np.int64)
    real = np.cumsum(extra + 1) - 1                 # output slot of each real entry
    diffs[real] = gaps - 1 - extra * span
    out_codes[real] = c[pos]
    return SparseCodes(diffs, out_codes, int(c.size), bits)


def sparse_decode(sc: SparseCodes) -> np.ndarray:
    """Inverse of :func:`sparse_encode`: the flat int64 code array."""
    out = np.zeros(sc.length, dtype=np.int64)
    if sc.diffs.size:
        if sc.diffs.min() < 0 or sc.diffs.max() >= 1 << sc.index_bits:
            raise ValueError(f"diffs must lie in [0, 2**{sc.index_bits} - 1]")
        pos = np.cumsum(sc.diffs + 1) - 1
        if pos[-1] >= sc.length:
            raise ValueError(f"relative indices run past the array length {sc.length}")
        out[pos] = sc.codes
    return out
