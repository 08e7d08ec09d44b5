"""Integer rescaling of raw fixed-point values: drop or add fraction bits, then fit a word.

A raw integer ``raw`` with ``f`` fraction bits has the value ``raw * 2**-f``. Moving it to
``f - shift`` fraction bits means computing ``raw * 2**-shift`` and rounding it to an integer:

* ``shift > 0`` drops ``shift`` bits: the exact quotient ``q + d / 2**shift`` (``q = raw >> shift``
  rounded toward -inf, ``d`` = the dropped bits, ``0 <= d < 2**shift``) is rounded with one of the
  modes below; ``shift`` may be any size (a shift of 64 or more leaves only the sign).
* ``shift < 0`` appends ``-shift`` zero bits (exact; only overflow can happen).

Rounding modes (applied to the exact quotient, never to a float):

``nearest_even``  ties to even;  ``nearest_away`` ties away from zero;  ``toward_zero``;
``floor`` (toward -inf);  ``ceil`` (toward +inf);  ``stochastic``: round up iff ``r < t`` where
``t`` is the top ``k`` bits of the dropped bits (``t = floor(d * 2**k / 2**shift)``) and ``r`` is a
``k``-bit draw of the counter-based generator (:mod:`fixedpoint._counter_rng`) for counter
``offset + i`` (``i`` = flat C-order index), ``k = sr_bits`` (1..53; 53 when None). The
probability of rounding up is ``t / 2**k``: exactly ``d / 2**shift`` when ``shift <= k``;
otherwise the dropped bits below the top ``k`` are ignored, a downward bias of less than ``2**-k``
(in units of the result's last bit), as in hardware that compares only ``k`` random bits.

Overflow into a ``word``-bit target: ``saturate`` clamps to ``[raw_min, raw_max]``; ``wrap`` keeps
the value modulo ``2**word`` (two's complement for signed words).

:func:`rescale` is the numpy oracle. :func:`rescale_numba` computes the same bits with a parallel
Numba kernel built from the scalar functions below, which the matmul kernels also call.
"""
from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

from ._counter_rng import random_ints, scalar_bits, seed_key
from ._fixed_format import Fixed
from ._fixed_scalar import CEIL, FLOOR, NEAREST_AWAY, NEAREST_EVEN, STOCHASTIC, TOWARD_ZERO
from ._modes import Rounding
from ._stats import QuantStats
from ._validate import check_offset, check_overflow, check_rounding, check_sr_bits

_scalar_bits = njit(cache=True)(scalar_bits)


# --------------------------------------------------------------------------- numpy oracle
def shift_round(raw, shift: int, rounding: str = "nearest_even", *, seed: int | None = None,
                offset: int = 0, sr_bits: int | None = None) -> np.ndarray:
    """``raw * 2**-shift`` rounded to an integer (int64 array); ``shift >= 0``, int64 ``raw``.

    ``seed`` is required for ``rounding="stochastic"``; the draw for element ``i`` uses counter
    ``offset + i``.
    """
    raw = np.asarray(raw, dtype=np.int64)
    mode = Rounding.named(check_rounding(rounding))
    if shift < 0:
        raise ValueError(f"shift must be >= 0 for shift_round, got {shift}")
    if shift == 0:
        return raw.copy()
    # For shift >= 64, |raw| < 2**63 gives |raw * 2**-shift| < 1/2: every deterministic mode depends
    # only on the sign, so (sign(raw), 63) rounds the same as (raw, shift).
    s = min(shift, 63)
    x = raw if shift <= 63 else np.sign(raw)
    q = x >> np.int64(s)
    if mode is Rounding.FLOOR:
        return q
    d = x & np.int64((1 << s) - 1)
    half = np.int64(1 << (s - 1))
    if mode is Rounding.CEIL:
        up = d != 0
    elif mode is Rounding.TOWARD_ZERO:
        up = (d != 0) & (q < 0)
    elif mode is Rounding.NEAREST_EVEN:
        up = (d > half) | ((d == half) & ((q & 1) == 1))
    elif mode is Rounding.NEAREST_AWAY:
        up = (d > half) | ((d == half) & (q >= 0))
    elif mode is Rounding.STOCHASTIC:
        if seed is None:
            raise ValueError("stochastic rounding needs a seed")
        k = check_sr_bits(sr_bits, rounding)
        r = random_ints(seed, check_offset(offset), raw.size, k).reshape(raw.shape)
        up = r < _top_bits(raw, shift, k)
    else:
        raise ValueError(f"rounding: unknown mode {rounding!r}")
    return q + up


def _top_bits(raw: np.ndarray, shift: int, k: int) -> np.ndarray:
    """The top ``k`` of the ``shift`` dropped bits of ``raw`` (two's complement), as int64."""
    if shift >= k:
        return (raw >> np.int64(min(shift - k, 63))) & np.int64((1 << k) - 1)
    return (raw & np.int64((1 << shift) - 1)) << np.int64(k - shift)


def fit_word(v, fmt: Fixed, overflow: str = "saturate") -> np.ndarray:
    """Fit int64 raw values into ``fmt``'s word by saturation or wrapping."""
    v = np.asarray(v, dtype=np.int64)
    lo, hi = fmt.raw_min, fmt.raw_max
    if check_overflow(overflow) == "saturate":
        return np.clip(v, lo, hi)
    mask = np.uint64((1 << fmt.word) - 1)
    bias = np.uint64(-lo)  # add |raw_min| so the window starts at 0, mask, then subtract it
    wrapped = ((v.astype(np.uint64) + bias) & mask).astype(np.int64)
    return wrapped + np.int64(lo)


def _left_limits(left: int, fmt: Fixed) -> tuple[int, int]:
    """The smallest and largest ``v`` whose ``v * 2**left`` lies in ``fmt``'s raw range."""
    s = min(left, 63)
    return -((-fmt.raw_min) >> s), fmt.raw_max >> s


def _shift_left(v: np.ndarray, left: int, fmt: Fixed, overflow: str) -> np.ndarray:
    """``v * 2**left`` fitted into ``fmt``'s word without ever overflowing int64 on the way."""
    if check_overflow(overflow) == "wrap":
        if left >= fmt.word:
            return np.zeros_like(v)
        return fit_word((v.astype(np.uint64) << np.uint64(left)).astype(np.int64), fmt, "wrap")
    v_lo, v_hi = _left_limits(left, fmt)
    inside = np.clip(v, v_lo, v_hi) << np.int64(min(left, 63))
    saturated = np.where(v < v_lo, np.int64(fmt.raw_min), inside)
    return np.where(v > v_hi, np.int64(fmt.raw_max), saturated)


def rescale(raw, shift: int, fmt: Fixed, rounding: str = "nearest_even",
            overflow: str = "saturate", *, seed: int | None = None, offset: int = 0,
            sr_bits: int | None = None, stats: QuantStats | None = None) -> np.ndarray:
    """Numpy oracle: ``raw * 2**-shift`` rounded (``shift > 0``) and fitted into ``fmt``'s word.

    ``shift`` is the source fraction bits minus the target fraction bits (any sign). ``stats``
    (optional) accumulates the elements that overflowed (as ``saturated`` or ``wrapped``), the
    nonzero ones that became 0, the absolute errors in value units (float64) and a stochastic seed.
    """
    raw = np.asarray(raw, dtype=np.int64)
    check_sr_bits(sr_bits, check_rounding(rounding))
    if shift < 0:  # exact: no rounding, only overflow
        out = _shift_left(raw, -shift, fmt, overflow)
        v_lo, v_hi = _left_limits(-shift, fmt)
        outside = (raw < v_lo) | (raw > v_hi)
    else:
        rounded = shift_round(raw, shift, rounding, seed=seed, offset=offset, sr_bits=sr_bits)
        out = fit_word(rounded, fmt, overflow)
        outside = (rounded < fmt.raw_min) | (rounded > fmt.raw_max)
    if stats is not None:
        n_outside = int(np.count_nonzero(outside))
        errors = np.abs(out - raw * 2.0**-shift).reshape(-1) * fmt.step
        stats.add(raw.size, 0, n_outside if overflow == "saturate" else 0,
                  n_outside if overflow == "wrap" else 0,
                  np.count_nonzero((raw != 0) & (out == 0) & ~outside), errors.max(initial=0.0),
                  math.fsum(errors.tolist()), seed if rounding == "stochastic" else None)
    return out


# --------------------------------------------------------------------------- Numba kernels
@njit(cache=True)
def round_shift_scalar(x, shift, mode, key, counter, k):
    """Scalar :func:`shift_round` of int64 ``x`` (``|x| <= 2**62``) by ``shift >= 0`` bits.

    ``mode`` is the rounding code; ``key`` (uint64) and ``counter`` (uint64, ``offset + i + 1``)
    feed the stochastic draw. Deterministic modes add a bias and shift (:func:`round_biased`),
    branch-free so that loops over it vectorize.
    """
    if shift == 0:
        return x
    if mode == STOCHASTIC:
        if shift >= k:
            t = (x >> (shift - k if shift - k < 63 else 63)) & ((np.int64(1) << k) - 1)  # noqa: FURB136 (min() fails for CUDA)
        else:
            t = (x & ((np.int64(1) << shift) - 1)) << (k - shift)
        r = np.int64(_scalar_bits(key, counter) >> np.uint64(64 - k))
        return (x >> (shift if shift < 63 else 63)) + (1 if r < t else 0)  # noqa: FURB136 (min() fails for CUDA)
    s = shift
    if shift > 63:  # |x| * 2**-shift < 1/2: only the sign matters, as for x = sign(x), s = 2
        s = 2
        x = 1 if x > 0 else (-1 if x < 0 else 0)
    elif shift == 63:  # halve x keeping a sticky low bit: the same quotient, tie and inexactness
        s = 62
        x = (x >> 1) | (x & 1)
    c, e, g = bias_terms(s, mode)
    return round_biased(x, s, c, e, g)


@njit(cache=True, inline="always")
def bias_terms(s, mode):
    """``(c, e, g)`` of a deterministic ``mode`` for :func:`round_biased`, ``1 <= s <= 62``.

    The bias is ``c + (q & e) + (sign & g)`` with ``q = x >> s`` and ``sign = x >> 63`` (0 or -1):
    ties to even ``2**(s-1) - 1 + (q & 1)``; ties away ``2**(s-1) - (x < 0)``; ceil ``2**s - 1``;
    toward zero ``2**s - 1`` for x < 0; floor 0. Stochastic (no bias) and unknown codes raise
    ValueError.
    """
    half = np.int64(1) << (s - 1)
    if mode == NEAREST_EVEN:
        return half - 1, np.int64(1), np.int64(0)
    if mode == NEAREST_AWAY:
        return half, np.int64(0), np.int64(-1)
    if mode == CEIL:
        return 2 * half - 1, np.int64(0), np.int64(0)
    if mode == TOWARD_ZERO:
        return np.int64(0), np.int64(0), 2 * half - 1
    if mode == FLOOR:
        return np.int64(0), np.int64(0), np.int64(0)
    if mode == STOCHASTIC:
        raise ValueError("stochastic rounding has no bias terms")
    raise ValueError("unknown rounding mode code")


@njit(cache=True, inline="always")
def round_biased(x, s, c, e, g):
    """``floor((x + bias) / 2**s)``: ``x`` rounded by ``s`` bits, branch-free (see bias_terms)."""
    return (x + c + ((x >> s) & e) + ((x >> 63) & g)) >> s


@njit(cache=True)
def fit_word_scalar(v, lo, hi, wrap):
    """Scalar :func:`fit_word`: clamp to ``[lo, hi]`` or wrap modulo ``hi - lo + 1``."""
    if wrap:
        mask = np.uint64(hi - lo)
        return np.int64((np.uint64(v) - np.uint64(lo)) & mask) + lo
    return lo if v < lo else (hi if v > hi else v)  # noqa: FURB136 (min() fails for CUDA)


@njit(cache=True)
def rescale_scalar(x, shift, mode, key, counter, k, lo, hi, wrap):
    """Scalar :func:`rescale` (``lo``/``hi`` = target raw limits, ``wrap`` = overflow mode)."""
    if shift >= 0:
        return fit_word_scalar(round_shift_scalar(x, shift, mode, key, counter, k), lo, hi, wrap)
    left = -shift
    if wrap:
        if left >= 63:
            return fit_word_scalar(np.int64(0), lo, hi, wrap)
        return fit_word_scalar(np.int64(np.uint64(x) << np.uint64(left)), lo, hi, wrap)
    s = left if left < 63 else 63  # noqa: FURB136 (min() fails for CUDA)
    if x > (hi >> s):
        return hi
    if x < -((-lo) >> s):
        return lo
    return x << s


@njit(parallel=True, cache=True)
def _rescale_kernel(raw, shift, mode, key, offset, k, lo, hi, wrap, out):
    for i in prange(raw.size):
        counter = offset + np.uint64(i + 1)
        out[i] = rescale_scalar(raw[i], shift, mode, key, counter, k, lo, hi, wrap)


def rescale_numba(raw, shift: int, fmt: Fixed, rounding: str = "nearest_even",
                  overflow: str = "saturate", *, seed: int | None = None, offset: int = 0,
                  sr_bits: int | None = None) -> np.ndarray:
    """Parallel Numba :func:`rescale` (same arguments, same bits)."""
    raw = np.ascontiguousarray(raw, dtype=np.int64)
    args = kernel_args(rounding, overflow, seed, offset, sr_bits, fmt)
    out = np.empty_like(raw)
    _rescale_kernel(raw.reshape(-1), np.int64(shift), *args, out.reshape(-1))
    return out


def kernel_args(rounding: str, overflow: str, seed: int | None, offset: int,
                sr_bits: int | None, fmt: Fixed) -> tuple:
    """``(mode, key, offset, k, lo, hi, wrap)`` for the kernels, validated."""
    mode = Rounding.named(check_rounding(rounding))
    if mode is Rounding.STOCHASTIC and seed is None:
        raise ValueError("stochastic rounding needs a seed")
    key = np.uint64(seed_key(seed) if seed is not None else 0)
    return (np.int64(mode), key, np.uint64(check_offset(offset)),
            np.int64(check_sr_bits(sr_bits, rounding)), np.int64(fmt.raw_min),
            np.int64(fmt.raw_max), check_overflow(overflow) == "wrap")
